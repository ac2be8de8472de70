"""Sample pipelines: Record -> dict of numpy arrays with the keys of docs/DESIGN.md (data -> model).

Registry: `PIPELINES[name]` is a `Pipeline` subclass built with (cfg, train); add one with
`@register_pipeline("name")`. `data.pipeline` picks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from dir_net.data.camera import MIRROR, aa_to_matrix, matrix_to_aa, mirror_aa
from dir_net.data.mano_gt import GTHands
from dir_net.data.reader import Record, hands_of_type
from dir_net.data.transforms import (
    CropView,
    box_of_points,
    box_of_xywh,
    color_gain,
    make_view,
    motion_blur,
    swap_hands,
    swap_seg_labels,
    to_tensor_image,
)
from dir_net.errors import ConfigError

PIPELINES: dict[str, type["Pipeline"]] = {}


def register_pipeline(name: str) -> Callable[[type["Pipeline"]], type["Pipeline"]]:
    def deco(cls: type["Pipeline"]) -> type["Pipeline"]:
        cls.name = name
        PIPELINES[name] = cls
        return cls

    return deco


def build_pipeline(cfg: Any, train: bool) -> "Pipeline":
    name = cfg.data.pipeline
    if name not in PIPELINES:
        raise ConfigError(f"data.pipeline must be one of {sorted(PIPELINES)}, got {name!r}")
    return PIPELINES[name](cfg, train)


@dataclass
class Augment:
    """One draw of the geometric and photometric augmentation (identity when not training)."""

    scale: float = 1.0  # crop side multiplier
    rotation: float = 0.0  # degrees
    shift: tuple[float, float] = (0.0, 0.0)  # fraction of the crop side
    flip: bool = False
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur: tuple[int, float] | None = None  # (kernel length px, angle deg)


class Pipeline:
    """Base: the crop, image and the keys shared by every pipeline."""

    name = ""
    needs_mano = False  # the dataset reads the NeuralAnnot fit
    needs_aux = False  # the dataset reads the prepared seg/dense maps

    def __init__(self, cfg: Any, train: bool) -> None:
        self.size = int(cfg.data.image_size)
        self.train = train
        # image conventions (data.internet / data.hand2d set them; DIR keeps these)
        self.normalize = "imagenet"  # to_tensor_image: imagenet | rgb01
        self.crop_center = "symmetric"  # make_view: box centre -> (S - 1) / 2 | S / 2 (half_size)
        self.float_warp = False  # warp the float image (no rounding to grey levels)

    def set_image_conventions(self, p: Any) -> None:
        """Take `normalize`, `crop_center` and `warp` from a pipeline's config section."""
        self.normalize, self.crop_center = str(p.normalize), str(p.crop_center)
        self.float_warp = p.warp == "float"

    def __call__(self, record: Record, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def view(self, record: Record, center: np.ndarray, side: float, aug: Augment) -> CropView:
        c = center + np.asarray(aug.shift) * side
        return make_view(record.camera.K, c, side * aug.scale, self.size, aug.rotation, aug.flip, self.crop_center)

    def image(self, record: Record, view: CropView, aug: Augment) -> np.ndarray:
        img = view.warp(record.image.astype(np.float32) if self.float_warp else record.image)
        if aug.gains != (1.0, 1.0, 1.0):
            img = color_gain(img, np.asarray(aug.gains[::-1]))  # BGR order
        if aug.blur is not None:
            img = motion_blur(img, *aug.blur)
        return to_tensor_image(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), self.normalize)

    @staticmethod
    def view_joints(view: CropView, aug: Augment, joints_cam: np.ndarray,
                    joint_valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(2, 21, 3) joints in the augmented camera frame and their (2, 21) validity, hand-swapped on flip."""
        joints = view.points(joints_cam)
        if aug.flip:
            return swap_hands(joints), swap_hands(joint_valid)
        return joints, joint_valid

    def common(self, record: Record, view: CropView, aug: Augment, joints_cam: np.ndarray,
               joint_valid: np.ndarray) -> dict[str, np.ndarray]:
        """image, id, hand type, joints (augmented, hand-swapped on flip), K_crop, crop_to_image."""
        joints, joint_valid = self.view_joints(view, aug, joints_cam, joint_valid)
        hand_type = record.hand_type
        if aug.flip:
            hand_type = {0: 1, 1: 0}.get(hand_type, hand_type)
        return {
            "image": self.image(record, view, aug),
            "id": np.asarray(record.ann_id, np.int64),
            "hand_type": np.asarray(max(hand_type, 0), np.int64),
            "hand_type_valid": np.asarray(record.hand_type_valid if hand_type >= 0 else 0.0, np.float32),
            "joints_3d": joints.astype(np.float32),
            "joint_valid": np.asarray(joint_valid, np.float32),
            "joints_2d": view.project(joints).astype(np.float32),
            "K_crop": view.K.astype(np.float32),
            "crop_to_image": view.crop_to_image.astype(np.float32),
        }


def _blur(rng: np.random.Generator, prob: float, max_len: int) -> tuple[int, float] | None:
    if max_len < 3 or rng.random() >= prob:
        return None
    length = int(rng.integers(1, max_len // 2 + 1)) * 2 + 1
    return min(length, max_len | 1), float(rng.uniform(0, 180))


@register_pipeline("dir")
class DirPipeline(Pipeline):
    """DIR (Ren et al. 2023): square crop around both hands' projected GT MANO vertices.

    `joints_3d` are regressed from the GT MANO mesh where a fit exists (data.dir.joints_from_mano;
    the DIR protocols' ground truth); `joints_3d_annot` / `joint_valid_annot` keep the annotated
    joint_3d.json joints (the `moon` protocol's ground truth).
    """

    needs_mano = True
    needs_aux = True

    def __init__(self, cfg: Any, train: bool) -> None:
        super().__init__(cfg, train)
        self.p = cfg.data.dir
        self.aux_size = int(cfg.data.aux_size)
        self.hands = GTHands(cfg.mano.model_dir, cfg.mano.tips)

    def augment(self, rng: np.random.Generator) -> Augment:
        p = self.p
        if not self.train:
            return Augment()
        return Augment(
            scale=float(1.0 + rng.uniform(-p.scale, p.scale)),
            rotation=float(rng.uniform(-p.rotation, p.rotation)),
            shift=tuple(rng.uniform(-p.translation, p.translation, 2)),
            flip=bool(rng.random() < p.flip),
            gains=tuple(1.0 + rng.uniform(-p.color, p.color, 3)),
            blur=_blur(rng, p.blur_prob, p.blur_max),
        )

    def __call__(self, record: Record, rng: np.random.Generator) -> dict[str, np.ndarray]:
        present = hands_of_type(record.hand_type)
        fit = record.mano
        mano_valid = present & (fit["present"] > 0) if fit is not None else np.zeros(2, bool)
        gt = self.hands.camera_frame(fit, record.camera) if mano_valid.any() else None
        joints, valid = record.joints_cam.copy(), record.joint_valid.copy()
        if gt is not None and self.p.joints_from_mano:
            joints[mano_valid] = gt["joints"][mano_valid]
            valid[mano_valid] = 1.0
        center, side = self.crop_box(record, gt, mano_valid, present)
        aug = self.augment(rng)
        view = self.view(record, center, side / self.p.crop_ratio, aug)
        out = self.common(record, view, aug, joints, valid)
        # the annotated (joint_3d.json) joints as well: the ground truth of the `moon` protocol
        annot, annot_valid = self.view_joints(view, aug, record.joints_cam, record.joint_valid)
        out["joints_3d_annot"] = annot.astype(np.float32)
        out["joint_valid_annot"] = np.asarray(annot_valid, np.float32)
        out.update(self.mano_targets(gt, mano_valid, view, aug))
        out.update(self.aux_targets(record, view, aug))
        return out

    @staticmethod
    def crop_box(record: Record, gt: dict | None, mano_valid: np.ndarray,
                 present: np.ndarray) -> tuple[np.ndarray, float]:
        """Box of the projected GT vertices of hands with a fit and the valid joints of those without;
        the annotation bbox when there is neither."""
        points = [gt["vertices"][mano_valid].reshape(-1, 3)] if gt is not None else []
        for h in np.flatnonzero(present & ~mano_valid):
            points.append(record.joints_cam[h][record.joint_valid[h] > 0])
        points = np.concatenate(points) if points else np.zeros((0, 3))
        if len(points) < 2:
            return box_of_xywh(record.bbox)
        return box_of_points(record.camera.project(points))

    def mano_targets(self, gt: dict | None, mano_valid: np.ndarray, view: CropView,
                     aug: Augment) -> dict[str, np.ndarray]:
        n_verts = int(self.hands.layer.num_verts)
        root, finger = np.zeros((2, 3)), np.zeros((2, 45))
        betas, verts = np.zeros((2, 10)), np.zeros((2, n_verts, 3))
        if gt is not None:
            m = mano_valid
            rot = aa_to_matrix(gt["root"][m])
            root[m] = matrix_to_aa(view.R @ rot @ MIRROR if aug.flip else view.R @ rot)
            finger[m] = mirror_aa(gt["finger"][m].reshape(-1, 15, 3)).reshape(-1, 45) if aug.flip else gt["finger"][m]
            betas[m] = gt["betas"][m]
            verts[m] = view.points(gt["vertices"][m])
        valid = mano_valid.astype(np.float32)
        if aug.flip:
            root, finger, betas, verts, valid = (swap_hands(x) for x in (root, finger, betas, verts, valid))
        verts_2d = np.zeros(verts.shape[:2] + (2,))
        verts_2d[valid > 0] = view.project(verts[valid > 0])
        return {
            "mano_root": root.astype(np.float32),
            "mano_finger": finger.astype(np.float32),
            "mano_betas": betas.astype(np.float32),
            "mano_valid": valid,
            "verts_3d": verts.astype(np.float32),
            "verts_2d": verts_2d.astype(np.float32),
        }

    def aux_targets(self, record: Record, view: CropView, aug: Augment) -> dict[str, np.ndarray]:
        a = self.aux_size
        if record.aux is None:
            return {"seg": np.zeros((a, a), np.int64), "dense": np.zeros((3, a, a), np.float32),
                    "aux_valid": np.asarray(0.0, np.float32)}
        seg_full, dense_full = record.aux
        seg = view.warp(seg_full, nearest=True, size=a)
        dense = view.warp(dense_full, nearest=True, size=a)
        if aug.flip:
            seg = swap_seg_labels(seg)
        return {
            "seg": seg.astype(np.int64),
            "dense": np.ascontiguousarray(dense.transpose(2, 0, 1), np.float32) / 255.0,
            "aux_valid": np.asarray(1.0, np.float32),
        }


@register_pipeline("internet")
class InterNetPipeline(Pipeline):
    """InterNet (Moon et al. 2020): GT bbox padded to a square, 2.5D joint targets."""

    def __init__(self, cfg: Any, train: bool) -> None:
        super().__init__(cfg, train)
        self.p = cfg.data.internet
        self.set_image_conventions(self.p)
        rootnet_file = cfg.model.internet.rootnet_file if "internet" in cfg.get("model", {}) else None
        self.rootnet = None
        if self.p.rootnet_box != "none" and rootnet_file and not train:
            from dir_net.models.internet import RootNetDepths  # the RootNet file reader

            self.rootnet = RootNetDepths(rootnet_file)

    def augment(self, rng: np.random.Generator) -> Augment:
        p = self.p
        if not self.train:
            return Augment()
        rotate = rng.random() < p.rotation_prob
        return Augment(
            scale=float(1.0 + rng.uniform(-p.scale, p.scale)),
            rotation=float(rng.uniform(-p.rotation, p.rotation)) if rotate else 0.0,
            shift=tuple(rng.uniform(-p.translation, p.translation, 2)),
            flip=bool(rng.random() < p.flip),
            gains=tuple(rng.uniform(1.0 - p.color, 1.0 + p.color, 3)),
        )

    def crop_box(self, record: Record) -> tuple[np.ndarray, float]:
        """Centre and side (px) of the crop: the GT bbox squared x bbox_pad, or in RootNet mode
        (data.internet.rootnet_box) RootNet's box as it is (official) or squared x bbox_pad (mmpose)."""
        box, pad = record.bbox, float(self.p.bbox_pad)
        if self.rootnet is not None:
            box = self.rootnet.bbox(record.ann_id)
            pad = 1.0 if self.p.rootnet_box == "as_is" else pad
        center, side = box_of_xywh(box)
        return center, side * pad

    def __call__(self, record: Record, rng: np.random.Generator) -> dict[str, np.ndarray]:
        center, side = self.crop_box(record)
        aug = self.augment(rng)
        view = self.view(record, center, side, aug)
        out = self.common(record, view, aug, record.joints_cam, record.joint_valid)
        joints, valid = out["joints_3d"], out["joint_valid"]
        rel_z = joints[..., 2] - joints[:, :1, 2]  # (2, 21) metres
        root_valid = float(valid[0, 0] * valid[1, 0] * (out["hand_type"] == 2))
        rel_root = float(joints[1, 0, 2] - joints[0, 0, 2])
        if self.train:
            uv = out["joints_2d"]
            inside = (uv >= 0).all(-1) & (uv < self.size).all(-1)
            valid = valid * inside * (np.abs(rel_z) <= self.p.depth_range) * valid[:, :1]
            root_valid *= float(abs(rel_root) <= self.p.depth_range)
        present = hands_of_type(int(out["hand_type"]) if record.hand_type >= 0 else -1)
        out.update(
            joint_valid=valid.astype(np.float32),
            joints_25d=np.concatenate([out["joints_2d"], rel_z[..., None]], -1).astype(np.float32),
            rel_root_depth=np.asarray([rel_root], np.float32),
            root_valid=np.asarray(root_valid, np.float32),
            hand_present=present.astype(np.float32),
        )
        return out


from dir_net.data import pipeline_hand2d  # noqa: E402,F401  registers "hand2d" (per-hand 2D samples)

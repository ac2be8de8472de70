"""The per-hand 2D keypoint pipeline (`data.pipeline: hand2d`, SimpleBaseline2D / mmpose InterHand2D).

Every hand with at least `data.hand2d.min_valid_joints` valid joints
(mmpose: more than 11) is its own sample. Its 2D joints are the camera projection of the 3D joints
(the dataset has no separate 2D labels); the crop is the tightest box around the valid 2D joints,
made square (longest side) and padded x bbox_pad. Training augmentation: scale, rotation, flip.
Image conventions (data.hand2d.normalize / crop_center / warp / box) follow the model's source:
a converted mmpose checkpoint sets mmpose's (docs/CONVERT.md).
A flip mirrors the image and the joints' x but the hand keeps its identity (a mirrored left hand
stays sample `hand` = 1), as mmpose does for the 2D task.

Sample keys:
| key | shape / dtype | meaning |
| image | (3, S, S) float32 | RGB, ImageNet-normalised (data.hand2d.normalize) |
| id | () int64 | annotation id (a frame's two hands share it; (id, hand) is unique) |
| hand | () int64 | 0 right, 1 left |
| keypoints_2d | (21, 2) float32 | crop px, wrist-first |
| keypoint_valid | (21,) float32 | annotated (and, when training, inside the crop) |
| keypoints_image | (21, 2) float32 | original-image px (evaluation ground truth) |
| bbox_size | () float32 | longest side of the tight joint box, original-image px (PCK normaliser) |
| crop_to_image | (2, 3) float32 | affine, crop px -> original image px |
| K_crop | (3, 3) float32 | pinhole intrinsics of the crop |

The per-hand dataset (`build_dataset` with data.pipeline=hand2d calls `Hand2DPipeline.make_dataset`) is the frame
dataset of dir_net.data.dataset with one entry per (annotation, hand); it is created lazily
because dataset.py imports the pipeline registry, which imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dir_net.data.index import InterHandIndex
from dir_net.data.pipelines import Augment, Pipeline, register_pipeline
from dir_net.data.reader import Record
from dir_net.data.transforms import box_of_points, box_of_xywh
from dir_net.errors import DataError
from mano.joints import INTERHAND_ROOTS, NUM_JOINTS, WRIST

INTERHAND_WRIST = INTERHAND_ROOTS[0]  # 20: the wrist of one hand in InterHand2.6M order

MIN_BOX_PX = 1.0  # a degenerate joint box (all joints on one point) still gets a crop


@dataclass
class HandRecord(Record):
    hand: int  # 0 right, 1 left: the hand this sample is about


def hand_samples(index: InterHandIndex, rows: np.ndarray, min_valid: int) -> tuple[np.ndarray, np.ndarray]:
    """(sample rows (M,), hands (M,)): every (row, hand) whose hand has >= min_valid valid joints
    (data.json joint_valid x joint_3d validity, as the reader computes it; a hand whose wrist is
    invalid has no valid joint, as in the official InterHand2.6M and mmpose loaders), in row order."""
    rows = np.asarray(rows)
    frame = np.asarray(index.col("frame_row"))[rows]
    valid = np.asarray(index.col("joint_valid"))[rows].astype(bool)  # (n, 42) InterHand order
    valid &= np.asarray(index.col("frame_valid"))[np.maximum(frame, 0)].astype(bool)
    valid &= (frame >= 0)[:, None]
    valid = valid.reshape(len(rows), 2, NUM_JOINTS)  # (n, 2, 21) right, left; InterHand order
    valid &= valid[:, :, INTERHAND_WRIST : INTERHAND_WRIST + 1]
    counts = valid.sum(-1)  # (n, 2)
    r, hands = np.nonzero(counts >= min_valid)
    return rows[r], hands.astype(np.int64)


@register_pipeline("hand2d")
class Hand2DPipeline(Pipeline):
    """One hand of a record -> the sample dict above."""

    def __init__(self, cfg: Any, train: bool) -> None:
        super().__init__(cfg, train)
        self.p = cfg.data.hand2d
        self.set_image_conventions(self.p)
        self.min_valid = int(self.p.min_valid_joints)

    def augment(self, rng: np.random.Generator) -> Augment:
        p = self.p
        if not self.train:
            return Augment()
        rotate = rng.random() < p.rotation_prob
        return Augment(
            scale=float(1.0 + rng.uniform(-p.scale, p.scale)),
            rotation=float(rng.uniform(-p.rotation, p.rotation)) if rotate else 0.0,
            flip=bool(rng.random() < p.flip),
        )

    def __call__(self, record: Record, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if not isinstance(record, HandRecord):
            raise DataError(
                "data.pipeline 'hand2d' makes one sample per hand: build its dataset with "
                "dir_net.data.build_dataset (which calls Hand2DPipeline.make_dataset)"
            )
        return self.sample(record, record.hand, rng)

    def sample(self, record: Record, hand: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        joints_cam = record.joints_cam[hand]  # (21, 3) metres
        valid = (record.joint_valid[hand] > 0) & (joints_cam[:, 2] > 1e-6)  # wrist-first
        valid &= valid[WRIST]  # an invalid wrist invalidates the hand (see hand_samples)
        kp_image = np.zeros((NUM_JOINTS, 2))
        kp_image[valid] = record.camera.project(joints_cam[valid])
        if valid.any():
            center, side = self.joint_box(kp_image[valid], record.image.shape[:2])
        else:
            center, side = box_of_xywh(record.bbox)
        if self.p.box == "tight":
            side = max(side, MIN_BOX_PX)
        aug = self.augment(rng)
        view = self.view(record, center, side * float(self.p.bbox_pad), aug)
        kp_crop = kp_image @ view.A[:, :2].T + view.A[:, 2]
        kp_valid = valid.astype(np.float32)
        if self.train:
            inside = ((kp_crop >= -0.5) & (kp_crop <= self.size - 0.5)).all(-1)
            kp_valid *= inside
        return {
            "image": self.image(record, view, aug),
            "id": np.asarray(record.ann_id, np.int64),
            "hand": np.asarray(hand, np.int64),
            "keypoints_2d": kp_crop.astype(np.float32),
            "keypoint_valid": kp_valid,
            "keypoints_image": kp_image.astype(np.float32),
            "bbox_size": np.asarray(side, np.float32),
            "crop_to_image": view.crop_to_image.astype(np.float32),
            "K_crop": view.K.astype(np.float32),
        }

    def joint_box(self, uv: np.ndarray, image_hw: tuple[int, int]) -> tuple[np.ndarray, float]:
        """Centre (2,) and longest side of the box of the valid joints (N, 2) image px. `tight`:
        their bounding box; `mmpose`: its running minimum starts at (W, H) and its maximum at
        (0, 0), so joints outside the image are clamped towards it."""
        if self.p.box == "tight":
            return box_of_points(uv)
        h, w = image_hw
        lo = np.minimum(uv.min(0), [w, h])
        hi = np.maximum(uv.max(0), [0, 0])
        return (lo + hi) / 2.0, float(max(hi - lo))

    def make_dataset(self, index: InterHandIndex, rows: np.ndarray) -> Any:
        """The per-hand dataset over the selected frame rows."""
        return _dataset_class()(index, rows, self)


_DATASET_CLASS: type | None = None


def _dataset_class() -> type:
    """Hand2DDataset, defined on first use (its base class lives in dataset.py, see the module doc)."""
    global _DATASET_CLASS
    if _DATASET_CLASS is None:
        from dir_net.data.dataset import InterHandDataset

        class Hand2DDataset(InterHandDataset):
            """InterHandDataset with one entry per (annotation, hand) of `hand_samples`."""

            def __init__(self, index: InterHandIndex, rows: np.ndarray, pipeline: Hand2DPipeline) -> None:
                sample_rows, self.hands = hand_samples(index, rows, pipeline.min_valid)
                if len(rows) and not len(sample_rows):
                    raise DataError(f"{index.dir}: no hand has >= {pipeline.min_valid} valid joints "
                                    "(data.hand2d.min_valid_joints)")
                super().__init__(index, sample_rows, pipeline)

            def record(self, i: int) -> HandRecord:
                return HandRecord(**vars(super().record(i)), hand=int(self.hands[i]))

        Hand2DDataset.__module__ = __name__
        Hand2DDataset.__qualname__ = "Hand2DDataset"  # pickles by reference through __getattr__
        _DATASET_CLASS = Hand2DDataset
    return _DATASET_CLASS


def __getattr__(name: str) -> Any:
    if name == "Hand2DDataset":
        return _dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["HandRecord", "Hand2DPipeline", "hand_samples"]

"""Small synthetic STB and RHD sets in the parsed format of the official InterNet release, plus the
ORIGINAL release layouts (STB `labels/*_BB.mat`, RHD `anno_*.pickle`) of the same hands, so the
loaders and the converters are exercised without the real data.

One MANO-format hand per image (`mano.load_hands`), rendered with the renderer and backgrounds of
`dir_net.data.synth` (read-only use). Joints are computed here, independently of the converters:
- STB: 640 x 480, the Bumblebee intrinsics, a LEFT hand, both stereo views (the right camera sits
  at +baseline along x), json joints in STB order with the palm centre (midpoint of wrist and
  middle MCP) first, joint_valid 1; sequences B2Counting/B2Random (train), B1Counting/B1Random (test).
- RHD: 320 x 320, per-image intrinsics, a left or right hand, json joints in RHD order (wrist,
  then each finger tip -> MCP), joint_valid = visible (a few joints hidden at random); the pickle
  holds both hands (the other one far off to the side, not visible).

Layout (ROOT):
  STB: data/STB_{train,test}.json, data/skeleton.txt, data/images/{seq}/BB_{left,right}_{i}.png,
       data/images/labels/{seq}_BB.mat (data/images is an STB original release root),
       rootnet_output/rootnet_stb_output.json (test annotations)
  RHD: data/RHD_{training,evaluation}.json, data/skeleton.txt, data/{split}/color/{id:05d}.png,
       data/{split}/anno_{split}.pickle (data/ is an RHD_published_v2 root),
       rootnet_output/rootnet_rhd_output.json (evaluation annotations)
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dir_net.data import synth as ih_synth
from dir_net.data.camera import matrix_to_aa
from dir_net.data.stb_rhd.joints import wrist_first_to_hand
from dir_net.data.stb_rhd.originals import (
    RHD_SIZE,
    STB_BASELINE_MM,
    STB_BB_FOCAL,
    STB_BB_PRINCPT,
    STB_SIZE,
)
from dir_net.data.stb_rhd.writer import (
    annotation_entry,
    image_entry,
    rootnet_entries,
    write_parsed_json,
    write_skeleton,
)
from dir_net.errors import DataError
from dir_net.utils.io import atomic_path, write_bytes, write_json, write_text
from mano.joints import MIDDLE_MCP

MARKER = "dirnet_synth_{dataset}.json"  # written last: the set is whole
STB_SEQUENCES = {"train": ("B2Counting", "B2Random"), "test": ("B1Counting", "B1Random")}
RHD_SPLITS = ("training", "evaluation")
ROOTNET_NOISE_MM = 15.0


@dataclass
class SynthHand:
    side: int  # 0 right, 1 left (MANO layer hand axis)
    verts_m: np.ndarray  # (V, 3) metres, camera frame of the reference camera
    joints_mm: np.ndarray  # (21, 3) mm, wrist-first, same frame
    skin: np.ndarray  # (3,) RGB in [0, 1]


class _Scene:
    """The MANO layer and the renderer shared by every image of a set."""

    def __init__(self, model_dir: str | None, width: int, height: int) -> None:
        import mano
        from dir_net.render.renderer import Renderer

        self.hands = mano.load_hands(model_dir, tips="interhand").eval()
        self.faces = np.asarray(self.hands.faces)
        self.renderer = Renderer(width, height, bg_color=(0.0, 0.0, 0.0))

    def close(self) -> None:
        self.renderer.close()

    def hand(self, rng: np.random.Generator, side: int, centre_mm: np.ndarray) -> SynthHand:
        """A random posed hand whose joint centroid sits at centre_mm (camera frame)."""
        root = np.zeros((2, 3))
        root[side] = matrix_to_aa(ih_synth._random_rotation(rng, 180.0))
        finger = np.zeros((2, 45))
        pose = ih_synth._finger_pose(rng, self.hands)
        finger[side] = pose if side == 0 else (pose.reshape(15, 3) * np.array([1.0, -1.0, -1.0])).reshape(45)
        betas = np.tile(np.clip(rng.normal(0, 0.8, 10), -2, 2), (2, 1))
        verts, joints = self.hands.forward_numpy(root, finger, betas)
        shift_m = centre_mm / 1000.0 - joints[side].astype(np.float64).mean(0)
        skin = ih_synth.SKIN_TONES[int(rng.integers(len(ih_synth.SKIN_TONES)))] * rng.uniform(0.95, 1.05, 3)
        return SynthHand(side, verts[side].astype(np.float64) + shift_m,
                         (joints[side].astype(np.float64) + shift_m) * 1000.0, skin)

    def image(self, rng: np.random.Generator, hand: SynthHand, K: np.ndarray, offset_mm: np.ndarray,
              size: tuple[int, int]) -> bytes:
        """PNG bytes of the hand seen by a camera whose frame is the reference one shifted by offset_mm."""
        from dir_net.render.renderer import MeshSpec

        self.renderer.resize(*size)
        mesh = MeshSpec(hand.verts_m + offset_mm / 1000.0, self.faces[hand.side], tuple(np.clip(hand.skin, 0, 1)))
        render = self.renderer.render([mesh], K)
        bgr = ih_synth._compose(render, ih_synth.background(rng, *size), rng.uniform(0.8, 1.25),
                                rng.uniform(0.92, 1.08, 3), False, rng)
        ok, png = cv2.imencode(".png", bgr)
        if not ok:
            raise RuntimeError("PNG encoding failed")
        return png.tobytes()


def _K(focal: np.ndarray, princpt: np.ndarray) -> np.ndarray:
    return np.array([[focal[0], 0.0, princpt[0]], [0.0, focal[1], princpt[1]], [0.0, 0.0, 1.0]])


def _stb_order(joints_wf_mm: np.ndarray) -> np.ndarray:
    """(21, 3) wrist-first -> STB order with the palm centre (midpoint of wrist and middle MCP) first."""
    palm_first = joints_wf_mm.copy()
    palm_first[0] = 0.5 * (joints_wf_mm[0] + joints_wf_mm[MIDDLE_MCP])
    return wrist_first_to_hand(palm_first, "stb")


# -- STB ------------------------------------------------------------------------------------------------
def _generate_stb(out: Path, frames: int, seed: int, scene: _Scene) -> dict[str, Any]:
    import scipy.io

    focal, princpt = np.array(STB_BB_FOCAL), np.array(STB_BB_PRINCPT)
    K = _K(focal, princpt)
    offsets = {"left": np.zeros(3), "right": np.array([-STB_BASELINE_MM, 0.0, 0.0])}  # reference = left camera
    summary: dict[str, Any] = {}
    for split_no, (split, sequences) in enumerate(STB_SEQUENCES.items()):
        rng = np.random.default_rng([seed, 7, split_no])
        images: list[dict] = []
        annotations: list[dict] = []
        per_seq = max(1, math.ceil(frames / len(sequences)))
        for seq in sequences:
            hands = [scene.hand(rng, 1, np.array([STB_BASELINE_MM / 2 + rng.uniform(-25, 25), rng.uniform(-30, 30),
                                                  rng.uniform(380, 560)])) for _ in range(per_seq)]
            labels = np.stack([_stb_order(h.joints_mm) for h in hands])  # (F, 21, 3) mm, left camera
            mat = {"handPara": labels.transpose(2, 1, 0)}  # 3 x 21 x F
            with atomic_path(out / "data" / "images" / "labels" / f"{seq}_BB.mat") as tmp:
                scipy.io.savemat(str(tmp), mat)
            for view, offset in offsets.items():
                for frame, hand in enumerate(hands):
                    name = f"BB_{view}_{frame}.png"
                    write_bytes(out / "data" / "images" / seq / name, scene.image(rng, hand, K, offset, STB_SIZE))
                    image_id = len(images)
                    images.append(image_entry(image_id, name, *STB_SIZE, focal, princpt, seq_name=seq))
                    annotations.append(annotation_entry(len(annotations), image_id, "left", labels[frame] + offset,
                                                        focal, princpt, np.ones(21)))
        write_parsed_json(out / "data" / f"STB_{split}.json", images, annotations)
        if split == "test":
            _write_rootnet(out / "rootnet_output" / "rootnet_stb_output.json", annotations, rng)
        summary[split] = {"images": len(images), "annotations": len(annotations)}
    write_skeleton(out / "data" / "skeleton.txt", "stb")
    return summary


# -- RHD ------------------------------------------------------------------------------------------------
def _rhd_visible(rng: np.random.Generator, uv: np.ndarray) -> np.ndarray:
    """(21,) visibility: inside the image, minus a few joints hidden at random (the wrist sometimes)."""
    inside = (uv >= 0).all(1) & (uv < np.array(RHD_SIZE)).all(1)
    hidden = rng.choice(np.arange(1, 21), size=int(rng.integers(0, 4)), replace=False)
    inside[hidden] = False
    if rng.random() < 0.1:
        inside[0] = False
    return inside


def _generate_rhd(out: Path, frames: int, seed: int, scene: _Scene) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for split_no, split in enumerate(RHD_SPLITS):
        rng = np.random.default_rng([seed, 11, split_no])
        images: list[dict] = []
        annotations: list[dict] = []
        anno: dict[int, dict[str, np.ndarray]] = {}
        for sample in range(frames):
            f = rng.uniform(260, 320)
            focal, princpt = np.array([f, f]), np.array(RHD_SIZE) / 2 + rng.uniform(-4, 4, 2)
            K = _K(focal, princpt)
            side = int(rng.integers(2))  # 0 right, 1 left
            hand = scene.hand(rng, side, np.array([rng.uniform(-30, 30), rng.uniform(-30, 30), rng.uniform(380, 600)]))
            joints = wrist_first_to_hand(hand.joints_mm, "rhd")  # (21, 3) mm, RHD order
            uv = joints[:, :2] / joints[:, 2:] * focal + princpt
            visible = _rhd_visible(rng, uv)
            other = joints + np.array([1000.0, 0.0, 0.0])  # the other hand: far to the side, not visible
            other_uv = other[:, :2] / other[:, 2:] * focal + princpt
            blocks = (other, joints) if side == 0 else (joints, other)  # rows 0-20 left, 21-41 right
            uv_blocks = (other_uv, uv) if side == 0 else (uv, other_uv)
            vis_blocks = (np.zeros(21), visible) if side == 0 else (visible, np.zeros(21))
            anno[sample] = {
                "xyz": (np.concatenate(blocks) / 1000.0).astype(np.float32),
                "uv_vis": np.concatenate([np.concatenate(uv_blocks), np.concatenate(vis_blocks)[:, None]], 1),
                "K": K,
            }
            write_bytes(out / "data" / split / "color" / f"{sample:05d}.png",
                        scene.image(rng, hand, K, np.zeros(3), RHD_SIZE))
            images.append(image_entry(sample, f"{sample:05d}.png", *RHD_SIZE, focal, princpt))
            # the json keeps the float32 metres of the pickle, as a conversion of the release would
            joint_cam = anno[sample]["xyz"][21:] if side == 0 else anno[sample]["xyz"][:21]
            annotations.append(annotation_entry(len(annotations), sample, ("right", "left")[side],
                                                joint_cam.astype(np.float64) * 1000.0, focal, princpt, visible))
        write_bytes(out / "data" / split / f"anno_{split}.pickle", pickle.dumps(anno, protocol=2))
        write_parsed_json(out / "data" / f"RHD_{split}.json", images, annotations)
        if split == "evaluation":
            _write_rootnet(out / "rootnet_output" / "rootnet_rhd_output.json", annotations, rng)
        summary[split] = {"images": len(images), "annotations": len(annotations)}
    write_skeleton(out / "data" / "skeleton.txt", "rhd")
    return summary


def _write_rootnet(path: Path, annotations: list[dict], rng: np.random.Generator) -> None:
    depth = [a["joint_cam"][0][2] + rng.normal(0.0, ROOTNET_NOISE_MM) for a in annotations]
    write_json(path, rootnet_entries(annotations, depth), indent=None)


def generate(out: str | Path, dataset: str, frames: int = 8, seed: int = 0, model_dir: str | None = None
             ) -> dict[str, Any]:
    """Write a synthetic `dataset` (stb | rhd) under `out`; `frames` hands per split."""
    if dataset not in ("stb", "rhd"):
        raise DataError(f"--dataset must be stb, rhd or interhand26m, got {dataset!r}")
    if frames < 1:
        raise DataError(f"--frames must be >= 1, got {frames}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder; give a folder for the dataset")
    width, height = STB_SIZE if dataset == "stb" else RHD_SIZE
    scene = _Scene(model_dir, width, height)
    try:
        splits = (_generate_stb if dataset == "stb" else _generate_rhd)(out, frames, seed, scene)
    finally:
        scene.close()
    summary = {"root": str(out), "dataset": dataset, **splits}
    write_text(out / MARKER.format(dataset=dataset), json.dumps(summary, indent=2))
    return summary

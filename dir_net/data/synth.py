"""A synthetic dataset in the InterHand2.6M v1.0 format, rendered from the MANO-format hand.

`generate(out, frames, seed)` writes, per split, the four annotation files and the images in the
real folder layout, so the real loader reads it unchanged:

- captures with a rig of calibrated cameras (campos / camrot / focal / princpt) around the hands,
  512x334 and 334x512 images, colour (40xxxx) and monochrome (41xxxx) cameras;
- sequences (cycling interacting, right, interacting, left) of interacting (hands facing each other,
  touching and occluding) and single-hand frames, poses sampled in MANO's PCA space (free, or
  from a library of gestures shared by every split: `gestures`) and interpolated over the sequence;
- NeuralAnnot-convention MANO parameters (world frame, metres, pose relative to the mean hand; the
  absent hand is null, a few frames have no fit), joint_3d world mm in InterHand order;
- varied skin tones, lighting gain / tint and backgrounds. Deterministic for a seed.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from dir_net.data.camera import aa_to_matrix, matrix_to_aa
from dir_net.data.layout import SPLITS, check_split
from dir_net.errors import DataError
from dir_net.utils.io import write_bytes, write_text
from mano.joints import hands_to_interhand

log = logging.getLogger(__name__)

HAND_TYPES = ("right", "left", "interacting")
SEQ_NAMES = {2: "dh", 0: "rh", 1: "lh"}  # hand_type code -> sequence name part (double / right / left hand)
SEQ_PATTERN = (2, 0, 2, 1)  # sequence kinds cycle: half interacting, a quarter each single hand
FRAME_STEP = 6  # frame_idx step: 5 fps sampled from 30 fps capture
MAX_FRAMES_PER_SEQ = 8  # shorter for tiny sets, so every kind of sequence appears
FRAMES_PER_CAPTURE = 48
RIG_CENTRE_MM = np.array([0.0, 0.0, 1000.0])
# Right hand at root rotation 0: fingers along -x, dorsal side +y, thumb side +z (MANO frame).
# BASE maps it to the pair frame: fingers up (-y), palm towards the mirror plane x = 0 (-x).
BASE = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
MIRROR = np.diag([-1.0, 1.0, 1.0])
SKIN_TONES = np.array([  # RGB in [0, 1], light to dark
    [0.93, 0.78, 0.69], [0.87, 0.69, 0.58], [0.78, 0.58, 0.45],
    [0.66, 0.47, 0.34], [0.52, 0.36, 0.25], [0.38, 0.26, 0.18],
])
PCA_STD = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.3] + [0.08] * 35)
MAX_JOINT_ANGLE = 1.7  # rad, per finger joint (relative to the mean hand)
JPEG_QUALITY = 92
GESTURE_SEED = 2_600_000  # the gesture library's seed: shared by every dataset seed and split
GESTURE_JITTER = 0.15  # per performance of a gesture, in units of PCA_STD


@dataclass
class RigCamera:
    name: str
    R: np.ndarray  # (3, 3) world -> camera
    campos: np.ndarray  # (3,) mm
    focal: np.ndarray  # (2,)
    princpt: np.ndarray  # (2,)
    width: int
    height: int

    @property
    def mono(self) -> bool:
        return self.name.startswith("41")

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.focal[0], 0, self.princpt[0]], [0, self.focal[1], self.princpt[1]], [0, 0, 1.0]])


@dataclass
class SynthFrame:
    capture: int
    seq_name: str
    frame_idx: int
    hand_type: int
    pose: np.ndarray  # (2, 48) NeuralAnnot pose: root aa + finger aa relative to the mean hand
    shape: np.ndarray  # (2, 10)
    trans: np.ndarray  # (2, 3) metres
    has_mano: bool  # False: the frame is missing from MANO_NeuralAnnot.json
    skin: np.ndarray  # (3,) RGB
    verts_world: np.ndarray | None = None  # (2, V, 3) metres
    joints_world_mm: np.ndarray | None = None  # (42, 3) InterHand order

    @property
    def present(self) -> np.ndarray:
        return np.array([self.hand_type in (0, 2), self.hand_type in (1, 2)])


# -- geometry --------------------------------------------------------------------------------------
def look_at(campos: np.ndarray, target: np.ndarray, roll_deg: float) -> np.ndarray:
    """World -> camera rotation of an OpenCV camera at campos looking at target (y roughly down)."""
    z = target - campos
    z = z / np.linalg.norm(z)
    x = np.cross(np.array([0.0, 1.0, 0.0]), z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]]) @ R


def make_rig(rng: np.random.Generator, n: int) -> list[RigCamera]:
    """`n` cameras around the rig centre, alternating portrait / landscape, every 4th monochrome."""
    cams = []
    for k in range(n):
        azimuth = 2 * math.pi * k / n + rng.uniform(-0.3, 0.3)
        elevation = rng.uniform(-0.5, 0.35)
        dist = rng.uniform(850, 1100)
        campos = RIG_CENTRE_MM + dist * np.array([math.sin(azimuth) * math.cos(elevation), math.sin(elevation),
                                                  -math.cos(azimuth) * math.cos(elevation)])
        target = RIG_CENTRE_MM + rng.uniform(-20, 20, 3)
        width, height = (334, 512) if k % 2 == 0 else (512, 334)
        f = rng.uniform(950, 1150)
        name = str((410000 if k % 4 == 3 else 400000) + k + 1)
        cams.append(RigCamera(
            name=name, R=look_at(campos, target, rng.uniform(-15, 15)), campos=campos,
            focal=np.array([f, f * rng.uniform(0.998, 1.002)]),
            princpt=np.array([width / 2 + rng.uniform(-10, 10), height / 2 + rng.uniform(-10, 10)]),
            width=width, height=height,
        ))
    return cams


def _random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    axis = rng.normal(size=3)
    return aa_to_matrix(axis / np.linalg.norm(axis) * math.radians(rng.uniform(0, max_deg)))


def pca_coefficients(rng: np.random.Generator) -> np.ndarray:
    """(45,) clipped MANO PCA coefficients of a free finger pose."""
    return np.clip(rng.normal(size=45) * PCA_STD, -2 * PCA_STD, 2 * PCA_STD)


def gesture_library(count: int) -> np.ndarray:
    """(count, 45) PCA coefficients of `count` finger gestures, the same for every seed and split
    (like InterHand2.6M, where every subject performs the same gesture list)."""
    return np.stack([pca_coefficients(np.random.default_rng([GESTURE_SEED, k])) for k in range(count)])


def _finger_pose(rng: np.random.Generator, hands: Any, gestures: np.ndarray | None = None) -> np.ndarray:
    """(45,) axis-angle relative to the mean hand (right hand basis): a free pose from clipped PCA
    coefficients, or one of `gestures` (K, 45) performed with a little variation."""
    if gestures is None:
        return finger_axis_angle(hands, pca_coefficients(rng))
    jitter = rng.normal(size=45) * PCA_STD * GESTURE_JITTER
    return finger_axis_angle(hands, gestures[int(rng.integers(len(gestures)))] + jitter)


def finger_axis_angle(hands: Any, coeffs: np.ndarray) -> np.ndarray:
    """(45,) right-hand finger axis-angle of PCA coefficients (45,), each joint's angle clipped."""
    import torch

    aa = hands.pca_to_axis_angle(torch.as_tensor(np.stack([coeffs, coeffs]), dtype=torch.float32)[None])[0, 0].numpy()
    aa = aa.reshape(15, 3).astype(np.float64)
    norm = np.linalg.norm(aa, axis=1, keepdims=True)
    return (aa * np.minimum(1.0, MAX_JOINT_ANGLE / np.maximum(norm, 1e-9))).reshape(45)


def _hand_state(rng: np.random.Generator, hands: Any, kind: int,
                gestures: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Pair-frame placement of a sequence key pose: per-hand rotation (2, 3, 3), wrist mm (2, 3), fingers."""
    rot = np.stack([BASE, MIRROR @ BASE @ MIRROR])
    wrist = np.zeros((2, 3))
    if kind == 2:
        half_gap = rng.uniform(12, 45)
        slide = rng.uniform(-45, 45, 2)
        wrist[0] = [half_gap, slide[0] / 2, slide[1] / 2]
        wrist[1] = [-half_gap, -slide[0] / 2, -slide[1] / 2]
        for h in range(2):
            rot[h] = _random_rotation(rng, 35) @ rot[h]
    else:
        rot[kind] = _random_rotation(rng, 60) @ rot[kind]
    fingers = np.stack([_finger_pose(rng, hands, gestures), _finger_pose(rng, hands, gestures)])
    fingers[1] = (fingers[1].reshape(15, 3) * np.array([1.0, -1.0, -1.0])).reshape(45)  # mirrored basis
    return {"rot": rot, "wrist": wrist, "fingers": fingers}


def _lerp_state(a: dict, b: dict, t: float) -> dict:
    rot = aa_to_matrix((1 - t) * matrix_to_aa(a["rot"]) + t * matrix_to_aa(b["rot"]))
    return {"rot": rot, "wrist": (1 - t) * a["wrist"] + t * b["wrist"],
            "fingers": (1 - t) * a["fingers"] + t * b["fingers"]}


def _sequence(rng: np.random.Generator, hands: Any, kind: int, n: int, betas: np.ndarray,
              root_joint: np.ndarray, gestures: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """n frames of (pose (2, 48), trans (2, 3) m) interpolated between two key states."""
    Q = _random_rotation(rng, 30) @ aa_to_matrix(np.array([0.0, rng.uniform(0, 2 * math.pi), 0.0]))
    centre = RIG_CENTRE_MM + rng.uniform(-30, 30, 3)
    a, b = _hand_state(rng, hands, kind, gestures), _hand_state(rng, hands, kind, gestures)
    if rng.random() < 0.5:  # half the sequences keep the hand placement and only move a little
        b["rot"] = np.stack([_random_rotation(rng, 15) @ a["rot"][h] for h in range(2)])
    out = []
    for i in range(n):
        s = _lerp_state(a, b, i / max(n - 1, 1))
        pose = np.zeros((2, 48))
        pose[:, :3] = matrix_to_aa(Q @ s["rot"])
        pose[:, 3:] = s["fingers"]
        wrist_world_m = (centre + s["wrist"] @ Q.T) / 1000.0
        out.append((pose, wrist_world_m - root_joint))  # MANO rotates about J0: trans puts J0 there
    return out


# -- images ----------------------------------------------------------------------------------------
def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]: a gradient with soft shapes, or a dark studio with light spots."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    angle = rng.uniform(0, 2 * math.pi)
    t = (xx * math.cos(angle) + yy * math.sin(angle)) / max(width, height)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = (a * (1 - t[..., None]) + b * t[..., None]).astype(np.float32)
    if rng.random() < 0.3:
        img *= rng.uniform(0.05, 0.2)
        for _ in range(int(rng.integers(2, 7))):
            c = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.circle(img, c, int(rng.integers(3, 10)), (1.0, 1.0, 1.0), -1, cv2.LINE_AA)
    else:
        for _ in range(int(rng.integers(2, 8))):
            c = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            axes = (int(rng.integers(10, width // 2)), int(rng.integers(10, height // 2)))
            colour = tuple(float(v) for v in rng.uniform(0, 1, 3))
            cv2.ellipse(img, c, axes, rng.uniform(0, 180), 0, 360, colour, -1, cv2.LINE_AA)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1, 6))
    return img


def _compose(render: Any, bg: np.ndarray, gain: float, tint: np.ndarray, mono: bool,
             rng: np.random.Generator) -> np.ndarray:
    """Rendered hands over the background -> uint8 BGR."""
    alpha = render.alpha[..., None]
    rgb = render.rgb.astype(np.float32) / 255.0 * gain * tint + (1 - alpha) * bg
    rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(0.012)
    if mono:
        rgb = np.repeat(rgb @ np.array([0.299, 0.587, 0.114], np.float32), 3).reshape(rgb.shape)
    return cv2.cvtColor((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)


# -- split ----------------------------------------------------------------------------------------
def _make_frames(rng: np.random.Generator, hands: Any, frames: int, missing_mano: float,
                 frames_per_sequence: int | None = None, gestures: int | None = None) -> list[SynthFrame]:
    out: list[SynthFrame] = []
    capture, seq = -1, 0
    seq_len = frames_per_sequence or min(MAX_FRAMES_PER_SEQ, max(2, frames // 4))
    library = gesture_library(gestures) if gestures else None
    betas = skin = root_joint = None
    while len(out) < frames:
        if len(out) % FRAMES_PER_CAPTURE == 0 and (not out or out[-1].capture == capture):
            capture += 1
            beta = np.clip(rng.normal(0, 0.8, 10), -2, 2)
            betas = np.stack([beta, beta])
            skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))] * rng.uniform(0.95, 1.05, 3)
            flat = -hands.hand_mean.numpy()  # all joint rotations zero: the rest root joint J0
            root_joint = hands.forward_numpy(np.zeros((2, 3)), flat, betas)[1][:, 0].astype(np.float64)
        kind = SEQ_PATTERN[seq % len(SEQ_PATTERN)]
        n = min(seq_len, frames - len(out), FRAMES_PER_CAPTURE - len(out) % FRAMES_PER_CAPTURE)
        name = f"{seq:04d}_{SEQ_NAMES[kind]}_synth"
        for pose, trans in _sequence(rng, hands, kind, n, betas, root_joint, library):
            out.append(SynthFrame(capture, name, FRAME_STEP * (len(out) % FRAMES_PER_CAPTURE) + 1, kind, pose,
                                  betas.copy(), trans, bool(rng.random() >= missing_mano), skin))
        seq += 1
    for chunk in range(0, len(out), 64):
        batch = out[chunk: chunk + 64]
        pose = np.stack([f.pose for f in batch])
        verts, joints = hands.forward_numpy(pose[..., :3], pose[..., 3:], np.stack([f.shape for f in batch]),
                                            np.stack([f.trans for f in batch]))
        for f, v, j in zip(batch, verts, joints):
            f.verts_world = v.astype(np.float64)
            j = j.astype(np.float64) * 1000.0
            j[~f.present] = 0.0
            f.joints_world_mm = hands_to_interhand(j)
    return out


def _camera_json(rigs: dict[int, list[RigCamera]]) -> dict:
    out = {}
    for capture, rig in rigs.items():
        out[str(capture)] = {
            "campos": {c.name: c.campos.tolist() for c in rig},
            "camrot": {c.name: c.R.tolist() for c in rig},
            "focal": {c.name: c.focal.tolist() for c in rig},
            "princpt": {c.name: c.princpt.tolist() for c in rig},
        }
    return out


def _joint_json(frames: list[SynthFrame]) -> dict:
    out: dict[str, dict] = {}
    for f in frames:
        valid = np.repeat(f.present, 21)
        out.setdefault(str(f.capture), {})[str(f.frame_idx)] = {
            "world_coord": np.round(f.joints_world_mm, 4).tolist(),
            "joint_valid": [[bool(v)] for v in valid],
            "hand_type": HAND_TYPES[f.hand_type],
            "hand_type_valid": True,
        }
    return out


def _mano_json(frames: list[SynthFrame]) -> dict:
    out: dict[str, dict] = {}
    for f in frames:
        if not f.has_mano:
            continue
        out.setdefault(str(f.capture), {})[str(f.frame_idx)] = {
            side: ({"pose": f.pose[h].tolist(), "shape": f.shape[h].tolist(), "trans": f.trans[h].tolist()}
                   if f.present[h] else None)
            for h, side in enumerate(("right", "left"))
        }
    return out


def _bbox(uv: np.ndarray, width: int, height: int) -> list[float]:
    lo, hi = uv.min(0), uv.max(0)
    pad = 0.1 * (hi - lo)
    lo, hi = np.maximum(lo - pad, 0), np.minimum(hi + pad, [width - 1, height - 1])
    return [float(lo[0]), float(lo[1]), float(max(hi[0] - lo[0], 1.0)), float(max(hi[1] - lo[1], 1.0))]


def _render_split(out: Path, split: str, frames: list[SynthFrame], rigs: dict[int, list[RigCamera]],
                  hands: Any, rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    from dir_net.render.renderer import MeshSpec, Renderer

    faces = np.asarray(hands.faces)
    images: list[dict] = []
    annotations: list[dict] = []
    with Renderer(334, 512, bg_color=(0.0, 0.0, 0.0)) as renderer:
        for capture, rig in rigs.items():
            cap_frames = [f for f in frames if f.capture == capture]
            for cam in rig:
                renderer.resize(cam.width, cam.height)
                bg_cache: dict[str, np.ndarray] = {}
                for f in cap_frames:
                    if f.seq_name not in bg_cache:  # a static background per camera and sequence
                        bg_cache[f.seq_name] = background(rng, cam.width, cam.height)
                    bg = bg_cache[f.seq_name]
                    verts_cam = (f.verts_world * 1000.0 - cam.campos) @ cam.R.T / 1000.0
                    meshes = [MeshSpec(verts_cam[h], faces[h], tuple(np.clip(f.skin * (1 - 0.04 * h), 0, 1)))
                              for h in range(2) if f.present[h]]
                    render = renderer.render(meshes, cam.K)
                    image = _compose(render, bg, rng.uniform(0.8, 1.25), rng.uniform(0.92, 1.08, 3), cam.mono, rng)
                    file_name = f"Capture{capture}/{f.seq_name}/cam{cam.name}/image{f.frame_idx}.jpg"
                    ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                    if not ok:
                        raise RuntimeError(f"JPEG encoding failed for {file_name}")
                    write_bytes(out / "images" / split / file_name, jpg.tobytes())
                    uv = (f.joints_world_mm - cam.campos) @ cam.R.T
                    uv = uv[:, :2] / uv[:, 2:] * cam.focal + cam.princpt
                    valid = np.repeat(f.present, 21)
                    idx = len(images)
                    images.append({"id": idx, "file_name": file_name, "width": cam.width, "height": cam.height,
                                   "capture": capture, "subject": capture, "seq_name": f.seq_name,
                                   "camera": cam.name, "frame_idx": f.frame_idx})
                    annotations.append({"id": idx, "image_id": idx, "bbox": _bbox(uv[valid], cam.width, cam.height),
                                        "joint_valid": [[int(v)] for v in valid],
                                        "hand_type": HAND_TYPES[f.hand_type], "hand_type_valid": 1})
    return images, annotations


COMPLETE_MARKER = "dirnet_synth.json"  # written last by `generate`: counts per split, the arguments


def synth_arguments(frames: int, seed: int, cameras: int, missing_mano: float,
                    model_dir: str | None, frames_per_sequence: int | None = None,
                    gestures: int | None = None) -> dict[str, Any]:
    """What decides a split's content (besides its name): recorded in COMPLETE_MARKER
    (`frames_per_sequence` and `gestures` only when set, so datasets made before they existed still match)."""
    import os

    hands = str(model_dir or os.environ.get("DIRNET_MANO_DIR") or "synthetic")
    out = {"frames": int(frames), "seed": int(seed), "cameras": int(cameras),
           "missing_mano": float(missing_mano), "hands": hands}
    if frames_per_sequence:
        out["frames_per_sequence"] = int(frames_per_sequence)
    if gestures:
        out["gestures"] = int(gestures)
    return out


def existing_dataset(out: str | Path, frames: int = 64, seed: int = 0, splits: Sequence[str] = SPLITS,
                     cameras: int = 4, missing_mano: float = 0.03, model_dir: str | None = None,
                     force: bool = False, frames_per_sequence: int | None = None,
                     gestures: int | None = None) -> dict[str, Any] | None:
    """Before `generate`: the summary of the finished dataset at `out` when the same arguments
    already produced these splits (nothing to do), or None when `out` may be written (absent,
    empty, or `force`). DataError when `out` holds anything else and not `force`."""
    out = Path(out)
    if force or not out.is_dir() or not any(out.iterdir()):
        return None
    if not is_complete(out):
        raise DataError(f"{out}: not empty and holds no finished synthetic dataset (no {COMPLETE_MARKER}: an "
                        "interrupted `dirnet data synth`, or another dataset); pass --force to write into it, "
                        "or give an empty folder")
    try:
        summary = json.loads((out / COMPLETE_MARKER).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{out / COMPLETE_MARKER}: unreadable ({exc}); pass --force to regenerate") from None
    wanted = synth_arguments(frames, seed, cameras, missing_mano, model_dir, frames_per_sequence, gestures)
    made = summary.get("arguments", {})
    differences = [f"{k}={made.get(k, '-')} (asked: {wanted.get(k, '-')})" for k in {**wanted, **made}
                   if made.get(k) != wanted.get(k)]
    missing = [s for s in splits if s not in summary]
    if differences or missing:
        what = ", ".join(differences + ([f"no split {','.join(missing)}"] if missing else []))
        raise DataError(f"{out}: holds another synthetic dataset ({what}); pass --force to replace it, or give "
                        "another folder")
    return summary


def generate(out: str | Path, frames: int = 64, seed: int = 0, splits: Sequence[str] = SPLITS, cameras: int = 4,
             missing_mano: float = 0.03, model_dir: str | None = None,
             frames_per_sequence: int | None = None, gestures: int | None = None) -> dict[str, Any]:
    """Write a synthetic InterHand2.6M v1.0 dataset under `out`; returns counts per split (and
    the arguments, `synth_arguments`). `frames_per_sequence` (default: up to 8, interpolated between
    two key poses) at 1 gives every frame its own independently drawn pose: the most pose variety per image.
    `gestures` K (default: free poses) draws every hand's fingers from a library of K gestures shared by
    all seeds and splits, each performance slightly varied: the structure of InterHand2.6M, whose
    subjects all perform one gesture list."""
    import mano

    if frames < 1 or cameras < 1 or any(v is not None and v < 1 for v in (frames_per_sequence, gestures)):
        raise DataError(f"--frames, --cameras, --frames-per-sequence and --gestures must be >= 1, got {frames}, "
                        f"{cameras}, {frames_per_sequence} and {gestures}")
    if Path(out).exists() and not Path(out).is_dir():
        raise DataError(f"{out}: exists and is not a folder; give a folder for the dataset")
    for split in splits:
        check_split(split)
    hands = mano.load_hands(model_dir, tips="interhand").eval()
    out = Path(out)
    (out / COMPLETE_MARKER).unlink(missing_ok=True)  # until this run finishes, the folder is not a whole dataset
    summary: dict[str, Any] = {"root": str(out),
                               "arguments": synth_arguments(frames, seed, cameras, missing_mano, model_dir,
                                                            frames_per_sequence, gestures)}
    for split in splits:
        rng = np.random.default_rng([seed, SPLITS.index(split)])
        split_frames = _make_frames(rng, hands, frames, missing_mano, frames_per_sequence, gestures)
        rigs = {c: make_rig(rng, cameras) for c in sorted({f.capture for f in split_frames})}
        images, annotations = _render_split(out, split, split_frames, rigs, hands, rng)
        ann_dir = out / "annotations" / split
        prefix = f"InterHand2.6M_{split}"
        order = rng.permutation(len(images))  # images[] and annotations[] in different orders, as allowed
        data = {"images": [images[i] for i in order], "annotations": annotations}
        write_text(ann_dir / f"{prefix}_data.json", json.dumps(data))
        write_text(ann_dir / f"{prefix}_camera.json", json.dumps(_camera_json(rigs)))
        write_text(ann_dir / f"{prefix}_joint_3d.json", json.dumps(_joint_json(split_frames)))
        write_text(ann_dir / f"{prefix}_MANO_NeuralAnnot.json", json.dumps(_mano_json(split_frames)))
        summary[split] = {"frames": len(split_frames), "images": len(images), "captures": len(rigs),
                          "interacting": int(sum(f.hand_type == 2 for f in split_frames))}
        log.info("synth %s: %d frames x %d cameras -> %s", split, len(split_frames), cameras, ann_dir)
    write_text(out / COMPLETE_MARKER, json.dumps(summary, indent=2))  # last: the dataset is whole
    return summary


def is_complete(root: str | Path) -> bool:
    """True when `generate` finished writing the dataset at `root` (not interrupted)."""
    return (Path(root) / COMPLETE_MARKER).is_file()

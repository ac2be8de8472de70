"""Evaluation benchmark: frames/s of `eval.evaluate` with every protocol, without and with the
interpenetration volume (IV), on random data of realistic shapes.

Ground truth: two MANO hands per frame (778 vertices each, millimetres, ~2/3 of the frames
interacting, ~5% invalid joints), projected to pixels; predictions: ground truth + ~10 mm noise.
IV voxelises every interacting frame, so it runs on `iv_frames` frames only.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from dir_net.bench.batch import synthetic_batch
from dir_net.bench.report import make_result
from dir_net.errors import DirNetError

COLUMNS = ("iv", "frames", "protocols", "seconds", "frames_per_s")
POOL = 64  # distinct hand pairs, tiled (with noise) to the requested frame count


@dataclass
class EvalOptions:
    frames: int = 4096
    iv_frames: int = 128
    repeats: int = 3  # the median of `repeats` runs is reported
    seed: int = 0


def synthetic_eval_data(frames: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(pred, gt) interchange dicts of `frames` rows (millimetres, pixels)."""
    import mano

    hands = mano.load_hands(None)
    pool = synthetic_batch(min(POOL, frames), 256, aux_size=8, seed=seed, hands=hands)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(pool["id"]), frames)
    mm = lambda key: pool[key].numpy().astype(np.float64)[pick] * 1000.0  # noqa: E731
    px = lambda key: pool[key].numpy().astype(np.float64)[pick]  # noqa: E731
    jitter = lambda shape, scale: rng.normal(0.0, scale, shape)  # noqa: E731
    joints, verts = mm("joints_3d"), mm("verts_3d")
    shift = jitter((frames, 2, 1, 3), 5.0)  # per-hand variation of the tiled pool
    joints, verts = joints + shift, verts + shift
    hand_type = rng.choice([0, 1, 2, 2, 2, 2], frames)  # ~2/3 interacting
    gt = {
        "ids": np.arange(frames, dtype=np.int64),
        "joints": joints, "verts": verts,
        "joints_2d": px("joints_2d"), "verts_2d": px("verts_2d"),
        "joint_valid": rng.random((frames, 2, 21)) > 0.05,
        "hand_type": hand_type.astype(np.int64),
        "faces": np.asarray(hands.faces),
    }
    pred = {
        "ids": gt["ids"].copy(),
        "joints": joints + jitter(joints.shape, 10.0), "verts": verts + jitter(verts.shape, 10.0),
        "joints_2d": gt["joints_2d"] + jitter(gt["joints_2d"].shape, 3.0),
        "verts_2d": gt["verts_2d"] + jitter(gt["verts_2d"].shape, 3.0),
        "hand_prob": np.clip(np.stack([hand_type != 1, hand_type != 0], 1) + jitter((frames, 2), 0.2), 0, 1),
    }
    return pred, gt


def time_evaluate(pred: dict[str, np.ndarray], gt: dict[str, np.ndarray], iv: bool, repeats: int) -> dict[str, Any]:
    from eval import PROTOCOLS, evaluate

    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        metrics = evaluate(pred, gt, tuple(PROTOCOLS), iv=iv).compute()
        seconds.append(time.perf_counter() - start)
    best = float(np.median(seconds))
    frames = len(gt["ids"])
    return {"iv": iv, "frames": frames, "protocols": len(PROTOCOLS), "seconds": best, "frames_per_s": frames / best,
            "interacting_frames": int((gt["hand_type"] == 2).sum()), "metrics": metrics}


def run(opts: EvalOptions) -> dict[str, Any]:
    if opts.frames < 1 or opts.iv_frames < 0 or opts.repeats < 1:
        raise DirNetError("--frames and --repeats must be >= 1, --iv-frames >= 0")
    with torch.no_grad():
        pred, gt = synthetic_eval_data(max(opts.frames, opts.iv_frames), opts.seed)
    rows = [time_evaluate(_head(pred, opts.frames), _head(gt, opts.frames), iv=False, repeats=opts.repeats)]
    if opts.iv_frames:
        rows.append(time_evaluate(_head(pred, opts.iv_frames), _head(gt, opts.iv_frames), iv=True, repeats=1))
    return make_result("eval", asdict(opts), rows, device="cpu")


def _head(arrays: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    return {k: (v if k == "faces" else v[:n]) for k, v in arrays.items()}

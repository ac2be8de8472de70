"""A fixed synthetic training / inference batch with every key of the data contract.

Both hands are real MANO meshes (the configured hand model, the synthetic one by default) with
random poses and shapes, placed in front of a pinhole crop camera, so every loss term sees
plausible geometry. Keys and shapes follow docs/DESIGN.md (DIR and InterNet pipelines).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

BENCH_MODELS = ("dir", "internet")  # models whose batch contract this module fills


def _hands_in_camera(hands: Any, batch: int, gen: torch.Generator) -> dict[str, Tensor]:
    """Random interacting hands: MANO parameters and camera-frame vertices / joints (metres)."""
    root = torch.randn(batch, 2, 3, generator=gen) * 0.5  # axis-angle, camera frame
    finger = torch.randn(batch, 2, 45, generator=gen) * 0.2  # relative to the mean hand
    betas = torch.randn(batch, 2, 10, generator=gen) * 0.5
    transl = torch.tensor([[-0.04, 0.0, 0.55], [0.04, 0.0, 0.57]]).expand(batch, 2, 3)
    transl = transl + torch.randn(batch, 2, 3, generator=gen) * 0.01
    with torch.no_grad():
        out = hands(root, finger, betas, transl=transl)
    return {"root": root, "finger": finger, "betas": betas, "verts": out.vertices, "joints": out.joints}


def _project(points: Tensor, K: Tensor) -> Tensor:
    """(B, ..., 3) camera frame -> (B, ..., 2) pixels with per-sample intrinsics K (B, 3, 3)."""
    shape = points.shape
    flat = points.reshape(shape[0], -1, 3)
    uvw = flat @ K.transpose(1, 2)
    return (uvw[..., :2] / uvw[..., 2:]).reshape(*shape[:-1], 2)


def synthetic_batch(batch: int, size: int, aux_size: int = 64, seed: int = 0, hands: Any = None,
                    mano_cfg: Mapping[str, Any] | None = None) -> dict[str, Tensor]:
    """A CPU batch of `batch` samples at `size` x `size` with the DIR and InterNet keys.

    hands: a `mano.load_hands` layer (built from `mano_cfg` = cfg.mano when None).
    """
    import mano

    if hands is None:
        mano_cfg = mano_cfg or {}
        hands = mano.load_hands(mano_cfg.get("model_dir"), tips=mano_cfg.get("tips", "dir"))
    gen = torch.Generator().manual_seed(seed)
    geo = _hands_in_camera(hands, batch, gen)
    joints, verts = geo["joints"], geo["verts"]  # (B, 2, 21, 3), (B, 2, V, 3) metres
    focal = 2.2 * size  # the two hands (~0.2 m at ~0.56 m) fill most of the crop
    K = torch.tensor([[focal, 0.0, size / 2.0], [0.0, focal, size / 2.0], [0.0, 0.0, 1.0]]).expand(batch, 3, 3)
    joints_2d = _project(joints, K)
    rel_z = joints[..., 2] - joints[:, :, :1, 2]  # (B, 2, 21) m, relative to each wrist
    ones = lambda *s: torch.ones(*s)  # noqa: E731
    return {
        "image": torch.randn(batch, 3, size, size, generator=gen),
        "id": torch.arange(batch, dtype=torch.int64),
        "hand_type": torch.full((batch,), 2, dtype=torch.int64),
        "hand_type_valid": ones(batch),
        "joints_3d": joints,
        "joint_valid": ones(batch, 2, 21),
        "joints_2d": joints_2d,
        "K_crop": K.clone(),
        "crop_to_image": torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(batch, 2, 3).clone(),
        "mano_root": geo["root"],
        "mano_finger": geo["finger"],
        "mano_betas": geo["betas"],
        "mano_valid": ones(batch, 2),
        "verts_3d": verts,
        "verts_2d": _project(verts, K),
        "seg": torch.randint(0, 3, (batch, aux_size, aux_size), generator=gen),
        "dense": torch.rand(batch, 3, aux_size, aux_size, generator=gen),
        "aux_valid": ones(batch),
        "joints_25d": torch.cat([joints_2d, rel_z[..., None]], dim=-1),
        "rel_root_depth": (joints[:, 1, 0, 2] - joints[:, 0, 0, 2])[:, None],
        "root_valid": ones(batch),
        "hand_present": ones(batch, 2),
    }


def to_device(batch: Mapping[str, Tensor], device: torch.device, channels_last: bool = False) -> dict[str, Tensor]:
    out = {k: v.to(device) for k, v in batch.items()}
    if channels_last:
        out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
    return out

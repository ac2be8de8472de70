"""Typed model outputs shared by losses, evaluation and rendering.

Hand axis: 0 = right, 1 = left. Joint order: wrist-first (mano.joints.WRIST_FIRST_NAMES).
Units: metres for 3D, crop pixels for 2D unless a field says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor


@dataclass
class StageOutput:
    """Hands estimated by one DIR stage (stage 0 is the initial regression from the encoder)."""

    root_6d: Tensor  # (B, 2, 6) root rotation, camera frame, 6D (first two matrix columns)
    finger_pose: Tensor  # (B, 2, P) PCA coefficients, relative to the mean hand
    betas: Tensor  # (B, 2, 10)
    cam: Tensor  # (B, 2, 3) weak perspective (s, tx, ty): uv = s * xy + t, uv in [-1, 1] of the crop
    offset: Tensor  # (B, 3) metres, left wrist - right wrist
    vertices: Tensor  # (B, 2, V, 3) metres, each hand about its own wrist
    joints: Tensor  # (B, 2, 21, 3) metres, each hand about its own wrist
    verts_uv: Tensor  # (B, 2, V, 2) weak-perspective projection, [-1, 1] crop coordinates
    joints_uv: Tensor  # (B, 2, 21, 2) same


@dataclass
class Prediction:
    """What every model hands to evaluation and rendering (DIR and InterNet alike).

    `joints` / `vertices` are in the camera frame's orientation with the right wrist at the
    origin (`offset` places the left hand) unless the model knows absolute depth, in which case
    `absolute` is True and they are full camera coordinates.
    """

    joints: Tensor  # (B, 2, 21, 3) metres
    offset: Tensor  # (B, 3) metres, left wrist - right wrist
    vertices: Tensor | None = None  # (B, 2, V, 3) metres
    joints_2d: Tensor | None = None  # (B, 2, 21, 2) crop pixels
    verts_2d: Tensor | None = None  # (B, 2, V, 2) crop pixels
    hand_prob: Tensor | None = None  # (B, 2) probability that each hand is present
    absolute: bool = False
    stages: list[StageOutput] = field(default_factory=list)  # DIR: every stage, last = final
    aux: dict[str, Tensor] = field(default_factory=dict)  # e.g. "seg" (B, 3, h, w) logits

    def detach(self) -> "Prediction":
        """A copy with every tensor detached (for logging and evaluation)."""
        return _map_tensors(self, lambda t: t.detach())

    def to(self, device: torch.device | str) -> "Prediction":
        return _map_tensors(self, lambda t: t.to(device))


def _map_tensors(obj, fn):
    if isinstance(obj, Tensor):
        return fn(obj)
    if isinstance(obj, list):
        return [_map_tensors(x, fn) for x in obj]
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    if hasattr(obj, "__dataclass_fields__"):
        return type(obj)(**{f.name: _map_tensors(getattr(obj, f.name), fn) for f in fields(obj)})
    return obj

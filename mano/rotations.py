"""Rotation representations used by the hand layer (torch, batched over leading dims).

6D convention: the first two COLUMNS of the rotation matrix, concatenated:
`r6 = (R[0,0], R[1,0], R[2,0], R[0,1], R[1,1], R[2,1])`; back to a matrix by Gram-Schmidt.
"""

from __future__ import annotations

import roma
import torch
from torch import Tensor

ROOT_REPRS = ("aa", "6d", "matrix")


def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """(..., 3) axis-angle (radians) -> (..., 3, 3); smooth and finite-gradient at zero."""
    return roma.rotvec_to_rotmat(aa)


def matrix_to_axis_angle(rot: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 3) axis-angle with angle in [0, pi]."""
    return roma.rotmat_to_rotvec(rot)


def rot6d_to_matrix(r6: Tensor) -> Tensor:
    """(..., 6) first two matrix columns (any scale, not orthogonal) -> (..., 3, 3) rotation."""
    a1, a2 = r6[..., 0:3], r6[..., 3:6]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(rot: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 6): first column then second column."""
    return torch.cat([rot[..., :, 0], rot[..., :, 1]], dim=-1)


def to_matrix(root: Tensor, repr: str) -> Tensor:
    """Rotation in representation `repr` ("aa" (...,3), "6d" (...,6), "matrix" (...,3,3)) -> (...,3,3)."""
    if repr == "aa":
        return axis_angle_to_matrix(root)
    if repr == "6d":
        return rot6d_to_matrix(root)
    if repr == "matrix":
        return root
    raise ValueError(f"unknown rotation representation {repr!r}; choose one of {ROOT_REPRS}")


def mirror_axis_angle(aa):
    """Axis-angle of the rotation mirrored by x -> -x: (a, b, c) -> (a, -b, -c) per 3-vector.

    Works on numpy arrays and tensors whose last axis is a multiple of 3 (e.g. 45 finger values);
    this is how a right-hand pose maps to the left hand (MANO's left model mirrors the right).
    """
    if aa.shape[-1] % 3:
        raise ValueError(f"mirror_axis_angle: last axis must hold 3-vectors, got shape {tuple(aa.shape)}")
    shape = aa.shape
    flipped = aa.reshape(*shape[:-1], shape[-1] // 3, 3) * _mirror_signs(aa)
    return flipped.reshape(shape)


def _mirror_signs(aa):
    if isinstance(aa, Tensor):
        return torch.tensor([1.0, -1.0, -1.0], dtype=aa.dtype, device=aa.device)
    import numpy as np

    return np.array([1.0, -1.0, -1.0], dtype=aa.dtype)

"""Rotation representations used by the hand layer (torch, batched over leading dims).

6D convention: the first two COLUMNS of the rotation matrix, concatenated:
`r6 = (R[0,0], R[1,0], R[2,0], R[0,1], R[1,1], R[2,1])`; back to a matrix by Gram-Schmidt
("6d") or by the symmetric construction of the official DIR code ("6d_robust").

Two axis-angle -> matrix conversions: Rodrigues via roma (default) and the unit-quaternion route
of manopth (`axis_angle_to_matrix_quat`, with its 1e-8 offset), which the official DIR model uses.
"""

from __future__ import annotations

import roma
import torch
from torch import Tensor

ROOT_REPRS = ("aa", "6d", "6d_robust", "matrix")
FINGER_ROTATIONS = ("rodrigues", "quaternion")


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


def robust_rot6d_to_matrix(r6: Tensor, eps: float = 1e-8) -> Tensor:
    """(..., 6) -> (..., 3, 3) by the symmetric ("robust") construction of the official DIR code.

    a = r6[0:3], b = r6[3:6]; n(v) = v / max(|v|, eps); x = n(a), y = n(b), m = n(x + y),
    o = n(x - y), X = n(m + o), Y = n(m - o), Z = n(X x Y); R = [X Y Z] as columns. X and Y are
    symmetric about the bisector of a and b (neither column is privileged, unlike Gram-Schmidt).
    The official function also asserts det(R) > 0 per sample (a host sync); det is +1 by
    construction, so that check is not repeated here.
    """
    def n(v: Tensor) -> Tensor:
        return torch.nn.functional.normalize(v, dim=-1, eps=eps)

    x, y = n(r6[..., 0:3]), n(r6[..., 3:6])
    m, o = n(x + y), n(x - y)
    cx, cy = n(m + o), n(m - o)
    cz = n(torch.cross(cx, cy, dim=-1))
    return torch.stack([cx, cy, cz], dim=-1)


def axis_angle_to_matrix_quat(aa: Tensor) -> Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) through a unit quaternion, as manopth (official DIR).

    theta = |aa + 1e-8| (1e-8 added to each component), axis = aa / theta, q = (cos(theta/2),
    sin(theta/2) axis) normalised; finite (and gradient-finite) at aa = 0.
    """
    theta = torch.linalg.vector_norm(aa + 1e-8, dim=-1, keepdim=True)
    axis = aa / theta
    half = 0.5 * theta
    q = torch.cat([torch.cos(half), torch.sin(half) * axis], dim=-1)
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    w2, x2, y2, z2 = w * w, x * x, y * y, z * z
    wx, wy, wz, xy, xz, yz = w * x, w * y, w * z, x * y, x * z, y * z
    rows = [
        w2 + x2 - y2 - z2, 2 * xy - 2 * wz, 2 * wy + 2 * xz,
        2 * wz + 2 * xy, w2 - x2 + y2 - z2, 2 * yz - 2 * wx,
        2 * xz - 2 * wy, 2 * wx + 2 * yz, w2 - x2 - y2 + z2,
    ]
    return torch.stack(rows, dim=-1).reshape(*aa.shape[:-1], 3, 3)


def finger_rotation_fn(kind: str):
    """The axis-angle -> matrix conversion named `kind` (see FINGER_ROTATIONS)."""
    if kind == "rodrigues":
        return axis_angle_to_matrix
    if kind == "quaternion":
        return axis_angle_to_matrix_quat
    raise ValueError(f"unknown finger rotation conversion {kind!r}; choose one of {FINGER_ROTATIONS}")


def matrix_to_rot6d(rot: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 6): first column then second column."""
    return torch.cat([rot[..., :, 0], rot[..., :, 1]], dim=-1)


def to_matrix(root: Tensor, repr: str) -> Tensor:
    """Rotation in representation `repr` ("aa" (...,3), "6d" / "6d_robust" (...,6), "matrix" (...,3,3))
    -> (...,3,3)."""
    if repr == "aa":
        return axis_angle_to_matrix(root)
    if repr == "6d":
        return rot6d_to_matrix(root)
    if repr == "6d_robust":
        return robust_rot6d_to_matrix(root)
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

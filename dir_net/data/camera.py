"""InterHand2.6M camera maths, in one place.

World frame: millimetres (joint_3d.json, campos). Camera frame: OpenCV axes, `X_cam = R (X_world -
campos)` with R = camrot (world -> camera). Pixels: `u = fx x / z + cx`, `v = fy y / z + cy`.
MANO NeuralAnnot parameters live in the world frame in metres; `mano_world_to_camera` moves them.
Functions taking points accept any leading shape (..., 3) and any unit unless the name says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIRROR = np.diag([-1.0, 1.0, 1.0])  # camera-frame mirror x -> -x (horizontal image flip)


@dataclass(frozen=True)
class Camera:
    """One calibrated InterHand2.6M camera."""

    R: np.ndarray  # (3, 3) world -> camera rotation (camrot)
    campos: np.ndarray  # (3,) camera centre in the world frame, mm
    focal: np.ndarray  # (2,) fx, fy px
    princpt: np.ndarray  # (2,) cx, cy px

    @property
    def K(self) -> np.ndarray:
        (fx, fy), (cx, cy) = self.focal, self.princpt
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    def world_to_camera(self, points_mm: np.ndarray) -> np.ndarray:
        return world_to_camera(points_mm, self.R, self.campos)

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        return camera_to_pixel(points_cam, self.focal, self.princpt)

    def world_to_pixel(self, points_mm: np.ndarray) -> np.ndarray:
        return self.project(self.world_to_camera(points_mm))


def world_to_camera(points_mm: np.ndarray, R: np.ndarray, campos_mm: np.ndarray) -> np.ndarray:
    """(..., 3) world mm -> (..., 3) camera mm: R (X - campos)."""
    return (np.asarray(points_mm, np.float64) - campos_mm) @ np.asarray(R, np.float64).T


def camera_to_pixel(points: np.ndarray, focal: np.ndarray, princpt: np.ndarray) -> np.ndarray:
    """(..., 3) camera frame (any unit) -> (..., 2) pixels."""
    p = np.asarray(points, np.float64)
    z = p[..., 2:3]
    return p[..., :2] / z * np.asarray(focal, np.float64) + np.asarray(princpt, np.float64)


def project_K(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 3) camera frame -> (..., 2) pixels with a (3, 3) intrinsic matrix (skew allowed)."""
    p = np.asarray(points, np.float64) @ np.asarray(K, np.float64).T
    return p[..., :2] / p[..., 2:3]


def aa_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Rodrigues: (..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    aa = np.asarray(aa, np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.maximum(theta, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    skew = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(aa.shape[:-1] + (3, 3))
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), skew.shape)
    return eye + s * skew + (1.0 - c) * (skew @ skew)


def matrix_to_aa(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle with angle in [0, pi] (stable at 0 and pi)."""
    R = np.asarray(R, np.float64)
    m = R.reshape(-1, 3, 3)
    tr = np.trace(m, axis1=1, axis2=2)
    diag = np.diagonal(m, axis1=1, axis2=2)
    # Shepperd: take the quaternion component with the largest magnitude as the pivot.
    cand = np.concatenate([tr[:, None], diag], axis=1)
    pivot = np.argmax(cand, axis=1)
    q = np.empty((len(m), 4))  # w, x, y, z
    for k in range(4):
        sel = pivot == k
        if not sel.any():
            continue
        r = m[sel]
        if k == 0:
            s = np.sqrt(1.0 + tr[sel]) * 2.0
            q[sel] = np.stack([s / 4, (r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s,
                               (r[:, 1, 0] - r[:, 0, 1]) / s], 1)
        else:
            i = k - 1
            j, l = (i + 1) % 3, (i + 2) % 3
            s = np.sqrt(1.0 + r[:, i, i] - r[:, j, j] - r[:, l, l]) * 2.0
            comp = np.empty((len(r), 4))
            comp[:, 0] = (r[:, l, j] - r[:, j, l]) / s
            comp[:, 1 + i] = s / 4
            comp[:, 1 + j] = (r[:, j, i] + r[:, i, j]) / s
            comp[:, 1 + l] = (r[:, l, i] + r[:, i, l]) / s
            q[sel] = comp
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)  # w >= 0 -> angle in [0, pi]
    vec = q[:, 1:]
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    angle = 2.0 * np.arctan2(norm, q[:, :1])
    aa = np.where(norm > 1e-12, vec / np.maximum(norm, 1e-12) * angle, 2.0 * vec)
    return aa.reshape(R.shape[:-2] + (3,))


def mirror_aa(aa: np.ndarray) -> np.ndarray:
    """Axis-angle of the rotation seen in a mirror x -> -x: (x, y, z) -> (x, -y, -z)."""
    return np.asarray(aa) * np.array([1.0, -1.0, -1.0])


def mano_world_to_camera(
    root_aa: np.ndarray,
    trans_m: np.ndarray,
    root_joint_m: np.ndarray,
    R: np.ndarray,
    campos_mm: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """NeuralAnnot MANO (world frame, metres) -> camera frame.

    MANO rotates about its root joint J0 (which depends only on the shape):
    `v_world = Rw (v - J0) + J0 + trans`. Applying `X_cam = R (X_world - campos)` gives
    `R Rw (v - J0) + R (J0 + trans - campos)`, i.e. root rotation `R Rw` and
    `trans_cam = R (J0 + trans - campos) - J0`.

    root_aa (..., 3), trans_m (..., 3), root_joint_m (..., 3) = J0 of the un-translated, un-posed
    mesh for these betas. Returns (root_aa_cam (..., 3), trans_cam_m (..., 3)).
    """
    R = np.asarray(R, np.float64)
    root_cam = matrix_to_aa(R @ aa_to_matrix(root_aa))
    j0 = np.asarray(root_joint_m, np.float64)
    centre = np.asarray(campos_mm, np.float64) / 1000.0
    trans_cam = (j0 + np.asarray(trans_m, np.float64) - centre) @ R.T - j0
    return root_cam, trans_cam

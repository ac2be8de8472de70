"""Cameras for rendering: pinhole intrinsics, weak perspective -> pinhole, automatic framing.

Conventions (docs/DESIGN.md): camera frame x right, y down, z forward (OpenCV), metres. Pixel
coordinates are OpenCV's: pixel (u, v) = (column, row) and the centre of the top-left pixel is
(0, 0), so a pinhole camera maps a point to `u = fx * x / z + cx`, `v = fy * y / z + cy`.

Weak-perspective camera (DIR's per-hand `cam` = (s, tx, ty)): `uv = s * xy + t` gives normalised
crop coordinates in [-1, 1]; crop pixels are `u_px = (uv + 1) * size / 2` (the convention of the
DIR and IntagHand code bases: -1 is the left/top border of the crop, +1 the right/bottom one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PinholeCamera:
    """Pinhole intrinsics in pixels (OpenCV convention, no distortion)."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_K(cls, K: np.ndarray) -> "PinholeCamera":
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"camera matrix K must have shape (3, 3), got {K.shape}")
        return cls(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame metres -> (..., 2) pixels."""
        p = np.asarray(points, dtype=np.float64)
        z = p[..., 2]
        return np.stack([self.fx * p[..., 0] / z + self.cx, self.fy * p[..., 1] / z + self.cy], -1)


def as_camera(camera: "PinholeCamera | np.ndarray") -> PinholeCamera:
    """Accept a PinholeCamera or a (3, 3) K matrix."""
    return camera if isinstance(camera, PinholeCamera) else PinholeCamera.from_K(camera)


def weak_perspective_to_pinhole(
    cam: np.ndarray, crop_size: int, focal: float = 5000.0
) -> tuple[PinholeCamera, np.ndarray]:
    """Equivalent pinhole camera and translation for a weak-perspective camera (s, tx, ty).

    Weak perspective: `u_px = (s * x + tx + 1) * S / 2` with S = crop_size. A pinhole camera with
    focal `f` and principal point (S/2, S/2) looking at the points moved by
    `transl = (tx / s, ty / s, 2 f / (s S))` projects them to
    `u_px = f * (x + tx / s) / (z + tz) + S / 2`, which equals the weak-perspective pixel exactly
    for z = 0 and up to a relative error of about z / tz otherwise (tz is large when f is large:
    f = 5000 px, S = 256 and s = 8 give tz ~ 4.9 m, so a hand 10 cm deep is off by < 2%).

    Returns (camera, transl (3,) metres): render `vertices + transl` with `camera`.
    """
    s, tx, ty = (float(v) for v in np.asarray(cam, dtype=np.float64).reshape(3))
    if s <= 0:
        raise ValueError(f"weak-perspective scale s must be > 0, got {s}")
    tz = 2.0 * focal / (s * crop_size)
    camera = PinholeCamera(focal, focal, crop_size / 2.0, crop_size / 2.0)
    return camera, np.array([tx / s, ty / s, tz])


def weak_perspective_project(points: np.ndarray, cam: np.ndarray, crop_size: int) -> np.ndarray:
    """(..., 3) metres -> (..., 2) crop pixels with the weak-perspective camera (s, tx, ty)."""
    s, tx, ty = np.asarray(cam, dtype=np.float64).reshape(3)
    uv = s * np.asarray(points, dtype=np.float64)[..., :2] + np.array([tx, ty])
    return (uv + 1.0) * crop_size / 2.0


def rotation_matrix(axis: str, angle_deg: float) -> np.ndarray:
    """(3, 3) right-handed rotation by `angle_deg` about the camera-frame axis 'x', 'y' or 'z'."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    raise ValueError(f"rotation axis must be 'x', 'y' or 'z', got {axis!r}")


def bounding_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (bounding-box centre) and radius enclosing all (N, 3) points."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    centre = (p.min(0) + p.max(0)) / 2.0
    return centre, float(np.linalg.norm(p - centre, axis=1).max())


def orbit_view(
    points: np.ndarray,
    axis: str,
    angle_deg: float,
    width: int,
    height: int,
    fill: float = 0.8,
    focal: float | None = None,
) -> tuple[np.ndarray, PinholeCamera, np.ndarray]:
    """A rigid transform and camera that show the points rotated about their centre.

    The points are rotated by `angle_deg` about `axis` through their bounding-box centre and moved
    in front of a camera whose principal point is the image centre, at the distance where their
    bounding sphere fills `fill` of the smaller image side. Framing depends only on the sphere, so
    every angle of a turntable gets the same scale.

    Returns (R (3, 3), camera, t (3,)): view a point p at `R @ p + t`.
    """
    centre, radius = bounding_sphere(points)
    radius = max(radius, 1e-6)
    focal = float(focal if focal is not None else max(width, height))
    r_px = fill * min(width, height) / 2.0
    # A sphere of radius r at distance d spans f * r / sqrt(d^2 - r^2) pixels from the centre.
    distance = radius * np.sqrt(1.0 + (focal / r_px) ** 2)
    R = rotation_matrix(axis, angle_deg)
    t = np.array([0.0, 0.0, distance]) - R @ centre
    return R, PinholeCamera(focal, focal, (width - 1) / 2.0, (height - 1) / 2.0), t

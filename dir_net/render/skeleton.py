"""2D skeleton drawings (OpenCV) for predictions without meshes (InterNet): joints + bones.

Colours follow the mesh renderer: right hand RIGHT_COLOR (blue), left hand LEFT_COLOR (orange).
Joints are wrist-first (mano.joints), hand axis 0 = right, 1 = left.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from dir_net.render.camera import as_camera, orbit_view
from dir_net.render.renderer import HAND_COLORS
from mano.joints import BONES

HAND_RGB = tuple(tuple(int(round(255 * c)) for c in color) for color in HAND_COLORS)


def _line_width(image_side: int) -> int:
    return max(1, int(round(image_side / 160)))


def draw_skeleton(
    image: np.ndarray,
    joints_2d: np.ndarray,
    present: Any,
    joint_valid: np.ndarray | None = None,
    depth: np.ndarray | None = None,
) -> np.ndarray:
    """Bones and joints of the present hands on a copy of an RGB uint8 image.

    joints_2d (2, 21, 2) px; joint_valid (2, 21) (bones need both ends valid); depth (2, 21):
    when given, the farther hand is drawn first so the nearer one stays on top.
    """
    out = np.ascontiguousarray(np.array(image, dtype=np.uint8, copy=True))
    valid = np.ones(joints_2d.shape[:2], bool) if joint_valid is None else np.asarray(joint_valid) > 0
    hands = [h for h in range(2) if present[h]]
    if depth is not None:
        hands.sort(key=lambda h: -float(np.mean(depth[h][valid[h]])) if valid[h].any() else 0.0)
    width = _line_width(min(out.shape[:2]))
    # Sub-pixel precision: OpenCV takes fixed-point coordinates with `shift` fractional bits.
    shift = 4
    for h in hands:
        pts = np.round(np.asarray(joints_2d[h], np.float64) * (1 << shift)).astype(np.int64)
        color = HAND_RGB[h]
        for parent, child in BONES:
            if valid[h, parent] and valid[h, child]:
                cv2.line(out, tuple(map(int, pts[parent])), tuple(map(int, pts[child])), color, width,
                         cv2.LINE_AA, shift)
        for j in np.flatnonzero(valid[h]):
            cv2.circle(out, tuple(map(int, pts[j])), (width + 1) << shift, (255, 255, 255), -1,
                       cv2.LINE_AA, shift)
            cv2.circle(out, tuple(map(int, pts[j])), width << shift, color, -1, cv2.LINE_AA, shift)
    return out


def project_skeleton(image: np.ndarray, joints: np.ndarray, camera: Any, present: Any,
                     joint_valid: np.ndarray | None = None) -> np.ndarray:
    """Camera-frame joints (2, 21, 3) metres projected with `camera` (PinholeCamera or K) and drawn."""
    cam = as_camera(camera)
    joints = np.asarray(joints, np.float64)
    return draw_skeleton(image, cam.project(joints), present, joint_valid, joints[..., 2])


def skeleton_view(
    joints: np.ndarray,
    present: Any,
    width: int,
    height: int,
    axis: str = "y",
    angle_deg: float = 90.0,
    joint_valid: np.ndarray | None = None,
    fill: float = 0.8,
) -> np.ndarray:
    """The present hands' skeletons rotated about their centre (like Renderer.render_view) on white.

    axis 'y', 90 deg: side view, seen from the camera's right.
    """
    joints = np.asarray(joints, np.float64)
    valid = np.ones(joints.shape[:2], bool) if joint_valid is None else np.asarray(joint_valid) > 0
    shown = np.array([bool(present[h]) for h in range(2)])[:, None] & valid
    canvas = np.full((height, width, 3), 255, np.uint8)
    if not shown.any():
        return canvas
    R, cam, t = orbit_view(joints[shown], axis, angle_deg, width, height, fill)
    moved = joints @ R.T + t
    return draw_skeleton(canvas, cam.project(moved), present, shown, moved[..., 2])

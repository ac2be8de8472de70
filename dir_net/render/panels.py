"""Figure columns for two hands drawn as meshes (when vertices exist) or as skeletons.

A panel row: input | prediction overlay | prediction side view [| GT overlay | GT side view],
the layout of figures.sample_panel, for either drawing style.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dir_net.render.figures import side_by_side, turntable_frames
from dir_net.render.renderer import MeshSpec, Renderer, hand_meshes
from dir_net.render.skeleton import project_skeleton, skeleton_view


@dataclass
class HandsDrawing:
    """Two hands in one camera frame (metres); meshes when `verts` and `faces` are given."""

    joints: np.ndarray  # (2, 21, 3)
    present: np.ndarray  # (2,) bool
    verts: np.ndarray | None = None  # (2, V, 3)
    faces: np.ndarray | None = None  # (2, F, 3) or (F, 3)
    joint_valid: np.ndarray | None = None  # (2, 21) bool, skeletons only

    @property
    def is_mesh(self) -> bool:
        return self.verts is not None and self.faces is not None

    def meshes(self) -> list[MeshSpec]:
        return hand_meshes(self.verts, self.faces, self.present)


def overlay(renderer: Renderer, image: np.ndarray, K: Any, hands: HandsDrawing) -> np.ndarray:
    """The hands drawn over an RGB uint8 image seen by the pinhole camera K."""
    if not np.any(hands.present):
        return image.copy()
    if hands.is_mesh:
        return renderer.overlay(image, hands.meshes(), K)
    return project_skeleton(image, hands.joints, K, hands.present, hands.joint_valid)


def view(renderer: Renderer, hands: HandsDrawing, size: int, axis: str = "y", angle_deg: float = 90.0) -> np.ndarray:
    """A size x size view of the hands rotated about their centre (default: side view) on white."""
    if not np.any(hands.present):
        return np.full((size, size, 3), 255, np.uint8)
    if hands.is_mesh:
        renderer.resize(size, size)
        return renderer.render_view(hands.meshes(), axis, angle_deg).rgb
    return skeleton_view(hands.joints, hands.present, size, size, axis, angle_deg, hands.joint_valid)


def panel(renderer: Renderer, image: np.ndarray, K: Any, pred: HandsDrawing, gt: HandsDrawing | None,
          title: str = "input") -> np.ndarray:
    """input | prediction | prediction (side) [| ground truth | ground truth (side)]."""
    size = image.shape[0]
    columns = [image, overlay(renderer, image, K, pred), view(renderer, pred, size)]
    names = [title, "prediction", "prediction (side)"]
    if gt is not None:
        columns += [overlay(renderer, image, K, gt), view(renderer, gt, size)]
        names += ["ground truth", "ground truth (side)"]
    return side_by_side(columns, names)


def turntable(renderer: Renderer, hands: HandsDrawing, size: int, n_frames: int = 36) -> list[np.ndarray]:
    """Frames of a full turn about the vertical axis."""
    if hands.is_mesh:
        renderer.resize(size, size)
        return turntable_frames(renderer, hands.meshes(), n_frames)
    angles = np.linspace(0.0, 360.0, n_frames, endpoint=False)
    return [view(renderer, hands, size, "y", float(a)) for a in angles]

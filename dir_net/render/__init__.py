"""Rendering: meshes -> RGB / depth / masks / dense maps (renderer), figures, mesh export.

Importing this package selects EGL for PyOpenGL on machines without a display (see renderer.py).
"""

from dir_net.render.camera import (
    PinholeCamera,
    orbit_view,
    weak_perspective_project,
    weak_perspective_to_pinhole,
)
from dir_net.render.renderer import (
    HAND_COLORS,
    LEFT_COLOR,
    RIGHT_COLOR,
    SEG_BACKGROUND,
    SEG_CLASSES,
    SEG_LEFT,
    SEG_RIGHT,
    MeshSpec,
    Renderer,
    RenderOutput,
    RenderUnavailableError,
    hand_meshes,
    segmentation_and_dense,
    template_colors,
    weak_perspective_meshes,
)

__all__ = [
    "HAND_COLORS",
    "LEFT_COLOR",
    "RIGHT_COLOR",
    "SEG_BACKGROUND",
    "SEG_CLASSES",
    "SEG_LEFT",
    "SEG_RIGHT",
    "MeshSpec",
    "PinholeCamera",
    "RenderOutput",
    "RenderUnavailableError",
    "Renderer",
    "hand_meshes",
    "orbit_view",
    "segmentation_and_dense",
    "template_colors",
    "weak_perspective_meshes",
    "weak_perspective_project",
    "weak_perspective_to_pinhole",
]

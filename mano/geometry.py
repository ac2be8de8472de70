"""Small mesh measurements shared by the generator, the layer and `python -m mano info`."""

from __future__ import annotations

import numpy as np


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a triangle mesh: positive when the faces wind counter-clockwise seen
    from outside (normals point outwards). Meaningful for nearly closed meshes too (MANO is open
    at the wrist)."""
    tri = vertices[faces] - vertices.mean(axis=0)
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)

"""Mesh export: .obj / .ply per hand and both hands combined, vertex order preserved.

Files are written atomically. Reload with `load_mesh` (trimesh with `process=False`, so vertices
are neither merged nor reordered and index i is MANO vertex i).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import trimesh

from dir_net.render.renderer import HAND_COLORS, to_numpy
from dir_net.utils.io import write_bytes

FORMATS = ("obj", "ply")
HAND_NAMES = ("right", "left")  # index = hand axis


def _trimesh(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None) -> trimesh.Trimesh:
    return trimesh.Trimesh(vertices=vertices, faces=faces, vertex_colors=colors, process=False)


def export_mesh(
    path: str | os.PathLike,
    vertices: Any,
    faces: Any,
    color: Sequence[float] | np.ndarray | None = None,
) -> Path:
    """Write one mesh; the format comes from the suffix (.obj or .ply).

    vertices (V, 3) metres; faces (F, 3); color: one RGB in [0, 1] or per-vertex (V, 3) in [0, 1].
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{path}: unsupported mesh format {path.suffix!r}; use one of {FORMATS}")
    verts = to_numpy(vertices).astype(np.float64)
    tri = to_numpy(faces).astype(np.int64)
    colors = None
    if color is not None:
        c = np.broadcast_to(np.asarray(color, dtype=np.float64), verts.shape)
        colors = np.concatenate([c, np.ones((len(c), 1))], 1)
        colors = (np.clip(colors, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    data = _trimesh(verts, tri, colors).export(file_type=fmt)
    write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)
    return path


def export_hands(
    out_dir: str | os.PathLike,
    vertices: Any,
    faces: Any,
    stem: str = "hands",
    formats: Sequence[str] = FORMATS,
    present: Sequence[bool] = (True, True),
) -> list[Path]:
    """Write `{stem}_right`, `{stem}_left` and `{stem}_both` in every format.

    vertices (2, V, 3) metres (0 = right, 1 = left); faces (F, 3) shared or (2, F, 3) per hand.
    The combined mesh lists the right hand's vertices first, then the left's (faces offset by V),
    each coloured with its hand colour. Absent hands are skipped. Returns the written paths.
    """
    verts = to_numpy(vertices).astype(np.float64)
    f = to_numpy(faces).astype(np.int64)
    if verts.ndim != 3 or verts.shape[0] != 2:
        raise ValueError(f"two-hand vertices must have shape (2, V, 3), got {verts.shape}")
    per_hand = f if f.ndim == 3 else np.stack([f, f])
    hands = [h for h in range(2) if present[h]]
    out_dir = Path(out_dir)
    written = []
    for fmt in formats:
        for h in hands:
            path = out_dir / f"{stem}_{HAND_NAMES[h]}.{fmt}"
            written.append(export_mesh(path, verts[h], per_hand[h], HAND_COLORS[h]))
        if len(hands) == 2:
            n = verts.shape[1]
            both_faces = np.concatenate([per_hand[0], per_hand[1] + n])
            colors = np.repeat(np.asarray(HAND_COLORS), n, axis=0)
            path = out_dir / f"{stem}_both.{fmt}"
            written.append(export_mesh(path, verts.reshape(-1, 3), both_faces, colors))
    return written


def load_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3) float64, faces (F, 3) int64) exactly as stored (no merging/reordering)."""
    mesh = trimesh.load(str(path), process=False, force="mesh")
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)

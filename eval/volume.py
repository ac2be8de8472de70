"""Interpenetration volume (IV) of two hand meshes on a shared voxel grid.

Each mesh's interior is found by ray parity: for every voxel-centre column (x, y) a ray is cast
along +z and the triangles it crosses are counted above each voxel centre; an odd count means
inside. Points exactly on a shared edge or vertex in the xy projection are assigned to one
triangle by a top-left rule, so rays through the triangulation's edges are not counted twice.
Open meshes (MANO is open at the wrist) are closed first by a fan from each boundary loop's
centroid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VOXEL_MM = 5.0  # 0.5 cm voxels (DIR's IV)


@dataclass(frozen=True)
class ClosedTopology:
    """Faces plus the boundary edges to cap, each tagged with its boundary loop."""

    faces: np.ndarray  # (F, 3) int vertex ids
    cap_edges: np.ndarray  # (E, 2) int boundary edges (a, b) in face winding order
    cap_loop: np.ndarray  # (E,) int loop index of each boundary edge
    num_loops: int


def close_topology(faces: np.ndarray) -> ClosedTopology:
    """Find the boundary edges of a triangle mesh and group them into loops."""
    faces = np.asarray(faces, dtype=np.int64)
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    undirected = np.sort(directed, axis=1)
    _, inverse, counts = np.unique(undirected, axis=0, return_inverse=True, return_counts=True)
    boundary = directed[counts[inverse.ravel()] == 1]
    if len(boundary) == 0:
        empty = np.zeros((0,), dtype=np.int64)
        return ClosedTopology(faces, np.zeros((0, 2), dtype=np.int64), empty, 0)
    labels = np.arange(int(faces.max()) + 1)
    while True:  # connected components of the boundary edges by label propagation
        low = np.minimum(labels[boundary[:, 0]], labels[boundary[:, 1]])
        updated = labels.copy()
        np.minimum.at(updated, boundary[:, 0], low)
        np.minimum.at(updated, boundary[:, 1], low)
        if np.array_equal(updated, labels):
            break
        labels = updated
    _, loop = np.unique(labels[boundary[:, 0]], return_inverse=True)
    return ClosedTopology(faces, boundary, loop.ravel(), int(loop.max()) + 1)


def closed_triangles(verts: np.ndarray, topology: ClosedTopology) -> np.ndarray:
    """(F + E, 3, 3) triangle corners: the mesh plus a fan from each boundary loop's centroid."""
    triangles = verts[topology.faces]
    if topology.num_loops == 0:
        return triangles
    starts = topology.cap_edges[:, 0]
    sums = np.zeros((topology.num_loops, 3))
    np.add.at(sums, topology.cap_loop, verts[starts])
    centroids = sums / np.bincount(topology.cap_loop, minlength=topology.num_loops)[:, None]
    caps = np.stack(
        [verts[topology.cap_edges[:, 1]], verts[starts], centroids[topology.cap_loop]], axis=1
    )
    return np.concatenate([triangles, caps])


def _top_left(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Accept exactly one of each pair of opposite edge directions."""
    return (dy < 0) | ((dy == 0) & (dx < 0))


def inside_voxels(triangles: np.ndarray, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray,
                  step: float) -> np.ndarray:
    """(X, Y, Z) bool: voxel centres inside the closed surface made of `triangles` (T, 3, 3).

    xs, ys, zs: voxel-centre coordinates, `step` apart.
    """
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    area2 = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    flip = area2 < 0  # make every projected triangle counter-clockwise
    b, c = np.where(flip[:, None], c, b), np.where(flip[:, None], b, c)
    keep = area2 != 0  # triangles seen edge-on cannot be crossed by a vertical ray
    a, b, c, area2 = a[keep], b[keep], c[keep], np.abs(area2[keep])
    corners = np.stack([a, b, c], axis=1)  # (T, 3, 3)
    # candidate columns: the projected bounding box widened by one column against rounding;
    # the exact edge tests below decide
    lo = np.floor((corners[..., :2].min(axis=1) - [xs[0], ys[0]]) / step).astype(np.int64)
    hi = np.ceil((corners[..., :2].max(axis=1) - [xs[0], ys[0]]) / step).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [len(xs) - 1, len(ys) - 1])
    span = np.maximum(hi - lo + 1, 0)  # (T, 2) candidate columns per triangle
    per_tri = span[:, 0] * span[:, 1]
    tri = np.repeat(np.arange(len(a)), per_tri)
    k = np.arange(len(tri)) - np.repeat(np.cumsum(per_tri) - per_tri, per_tri)
    ix = lo[tri, 0] + k // np.maximum(span[tri, 1], 1)
    iy = lo[tri, 1] + k % np.maximum(span[tri, 1], 1)
    px, py = xs[ix], ys[iy]
    pa, pb, pc = a[tri], b[tri], c[tri]
    weights, ok = [], np.ones(len(tri), dtype=bool)
    for u, v in ((pb, pc), (pc, pa), (pa, pb)):  # weight of the vertex opposite edge u->v
        dx, dy = v[:, 0] - u[:, 0], v[:, 1] - u[:, 1]
        w = dx * (py - u[:, 1]) - dy * (px - u[:, 0])
        ok &= (w > 0) | ((w == 0) & _top_left(dx, dy))
        weights.append(w)
    depth = (weights[0] * pa[:, 2] + weights[1] * pb[:, 2] + weights[2] * pc[:, 2]) / area2[tri]
    ix, iy, depth = ix[ok], iy[ok], depth[ok]
    crossings = np.zeros((len(xs), len(ys), len(zs) + 1), dtype=np.int64)
    np.add.at(crossings, (ix, iy, np.searchsorted(zs, depth, side="left")), 1)
    above = np.cumsum(crossings[..., ::-1], axis=-1)[..., ::-1][..., 1:]  # crossings above z_k
    return above % 2 == 1


def interpenetration_volume(verts_a: np.ndarray, topo_a: ClosedTopology, verts_b: np.ndarray,
                            topo_b: ClosedTopology, voxel_mm: float = VOXEL_MM) -> float:
    """Volume (cm^3) of the voxels whose centres lie inside both meshes (vertices in mm).

    The grid is shared and anchored at the origin: voxel centres at (i + 0.5) * voxel_mm.
    """
    tri_a = closed_triangles(verts_a, topo_a)
    tri_b = closed_triangles(verts_b, topo_b)
    lo = np.maximum(tri_a.min(axis=(0, 1)), tri_b.min(axis=(0, 1)))
    hi = np.minimum(tri_a.max(axis=(0, 1)), tri_b.max(axis=(0, 1)))
    first = np.ceil(lo / voxel_mm - 0.5).astype(np.int64)
    last = np.floor(hi / voxel_mm - 0.5).astype(np.int64)
    if (last < first).any():
        return 0.0
    xs, ys, zs = ((np.arange(f, l + 1) + 0.5) * voxel_mm for f, l in zip(first, last))
    both = inside_voxels(tri_a, xs, ys, zs, voxel_mm) & inside_voxels(tri_b, xs, ys, zs, voxel_mm)
    return float(both.sum()) * voxel_mm**3 / 1000.0

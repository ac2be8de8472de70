"""Interpenetration volume: voxelised overlap of closed (or capped) meshes, in cm^3."""

import numpy as np
import pytest

from eval import score
from eval.volume import close_topology, inside_voxels, interpenetration_volume

# outward-facing triangles of the unit cube whose corner k sits at bits (x, y, z) = k>>2, k>>1, k
CUBE_FACES = np.array([
    [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
    [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],
])


def cube(lo, hi) -> np.ndarray:
    """(8, 3) corners of an axis-aligned box (mm)."""
    bits = np.array([[(k >> 2) & 1, (k >> 1) & 1, k & 1] for k in range(8)], dtype=float)
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return lo + bits * (hi - lo)


def test_overlapping_cubes_on_grid():
    topo = close_topology(CUBE_FACES)
    assert topo.num_loops == 0
    a = cube([0, 0, 0], [20, 20, 20])
    b = cube([10, 0, 0], [30, 20, 20])  # overlap 10 x 20 x 20 mm = 4 cm^3
    assert interpenetration_volume(a, topo, b, topo) == pytest.approx(4.0)
    assert interpenetration_volume(a, topo, a, topo) == pytest.approx(8.0)


def test_overlap_off_grid_and_rotated_within_voxel_tolerance():
    topo = close_topology(CUBE_FACES)
    a = cube([0, 0, 0], [20, 20, 20])
    b = cube([10, 0, 0], [30, 20, 20])
    shift = np.array([1.3, 0.7, 2.1])
    assert interpenetration_volume(a + shift, topo, b + shift, topo) == pytest.approx(4.0, abs=0.5)
    angle = np.deg2rad(35.0)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]]) @ np.array([[1, 0, 0], [0, np.cos(0.4), -np.sin(0.4)],
                                            [0, np.sin(0.4), np.cos(0.4)]])
    rotated = interpenetration_volume(a @ rot.T, topo, b @ rot.T, topo)
    assert rotated == pytest.approx(4.0, abs=0.5)


def test_disjoint_and_touching_meshes_have_zero_volume():
    topo = close_topology(CUBE_FACES)
    a = cube([0, 0, 0], [20, 20, 20])
    assert interpenetration_volume(a, topo, cube([40, 0, 0], [60, 20, 20]), topo) == 0.0
    assert interpenetration_volume(a, topo, cube([20, 0, 0], [40, 20, 20]), topo) == 0.0


def test_open_mesh_is_capped_before_voxelising():
    open_faces = CUBE_FACES[:-2]  # drop the x = 1 side: a box open on one side
    topo = close_topology(open_faces)
    assert topo.num_loops == 1 and len(topo.cap_edges) == 4
    a = cube([0, 0, 0], [20, 20, 20])
    b = cube([10, 0, 0], [30, 20, 20])
    assert interpenetration_volume(a, topo, b, topo) == pytest.approx(4.0)


def test_rays_through_triangle_edges_are_counted_once():
    # voxel centres (2.5 + 5 i) lie exactly on the diagonals x = y of the cube's top and bottom
    a = cube([0, 0, 0], [20, 20, 20])
    centres = np.arange(4) * 5.0 + 2.5
    inside = inside_voxels(a[CUBE_FACES], centres, centres, centres, 5.0)
    assert inside.all()


def test_iv_through_score_mean_over_interacting_frames():
    a = cube([0, 0, 500], [20, 20, 520])
    far = cube([100, 0, 500], [120, 20, 520])
    overlapping = cube([10, 0, 500], [30, 20, 520])
    verts = np.stack([np.stack([a, overlapping]), np.stack([a, far]), np.stack([a, a])])
    joints = np.zeros((3, 2, 21, 3))
    joints[..., 0] = 10.0 * np.arange(21)
    gt = {"ids": np.arange(3), "joints": joints, "hand_type": np.array([2, 2, 0])}
    pred = {"ids": np.arange(3), "joints": joints.copy(), "verts": verts,
            "faces": np.stack([CUBE_FACES, CUBE_FACES])}
    out = score(pred, gt, "moon")
    assert out["iv"] == pytest.approx((4.0 + 0.0) / 2)  # row 2 is a single-hand frame
    assert "iv" not in score(pred, gt, "moon", iv=False)
    without_faces = {k: v for k, v in pred.items() if k != "faces"}
    assert "iv" not in score(without_faces, gt, "moon")
    # faces may come from the ground-truth file instead
    gt_faces = {**gt, "faces": pred["faces"]}
    assert score(without_faces, gt_faces, "moon")["iv"] == pytest.approx(2.0)

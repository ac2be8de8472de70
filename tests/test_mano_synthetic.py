"""The synthetic MANO-format hand: topology, rig, determinism, shipped package data."""

import numpy as np
import pytest
import torch
import trimesh

from mano import load_hands
from mano.convert import FLOAT_KEYS, infer_side, load_model_arrays
from mano.joints import MANO_SKELETON_NAMES, TIP_VERTEX_SETS
from mano import synthetic
from mano.synthetic import DATA_DIR, FILE_NAMES, build_hands, build_right_hand


@pytest.fixture(scope="module")
def hands():
    return build_hands()


def test_closed_surface_with_778_vertices(hands):
    for side, arrays in hands.items():
        mesh = trimesh.Trimesh(arrays["v_template"], arrays["f"], process=False)
        assert len(mesh.vertices) == 778
        assert mesh.is_watertight and mesh.is_winding_consistent, side
        assert mesh.euler_number == 2  # one closed sphere-like surface
        assert mesh.volume > 0  # faces point outwards for both hands
        assert len(np.unique(np.sort(arrays["f"], axis=1), axis=0)) == len(arrays["f"])


def test_deterministic_and_matches_shipped_data(hands):
    """Topology exactly; floats within a tolerance (other CPUs / BLAS differ in the last bits)."""
    again = build_hands()
    for side in ("right", "left"):
        for key in ("f", "kintree_table"):
            np.testing.assert_array_equal(hands[side][key], again[side][key], err_msg=key)
        for key in FLOAT_KEYS:
            np.testing.assert_allclose(hands[side][key], again[side][key], rtol=0, atol=1e-12, err_msg=key)
        shipped = load_model_arrays(DATA_DIR / FILE_NAMES[side])
        assert shipped["side"] == side
        np.testing.assert_array_equal(shipped["f"], hands[side]["f"])
        for key in FLOAT_KEYS:
            np.testing.assert_allclose(shipped[key], hands[side][key], rtol=0, atol=1e-8, err_msg=key)
    assert sum((DATA_DIR / name).stat().st_size for name in FILE_NAMES.values()) < 2e6


def test_topology_ignores_last_bit_float_differences(monkeypatch):
    """Faces must not depend on float ties: jitter every vertex by a few ulps (what another CPU's
    maths library may do) and the triangulation stays the same (it differed in 8 of 4656 face
    indices on an AMD EPYC machine when quads were split by comparing equal diagonals)."""
    reference = build_right_hand()["f"]
    add = synthetic._Mesh.add
    for seed in range(3):
        rng = np.random.default_rng(seed)

        def jittered_add(self, p, *args, **kwargs):
            p = np.asarray(p, dtype=np.float64)
            return add(self, p * (1.0 + rng.integers(-4, 5, p.shape) * np.finfo(np.float64).eps),
                       *args, **kwargs)

        monkeypatch.setattr(synthetic._Mesh, "add", jittered_add)
        np.testing.assert_array_equal(build_right_hand()["f"], reference, err_msg=f"seed {seed}")


def test_rig_is_consistent(hands):
    right = hands["right"]
    weights = right["weights"]
    assert weights.min() >= 0 and np.allclose(weights.sum(axis=1), 1.0)
    reg = right["J_regressor"]
    assert reg.min() >= 0 and np.allclose(reg.sum(axis=1), 1.0)
    comps = right["hands_components"]
    np.testing.assert_allclose(comps @ comps.T, np.eye(45), atol=1e-10)
    assert infer_side(right) == "right" and infer_side(hands["left"]) == "left"


def test_realistic_size_and_tips(hands):
    right = hands["right"]
    verts = right["v_template"]
    joints = right["J_regressor"] @ verts
    name = MANO_SKELETON_NAMES.index
    wrist = joints[name("wrist")]
    assert 0.08 < np.linalg.norm(joints[name("middle1")] - wrist) < 0.10
    assert 0.16 < np.linalg.norm(verts[444] - wrist) < 0.21
    for k, finger in enumerate(("thumb", "index", "middle", "ring", "pinky")):
        dip = joints[name(f"{finger}3")]
        tip = TIP_VERTEX_SETS["dir"][k]
        direction = (verts[tip] - dip) / np.linalg.norm(verts[tip] - dip)
        near = np.flatnonzero(np.linalg.norm(verts - dip, axis=1) < 0.03)
        assert near[np.argmax((verts[near] - dip) @ direction)] == tip  # the tip vertex ends its finger
        for other in ("smplx", "interhand"):
            assert np.linalg.norm(verts[TIP_VERTEX_SETS[other][k]] - verts[tip]) < 0.005


def test_left_is_mirror_and_shapedirs_fix_does_not_fire(hands):
    right, left = hands["right"], hands["left"]
    np.testing.assert_array_equal(left["v_template"], right["v_template"] * [-1, 1, 1])
    np.testing.assert_array_equal(left["J_regressor"], right["J_regressor"])
    assert np.abs(left["shapedirs"][:, 0, :] - right["shapedirs"][:, 0, :]).sum() >= 1


def test_pca_samples_pose_without_nan_and_shapes_change_size():
    layer = load_hands("synthetic", num_pca=12)
    gen = torch.Generator().manual_seed(0)
    batch = 32
    # about the spread of the poses the PCA was built from
    scale = torch.tensor([1.4, 0.5, 0.5, 0.5, 0.25, 0.2, 0.2, 0.2, 0.18, 0.18, 0.15, 0.13])
    coeffs = torch.randn(batch, 2, 12, generator=gen) * scale
    root = torch.randn(batch, 2, 3, generator=gen)
    out = layer(root, coeffs, torch.randn(batch, 2, 10, generator=gen), pose_repr="pca")
    assert torch.isfinite(out.vertices).all() and torch.isfinite(out.joints).all()
    spans = (out.joints[:, :, 12] - out.joints[:, :, 0]).norm(dim=-1)  # wrist -> middle tip
    assert (spans > 0.04).all() and (spans < 0.22).all()  # from a fist to a flat hand

    zero = torch.zeros(3, 2, 3)
    betas = torch.zeros(3, 2, 10)
    betas[:, :, 0] = torch.tensor([-2.0, 0.0, 2.0])[:, None]
    out = layer(zero, torch.zeros(3, 2, 12), betas, pose_repr="pca")
    extent = out.vertices.amax(dim=2) - out.vertices.amin(dim=2)  # (3, 2, 3)
    size = extent.norm(dim=-1)
    assert (size[0] < size[1]).all() and (size[1] < size[2]).all()
    assert (size[2] / size[1] > 1.05).all()
    rest = layer(torch.zeros(1, 2, 3), torch.zeros(1, 2, 12), pose_repr="pca").vertices
    for k in range(1, 10):  # every direction deforms the hand
        betas = torch.zeros(1, 2, 10)
        betas[0, :, k] = 1.0
        moved = layer(torch.zeros(1, 2, 3), torch.zeros(1, 2, 12), betas, pose_repr="pca").vertices
        assert (moved - rest).abs().max() > 5e-4

"""The two-hand layer: agreement with smplx.MANO, representations, mirroring, tips, loading."""

import logging

import numpy as np
import pytest
import torch

import mano
from mano.convert import model_npz_bytes, write_atomic
from mano.geometry import signed_volume
from mano.joints import FINGERTIPS, MANO_TO_WRIST_FIRST, TIP_VERTEX_SETS
from mano.layer import ENV_VAR, _smplx_mano
from mano.rotations import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_rot6d, mirror_axis_angle
from mano.synthetic import build_hands


@pytest.fixture(scope="module")
def arrays():
    return build_hands()


@pytest.fixture(scope="module")
def hands():
    return mano.load_hands("synthetic")


def _random_inputs(batch: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    root = torch.randn(batch, 2, 3, generator=gen)
    finger = 0.4 * torch.randn(batch, 2, 45, generator=gen)
    betas = torch.randn(batch, 2, 10, generator=gen)
    transl = 0.2 * torch.randn(batch, 2, 3, generator=gen)
    return root, finger, betas, transl


@pytest.mark.parametrize("flat", [False, True])
def test_matches_smplx_mano(arrays, flat):
    hands = mano.TwoHands(arrays["right"], arrays["left"], flat_hand_mean=flat)
    root, finger, betas, transl = _random_inputs(3)
    out = hands(root, finger, betas, transl)
    assert out.vertices.shape == (3, 2, 778, 3) and out.joints.shape == (3, 2, 21, 3)
    for h, side in enumerate(("right", "left")):
        ref = _smplx_mano(arrays[side], flat)
        res = ref(betas=betas[:, h], global_orient=root[:, h], hand_pose=finger[:, h], transl=transl[:, h])
        torch.testing.assert_close(out.vertices[:, h], res.vertices, atol=1e-6, rtol=0)
        # joints: J_regressor on the posed mesh + tip vertices, wrist-first
        j16 = torch.einsum("jv,bvc->bjc", ref.J_regressor, res.vertices - transl[:, h, None])
        tips = res.vertices[:, list(TIP_VERTEX_SETS["dir"])] - transl[:, h, None]
        expected = torch.cat([j16, tips], dim=1)[:, MANO_TO_WRIST_FIRST] + transl[:, h, None]
        torch.testing.assert_close(out.joints[:, h], expected, atol=1e-6, rtol=0)


def test_gradients_flow(hands):
    root = torch.randn(2, 2, 6, requires_grad=True)
    coeffs = torch.zeros(2, 2, 45, requires_grad=True)  # zero: the mean hand
    betas = torch.zeros(2, 2, 10, requires_grad=True)
    transl = torch.zeros(2, 2, 3, requires_grad=True)
    out = hands(root, coeffs, betas, transl, root_repr="6d", pose_repr="pca")
    (out.vertices.square().sum() + out.joints.square().sum()).backward()
    for t in (root, coeffs, betas, transl):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    flat = mano.load_hands("synthetic", flat_hand_mean=True)
    aa = torch.zeros(1, 2, 45, requires_grad=True)  # exactly zero rotations
    flat(torch.zeros(1, 2, 3), aa).vertices.sum().backward()
    assert torch.isfinite(aa.grad).all()


def test_pca_full_basis_equals_axis_angle(hands):
    root, finger, betas, _ = _random_inputs(4, seed=1)
    coeffs = hands.axis_angle_to_pca(finger)
    torch.testing.assert_close(hands.pca_to_axis_angle(coeffs), finger, atol=1e-5, rtol=0)
    a = hands(root, finger, betas, pose_repr="aa")
    b = hands(root, coeffs, betas, pose_repr="pca")
    torch.testing.assert_close(a.vertices, b.vertices, atol=1e-5, rtol=0)


def test_fewer_pca_components(arrays):
    hands = mano.TwoHands(arrays["right"], arrays["left"], num_pca=6)
    coeffs = torch.randn(2, 2, 6)
    out = hands(torch.zeros(2, 2, 3), coeffs, pose_repr="pca")
    aa = torch.einsum("bhp,hpk->bhk", coeffs, hands.hand_components[:, :6])
    torch.testing.assert_close(out.vertices, hands(torch.zeros(2, 2, 3), aa).vertices, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"finger_pose must have shape \(2, 2, 6\)"):
        hands(torch.zeros(2, 2, 3), torch.zeros(2, 2, 10), pose_repr="pca")


def test_root_representations_agree(hands):
    root, finger, betas, transl = _random_inputs(3, seed=2)
    rot = axis_angle_to_matrix(root)
    ref = hands(root, finger, betas, transl, root_repr="aa")
    for value, kind in ((rot, "matrix"), (matrix_to_rot6d(rot), "6d"), (2.5 * matrix_to_rot6d(rot), "6d")):
        out = hands(value, finger, betas, transl, root_repr=kind)
        torch.testing.assert_close(out.vertices, ref.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(axis_angle_to_matrix(matrix_to_axis_angle(rot)), rot, atol=1e-5, rtol=0)


def test_left_mirrors_right(hands):
    root, finger, betas, transl = _random_inputs(3, seed=3)
    right = hands.right(root[:, 0], finger[:, 0], betas[:, 0], transl[:, 0])
    flip = torch.tensor([-1.0, 1.0, 1.0])
    left = hands.left(mirror_axis_angle(root[:, 0]), mirror_axis_angle(finger[:, 0]), betas[:, 0],
                      transl[:, 0] * flip)
    torch.testing.assert_close(left.vertices, right.vertices * flip, atol=1e-6, rtol=0)
    torch.testing.assert_close(left.joints, right.joints * flip, atol=1e-6, rtol=0)
    # the same PCA coefficients mean mirrored poses (left components mirror the right ones)
    coeffs = torch.randn(2, 1, 45)
    both = hands(torch.zeros(2, 2, 3), coeffs.expand(2, 2, 45), pose_repr="pca")
    torch.testing.assert_close(both.vertices[:, 1], both.vertices[:, 0] * flip, atol=1e-6, rtol=0)


def test_single_hand_matches_two_hands(hands):
    root, finger, betas, transl = _random_inputs(2, seed=4)
    both = hands(root, finger, betas, transl)
    for h, one in enumerate((hands.right, hands.left)):
        out = one(root[:, h], finger[:, h], betas[:, h], transl[:, h])
        torch.testing.assert_close(out.vertices, both.vertices[:, h])
        assert torch.equal(one.faces, hands.faces[h]) and one.num_verts == 778


@pytest.mark.parametrize("tips", sorted(TIP_VERTEX_SETS))
def test_tips_are_the_selected_vertices(arrays, tips):
    hands = mano.TwoHands(arrays["right"], arrays["left"], tips=tips)
    out = hands(*_random_inputs(2, seed=5))
    ids = list(TIP_VERTEX_SETS[tips])
    assert torch.equal(out.joints[:, :, list(FINGERTIPS)], out.vertices[:, :, ids])


def test_units_are_metres_and_faces_point_out(hands):
    out = hands(torch.zeros(1, 2, 3), -hands.hand_mean[None])  # flat hand
    wrist, middle_mcp, middle_tip = (out.joints[0, :, k] for k in (0, 9, 12))
    assert ((middle_mcp - wrist).norm(dim=-1) - 0.09).abs().max() < 0.01
    length = (middle_tip - wrist).norm(dim=-1)
    assert (length > 0.16).all() and (length < 0.21).all()
    for h in range(2):
        assert signed_volume(out.vertices[0, h].numpy(), hands.faces[h].numpy()) > 0
    assert hands.faces.dtype == torch.int64 and hands.faces.shape[0] == 2


def test_left_shapedirs_fix(arrays, caplog):
    broken = dict(arrays["left"])
    broken["shapedirs"] = broken["shapedirs"].copy()
    broken["shapedirs"][:, 0, :] = arrays["right"]["shapedirs"][:, 0, :]  # the known MANO issue
    with caplog.at_level(logging.INFO, logger="mano"):
        hands = mano.TwoHands(arrays["right"], broken)
    assert any("shapedirs" in r.getMessage() for r in caplog.records)
    good = mano.TwoHands(arrays["right"], arrays["left"])
    torch.testing.assert_close(hands.shapedirs, good.shapedirs)


def test_loading_from_folder_env_and_default(arrays, tmp_path, monkeypatch, caplog):
    for side in ("right", "left"):
        write_atomic(tmp_path / "mano" / f"MANO_{side.upper()}.npz", model_npz_bytes(arrays[side]))
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with caplog.at_level(logging.INFO, logger="mano"):
        from_env = mano.load_hands()
    assert from_env.source == str(tmp_path) and not from_env.is_synthetic
    assert not any("SYNTHETIC" in r.getMessage() for r in caplog.records)
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setattr(mano.layer, "_synthetic_warned", False)  # as in a fresh process
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mano"):
        default = mano.load_hands()
        mano.load_hands()
    assert default.is_synthetic
    assert len([r for r in caplog.records if "SYNTHETIC" in r.getMessage()]) == 1  # once per process
    assert ENV_VAR in caplog.records[0].getMessage()
    torch.testing.assert_close(from_env.v_template, default.v_template)
    with pytest.raises(FileNotFoundError, match="MANO_RIGHT"):
        mano.load_hands(tmp_path / "mano" / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="mano.is.tue.mpg.de"):
        mano.load_hands(tmp_path / "empty")


def test_numpy_helper(hands):
    root, finger, betas, transl = (t.numpy() for t in _random_inputs(2, seed=6))
    verts, joints = hands.forward_numpy(root[0], finger[0], betas[0], transl[0])  # unbatched
    assert verts.shape == (2, 778, 3) and joints.shape == (2, 21, 3) and verts.dtype == np.float32
    ref = hands(*(torch.from_numpy(x) for x in (root, finger, betas, transl)))
    np.testing.assert_allclose(verts, ref.vertices[0].numpy(), atol=1e-6)
    v1, j1 = hands.left.forward_numpy(root[:, 1], finger[:, 1], betas[:, 1])  # batched, one hand
    assert v1.shape == (2, 778, 3) and j1.shape == (2, 21, 3)


def test_bad_inputs_are_named(hands):
    with pytest.raises(ValueError, match=r"root must have shape \(B, 2, 6\)"):
        hands(torch.zeros(1, 2, 3), torch.zeros(1, 2, 45), root_repr="6d")
    with pytest.raises(ValueError, match="root_repr"):
        hands(torch.zeros(1, 2, 3), torch.zeros(1, 2, 45), root_repr="quat")
    with pytest.raises(ValueError, match=r"betas must have shape \(1, 2, 10\)"):
        hands(torch.zeros(1, 2, 3), torch.zeros(1, 2, 45), torch.zeros(2, 2, 10))


def test_model_data_stays_out_of_checkpoints(hands):
    holder = torch.nn.Module()
    holder.hands = hands
    assert holder.state_dict() == {}  # a checkpoint can never swap the hand model
    doubled = mano.load_hands("synthetic").double()
    out = doubled(torch.zeros(1, 2, 3, dtype=torch.float64), torch.zeros(1, 2, 45, dtype=torch.float64))
    assert out.vertices.dtype == torch.float64 and doubled.faces.dtype == torch.int64

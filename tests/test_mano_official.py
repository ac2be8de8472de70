"""The MANO pieces the official DIR model uses (manopth semantics): the robust 6D root, the
quaternion axis-angle, joints from the kinematic chain and per-hand fingertip ids."""

import numpy as np
import pytest
import torch

import mano
from mano.joints import FINGERTIPS, HAND_TIP_VERTEX_SETS, MANO_TO_WRIST_FIRST, hand_tip_vertices
from mano.layer import load_arrays
from mano.rotations import (axis_angle_to_matrix, axis_angle_to_matrix_quat, matrix_to_rot6d, robust_rot6d_to_matrix,
                            rot6d_to_matrix)


def test_robust_6d_is_a_rotation_symmetric_in_its_two_columns():
    r6 = torch.randn(64, 6, dtype=torch.float64)
    rot = robust_rot6d_to_matrix(r6)
    eye = torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    torch.testing.assert_close(rot.transpose(-1, -2) @ rot, eye)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(64, dtype=torch.float64))
    # X and Y are symmetric about the bisector of a and b: swapping a and b swaps X and Y
    swapped = robust_rot6d_to_matrix(torch.cat([r6[:, 3:], r6[:, :3]], dim=1))
    torch.testing.assert_close(swapped[..., 0], rot[..., 1])
    torch.testing.assert_close(swapped[..., 1], rot[..., 0])
    # an exact rotation's own columns come back unchanged (like Gram-Schmidt), a skewed pair does not
    exact = axis_angle_to_matrix(torch.randn(8, 3, dtype=torch.float64))
    torch.testing.assert_close(robust_rot6d_to_matrix(matrix_to_rot6d(exact)), exact)
    skew = torch.tensor([[1.0, 0.0, 0.0, 0.5, 1.0, 0.0]], dtype=torch.float64)
    assert not torch.allclose(robust_rot6d_to_matrix(skew), rot6d_to_matrix(skew))
    angle = torch.rad2deg(torch.acos(robust_rot6d_to_matrix(skew)[0, 0, 0]))
    assert angle.item() == pytest.approx(0.5 * (90 - np.degrees(np.arctan2(1.0, 0.5))), abs=1e-9)


def test_quaternion_axis_angle_matches_rodrigues_and_is_finite_at_zero():
    aa = torch.randn(100, 3, dtype=torch.float64) * 1.5
    torch.testing.assert_close(axis_angle_to_matrix_quat(aa), axis_angle_to_matrix(aa), atol=1e-7, rtol=0)
    zero = torch.zeros(2, 3, requires_grad=True)
    rot = axis_angle_to_matrix_quat(zero)
    torch.testing.assert_close(rot, torch.eye(3).expand(2, 3, 3))
    rot.sum().backward()
    assert torch.isfinite(zero.grad).all()


def test_per_hand_tips_and_joints_from_the_kinematic_chain():
    assert hand_tip_vertices("dir_official") == HAND_TIP_VERTEX_SETS["dir_official"]
    assert hand_tip_vertices("dir_official")[1][2] == 445 and hand_tip_vertices("dir_official")[0][2] == 444
    assert hand_tip_vertices("interhand") == ((745, 317, 445, 556, 673),) * 2
    arrays, _ = load_arrays("synthetic")
    chain = mano.TwoHands(arrays["right"], arrays["left"], tips="dir_official", joints_from="skeleton",
                          finger_rotation="quaternion")
    mesh = mano.TwoHands(arrays["right"], arrays["left"], tips="dir_official")
    gen = torch.Generator().manual_seed(0)
    root, finger, betas = (torch.randn(3, 2, n, generator=gen) * s for n, s in ((3, 1.0), (45, 0.5), (10, 1.0)))
    a, b = chain(root, finger, betas), mesh(root, finger, betas)
    torch.testing.assert_close(a.vertices, b.vertices, atol=1e-6, rtol=0)  # same mesh
    for h, ids in enumerate(HAND_TIP_VERTEX_SETS["dir_official"]):
        assert torch.equal(a.joints[:, h, list(FINGERTIPS)], a.vertices[:, h, list(ids)])
    # the 16 skeleton joints are the chain's joint positions: at the rest pose (zero rotations of
    # the flat hand), J_regressor of the shaped mesh
    flat = mano.TwoHands(arrays["right"], arrays["left"], joints_from="skeleton", flat_hand_mean=True)
    rest = flat(torch.zeros(1, 2, 3), torch.zeros(1, 2, 45), betas[:1])
    v_shaped = flat.v_template + torch.einsum("bhl,hvcl->bhvc", betas[:1], flat.shapedirs)
    j16 = torch.einsum("hjv,bhvc->bhjc", torch.stack([torch.from_numpy(arrays[s]["J_regressor"]).float()
                                                      for s in ("right", "left")]), v_shaped)
    skeleton = rest.joints[:, :, [int(np.flatnonzero(MANO_TO_WRIST_FIRST == j)[0]) for j in range(16)]]
    torch.testing.assert_close(skeleton, j16, atol=1e-6, rtol=0)
    # posed: the chain's joints differ from J_regressor of the posed mesh (what joints_from="mesh" gives)
    assert (a.joints - b.joints).abs().max() > 1e-4
    with pytest.raises(ValueError, match="joints_from"):
        mano.TwoHands(arrays["right"], arrays["left"], joints_from="vertices")

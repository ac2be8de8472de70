"""Camera maths: rotations, crop views, NeuralAnnot MANO world -> camera conversion."""

from __future__ import annotations

import numpy as np
import pytest

from dir_net.data.camera import (
    MIRROR,
    Camera,
    aa_to_matrix,
    camera_to_pixel,
    mano_world_to_camera,
    matrix_to_aa,
    mirror_aa,
)
from dir_net.data.mano_gt import GTHands
from dir_net.data.transforms import make_view


def _random_aa(rng: np.random.Generator, n: int) -> np.ndarray:
    axis = rng.normal(size=(n, 3))
    return axis / np.linalg.norm(axis, axis=1, keepdims=True) * rng.uniform(0, np.pi, (n, 1))


def test_axis_angle_round_trip_including_edge_angles() -> None:
    rng = np.random.default_rng(0)
    aa = np.concatenate([_random_aa(rng, 200), [[0, 0, 0], [1e-9, 0, 0], [np.pi - 1e-7, 0, 0], [0, 0, 3.0]]])
    R = aa_to_matrix(aa)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(aa_to_matrix(matrix_to_aa(R)), R, atol=1e-9)


def test_mirror_axis_angle_is_the_mirrored_rotation() -> None:
    aa = _random_aa(np.random.default_rng(1), 50)
    np.testing.assert_allclose(aa_to_matrix(mirror_aa(aa)), MIRROR @ aa_to_matrix(aa) @ MIRROR, atol=1e-12)


def test_crop_view_matches_image_warp_for_rotation_scale_and_flip() -> None:
    rng = np.random.default_rng(2)
    K = np.array([[1261.5, 0, 155.8], [0, 1261.7, 258.8], [0, 0, 1.0]])
    X = rng.uniform([-0.1, -0.1, 0.9], [0.1, 0.1, 1.1], (30, 3))  # camera frame, metres
    uv_img = camera_to_pixel(X, K.diagonal()[:2], K[:2, 2])
    for rot, flip in ((0.0, False), (37.0, False), (-120.0, True)):
        view = make_view(K, uv_img.mean(0) + 5, 180.0, 256, rot, flip)
        via_image = uv_img @ view.A[:, :2].T + view.A[:, 2]
        np.testing.assert_allclose(view.project(view.points(X)), via_image, atol=1e-6)
        assert np.allclose(view.points(X)[:, 2], X[:, 2])  # depth is unchanged
        back = via_image @ view.crop_to_image[:, :2].T + view.crop_to_image[:, 2]
        np.testing.assert_allclose(back, uv_img, atol=1e-6)


def test_world_to_pixel_convention() -> None:
    cam = Camera(np.eye(3), np.array([0.0, 0.0, -1000.0]), np.array([1000.0, 1000.0]), np.array([100.0, 50.0]))
    np.testing.assert_allclose(cam.world_to_pixel(np.array([[10.0, -20.0, 0.0]])), [[110.0, 30.0]])


@pytest.fixture(scope="module")
def hands():
    return GTHands().layer


def test_neuralannot_world_to_camera_matches_transformed_joints(hands) -> None:
    """Regress joints from the mesh posed with the converted parameters and compare with the world
    joints moved by R (X - campos)."""
    rng = np.random.default_rng(3)
    pose = np.concatenate([_random_aa(rng, 2), rng.normal(0, 0.3, (2, 45))], 1)
    betas = rng.normal(0, 1, (2, 10))
    trans = rng.normal(0, 0.2, (2, 3))
    R = aa_to_matrix(_random_aa(rng, 1))[0]
    campos_mm = rng.normal(0, 800, 3)
    _, joints_world = hands.forward_numpy(pose[:, :3], pose[:, 3:], betas, trans)
    root_joint = GTHands().rest_root_joint(betas)
    root_cam, trans_cam = mano_world_to_camera(pose[:, :3], trans, root_joint, R, campos_mm)
    verts_cam, joints_cam = hands.forward_numpy(root_cam, pose[:, 3:], betas, trans_cam)
    expected = (joints_world.astype(np.float64) * 1000.0 - campos_mm) @ R.T / 1000.0
    np.testing.assert_allclose(joints_cam, expected, atol=2e-5)  # metres (float32 layer)
    regressed = np.einsum("hjv,hvc->hjc", hands.joint_regressor.numpy(), verts_cam)
    np.testing.assert_allclose(regressed, expected, atol=2e-5)

"""Run logging: TensorBoard scalars and preview images, the plain log, preview rendering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dir_net.engine.preview import IMAGENET_MEAN, IMAGENET_STD, PreviewMaker, denormalize, draw_skeletons
from dir_net.engine.trainer import Trainer
from dir_net.structures import Prediction, StageOutput
from test_engine_toys import ToyHands, ToyModel, toy_config, toy_dataset_factory, toy_model_factory


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cfg = toy_config(tmp_path_factory.mktemp("logs"), "train.log_every=2", "train.image_every=3",
                     "train.clip_grad_norm=1.0")
    result = Trainer(cfg, model_factory=toy_model_factory, dataset_factory=toy_dataset_factory).fit()
    acc = EventAccumulator(str(result.run_dir / "tb"), size_guidance={"images": 0})
    acc.Reload()
    return result, acc


def test_tensorboard_scalars(run):
    _, acc = run
    tags = set(acc.Tags()["scalars"])
    assert {"train/total", "train/joints", "train/offset", "train/lr", "train/throughput_img_s",
            "train/grad_norm"} <= tags
    assert {"val/wrist_scaled/mpjpe", "val/mcp/auc"} <= tags
    assert [e.step for e in acc.Scalars("train/total")] == [2, 4, 6, 8, 10, 12]  # every log_every steps
    assert [e.step for e in acc.Scalars("val/mcp/mpjpe")] == [6, 12]  # after each epoch
    assert all(e.value > 0 for e in acc.Scalars("train/throughput_img_s"))


def test_tensorboard_preview_images(run):
    _, acc = run
    images = acc.Images("train/prediction")
    assert [e.step for e in images] == [3, 6, 9, 12]
    assert (images[0].width, images[0].height) == (4 * 32, 32)  # 4 samples tiled in a row


def test_plain_log_file(run):
    result, _ = run
    text = (result.run_dir / "train.log").read_text()
    assert "epoch 1 step 2/12 joints=" in text and "img/s eta" in text
    assert "validation after epoch 2: wrist_scaled/mpjpe=" in text


def test_denormalize_inverts_imagenet_normalisation():
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    normalised = torch.from_numpy(((rgb / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))
    assert np.array_equal(denormalize(normalised), rgb)


def test_skeleton_fallback_draws_only_present_hands():
    image = np.zeros((32, 32, 3), np.uint8)
    joints = np.zeros((2, 21, 2))
    joints[0] = [8, 8]
    joints[1] = [24, 24]
    drawn = draw_skeletons(image, joints, np.array([True, False]))
    assert drawn[8, 8].any() and not drawn[24, 24].any() and not image.any()


def test_preview_renders_weak_perspective_meshes():
    """A DIR-style prediction (last stage: vertices about each wrist + cameras) gets meshes drawn."""
    verts = torch.tensor([[0.0, 0, 0], [0.05, 0, 0], [0, 0.05, 0], [0, 0, 0.05]])  # tetrahedron, metres
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    cam = torch.tensor([[8.0, -0.5, 0.0], [8.0, 0.5, 0.0]])  # hands left and right of the centre
    stage = StageOutput(root_6d=torch.zeros(1, 2, 6), finger_pose=torch.zeros(1, 2, 45), betas=torch.zeros(1, 2, 10),
                        cam=cam[None], offset=torch.zeros(1, 3), vertices=verts.expand(1, 2, 4, 3),
                        joints=torch.zeros(1, 2, 21, 3), verts_uv=torch.zeros(1, 2, 4, 2),
                        joints_uv=torch.zeros(1, 2, 21, 2))
    pred = Prediction(joints=torch.zeros(1, 2, 21, 3), offset=torch.zeros(1, 3), stages=[stage])
    batch = {"image": torch.zeros(1, 3, 64, 64)}
    maker = PreviewMaker(torch.stack([faces, faces]))
    try:
        overlay = maker(batch, pred)
    finally:
        maker.close()
    plain = denormalize(batch["image"][0])
    changed = np.abs(overlay[0].astype(int) - plain).sum(axis=2) > 0
    assert overlay.shape == (1, 64, 64, 3)
    assert changed[:, :32].any() and changed[:, 32:].any()  # one mesh on each side


def test_toy_model_follows_the_hand_model_interface():
    model, data = ToyModel(), ToyHands(2, train=False)
    batch = torch.utils.data.default_collate([data[0], data[1]])
    output = model(batch["image"])
    losses = model.losses(output, batch)
    assert set(losses) == {"joints", "offset", "total"} and losses["total"].ndim == 0
    assert model.predict(output, batch).joints.shape == (2, 2, 21, 3)

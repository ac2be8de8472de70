"""SimpleBaseline2D: overfitting, flip test, heatmap mirror convention, the per-hand pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dir_net.config import load_config
from dir_net.data.pipelines import Augment
from dir_net.errors import DataError
from dir_net.models.heatmap import apply_affine
from dir_net.models.simple_baseline import SimpleBaseline2D, SimpleBaseline2DOutput
from eval.keypoints2d import evaluate_keypoints2d
from real_samples import SAMPLES, needs_samples
from overfit import fit_one_batch

TINY = ["model.name=simple_baseline2d", "model.backbone.width=8", "model.simple_baseline2d.deconv_channels=32"]


def tiny_model(*extra: str) -> SimpleBaseline2D:
    return SimpleBaseline2D(load_config(None, TINY + list(extra)))


def synthetic_batch(size: int = 64, batch: int = 2) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    keypoints = 6 + torch.rand(batch, 21, 2, generator=gen) * (size - 12)
    crop_to_image = torch.tensor([[2.0, 0.0, 30.0], [0.0, 2.0, 10.0]]).repeat(batch, 1, 1)
    return {
        "image": torch.randn(batch, 3, size, size, generator=gen),
        "id": torch.arange(10, 10 + batch),
        "hand": torch.arange(batch) % 2,
        "keypoints_2d": keypoints,
        "keypoint_valid": torch.ones(batch, 21),
        "keypoints_image": apply_affine(keypoints, crop_to_image),
        "bbox_size": torch.full((batch,), 100.0),
        "crop_to_image": crop_to_image,
    }


def epe(model: SimpleBaseline2D, batch: dict[str, torch.Tensor]) -> float:
    with torch.no_grad():
        keypoints = model.keypoints(model(batch["image"]))
    return float((keypoints - batch["keypoints_2d"]).norm(dim=-1).mean())


def test_overfits_one_batch(one_thread) -> None:
    torch.manual_seed(0)
    model = tiny_model()
    batch = synthetic_batch()
    before = epe(model, batch)
    _, losses = fit_one_batch(model, batch, steps=250, lr=1e-2)
    after = epe(model, batch)
    assert set(losses) == {"heatmap", "total"}
    assert after < 0.2 * before, (before, after)


def test_loss_is_masked_by_keypoint_validity() -> None:
    model = tiny_model()
    batch = synthetic_batch()
    with torch.no_grad():
        output = model(batch["image"])
    assert model.losses(output, dict(batch, keypoint_valid=torch.zeros(2, 21)))["total"].item() == 0.0
    perfect = SimpleBaseline2DOutput(model.targets(batch["keypoints_2d"], (16, 16)))
    assert model.losses(perfect, batch)["total"].item() == pytest.approx(0.0, abs=1e-12)


def randomised(model: SimpleBaseline2D) -> SimpleBaseline2D:
    """Non-trivial weights (the 0.001 init gives nearly flat maps) and eval mode."""
    torch.manual_seed(1)
    for p in model.head.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model.eval()


def test_flip_test_symmetric_input_gives_symmetric_output() -> None:
    model = randomised(tiny_model())
    x = torch.randn(1, 3, 64, 64)
    x = 0.5 * (x + x.flip(-1))  # mirror-symmetric image
    with torch.no_grad():
        maps = model(x).heatmaps
        model.flip_test = False
        plain = model(x).heatmaps
    torch.testing.assert_close(maps, maps.flip(-1), rtol=1e-5, atol=1e-6)
    assert (plain - plain.flip(-1)).abs().max() > 1e-3  # the network alone is not symmetric


def test_flip_test_averages_the_mirrored_heatmaps() -> None:
    model = randomised(tiny_model())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps = model(x).heatmaps
        expected = 0.5 * (model.heatmaps(x) + model.heatmaps(x.flip(-1)).flip(-1))
        mirrored = model(x.flip(-1)).heatmaps
    torch.testing.assert_close(maps, expected)
    torch.testing.assert_close(mirrored, maps.flip(-1), rtol=1e-5, atol=1e-6)  # mirror-equivariant
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(x).heatmaps, maps)  # no flip test while training


def test_mirrored_target_is_the_target_of_the_mirrored_pixel() -> None:
    """The heatmap convention makes the flip exact: mirror(target(u)) == target(S - 1 - u)."""
    model = tiny_model()
    kp = torch.tensor([[[3.0, 7.0], [20.25, 40.0], [62.5, 0.0]]])
    mirrored_kp = torch.stack([63.0 - kp[..., 0], kp[..., 1]], -1)
    torch.testing.assert_close(model.targets(kp, (16, 16)).flip(-1), model.targets(mirrored_kp, (16, 16)))


def test_predict_and_eval_rows() -> None:
    model = tiny_model()
    batch = synthetic_batch()
    perfect = SimpleBaseline2DOutput(model.targets(batch["keypoints_2d"], (16, 16)))
    pred = model.predict(perfect, batch)
    assert pred.joints_2d.shape == (2, 2, 21, 2)
    assert pred.joints_2d[0, 1].abs().max() == 0 and pred.joints_2d[1, 0].abs().max() == 0  # other slot
    torch.testing.assert_close(pred.hand_prob, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert (pred.joints_2d[0, 0] - batch["keypoints_2d"][0]).norm(dim=-1).max() <= 2**0.5 + 1e-4  # 1/4 cell per axis
    pred_rows, gt_rows = model.eval_rows(perfect, batch)
    scores = evaluate_keypoints2d(pred_rows, gt_rows)["interhand2d"]
    assert scores["pck"] == 1.0
    assert scores["epe"] < 2.0  # image px = 2 x crop px


# --- the per-hand sample pipeline ---------------------------------------------------------------



def hand_dataset(tmp_path: Path, train: bool):
    from dir_net.data.layout import sample_files
    from dir_net.data import build_dataset

    cfg = load_config(None, ["data.pipeline=hand2d", f"data.cache_dir={tmp_path / 'cache'}"])
    return build_dataset(cfg, "test", train, sample_files(SAMPLES))


@needs_samples
def test_one_sample_per_valid_hand(tmp_path: Path) -> None:
    ds = hand_dataset(tmp_path, train=False)
    # two interacting frames (both hands), one right-only and one left-only frame
    pairs = sorted((int(ds[i]["id"]), int(ds[i]["hand"])) for i in range(len(ds)))
    assert pairs == [(286291, 0), (286291, 1), (326750, 0), (326750, 1), (471953, 0), (680801, 1)]
    for i in range(len(ds)):
        s = ds[i]
        valid = s["keypoint_valid"] > 0
        assert valid.sum() > 11
        back = s["keypoints_2d"] @ s["crop_to_image"][:, :2].T + s["crop_to_image"][:, 2]
        np.testing.assert_allclose(back[valid], s["keypoints_image"][valid], atol=1e-3)
        kp = s["keypoints_image"][valid]
        assert s["bbox_size"] == pytest.approx((kp.max(0) - kp.min(0)).max(), rel=1e-5)
        # tight box x1.5 -> the joints span 2/3 of the crop side, centred
        span = s["keypoints_2d"][valid].max(0) - s["keypoints_2d"][valid].min(0)
        assert span.max() == pytest.approx(256 / 1.5, rel=1e-4)


@needs_samples
def test_a_hand_with_an_invalid_wrist_is_not_a_sample(tmp_path: Path) -> None:
    """As the official loaders do: joint validity is multiplied by the wrist's validity."""
    import json
    import shutil

    from dir_net.data import build_dataset
    from dir_net.data.layout import sample_files

    copy = tmp_path / "samples"
    shutil.copytree(SAMPLES, copy)
    data_path = copy / "test_interhand2.6m_data.json"
    data = json.loads(data_path.read_text())
    ann = next(a for a in data["annotations"] if a["id"] == 286291)
    ann["joint_valid"][20] = [0]  # right wrist (InterHand order)
    data_path.write_text(json.dumps(data))
    cfg = load_config(None, ["data.pipeline=hand2d", f"data.cache_dir={tmp_path / 'cache'}"])
    ds = build_dataset(cfg, "test", False, sample_files(copy))
    pairs = {(int(ds[i]["id"]), int(ds[i]["hand"])) for i in range(len(ds))}
    assert (286291, 0) not in pairs and (286291, 1) in pairs


@needs_samples
def test_flip_keeps_the_hand_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = hand_dataset(tmp_path, train=True)
    pipe = ds.pipeline
    monkeypatch.setattr(pipe, "augment", lambda _rng: Augment())
    record = ds.record(0)
    plain = pipe(record, np.random.default_rng(0))
    monkeypatch.setattr(pipe, "augment", lambda _rng: Augment(flip=True))
    flipped = pipe(record, np.random.default_rng(0))
    assert flipped["hand"] == plain["hand"] == record.hand
    np.testing.assert_array_equal(flipped["keypoint_valid"], plain["keypoint_valid"])
    np.testing.assert_allclose(flipped["keypoints_2d"][:, 1], plain["keypoints_2d"][:, 1], atol=1e-3)
    u_sum = flipped["keypoints_2d"][:, 0] + plain["keypoints_2d"][:, 0]
    np.testing.assert_allclose(u_sum, u_sum.mean(), atol=1e-3)  # mirrored about one vertical line
    np.testing.assert_allclose(flipped["keypoints_image"], plain["keypoints_image"])


@needs_samples
def test_frame_records_are_refused(tmp_path: Path) -> None:
    from dir_net.data.dataset import InterHandDataset

    ds = hand_dataset(tmp_path, train=False)
    frame_record = InterHandDataset.record(ds, 0)  # a plain frame record without a hand
    with pytest.raises(DataError, match="one sample per hand"):
        ds.pipeline(frame_record, np.random.default_rng(0))


def test_config_file_and_registry() -> None:
    from dir_net.models import build_model

    path = Path(__file__).resolve().parents[1] / "configs" / "simplebaseline2d_r50_interhand2d.yaml"
    cfg = load_config(path, TINY[1:])
    assert (cfg.model.name, cfg.data.pipeline) == ("simple_baseline2d", "hand2d")
    assert (cfg.train.optimizer.name, cfg.train.optimizer.lr, cfg.train.epochs) == ("adam", 5e-4, 60)
    assert (cfg.train.schedule.name, cfg.train.schedule.milestones, cfg.train.batch_size) == ("multistep", [40, 50], 64)
    assert isinstance(build_model(cfg), SimpleBaseline2D)


# --- mmpose conventions (converted checkpoints; the sb2d_mmpose fixture in test_reference_equivalence) ---


def test_flip_shift_moves_the_mirrored_back_map_one_cell_right() -> None:
    model = tiny_model("model.simple_baseline2d.flip_shift=true").eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        back = model.heatmaps(x.flip(-1)).flip(-1)
        shifted = torch.cat([back[..., :1], back[..., :-1]], -1)  # column 0 keeps its own value
        torch.testing.assert_close(model(x).heatmaps, 0.5 * (model.heatmaps(x) + shifted))


@pytest.mark.parametrize(("peak", "per_axis", "mmpose"), [
    ((10, 1), (10.25, 1.25), (10.0, 1.0)),  # (y, x): x = 1 is interior per axis, a border for mmpose
    ((0, 10), (0.0, 10.25), (0.0, 10.0)),   # y = 0: mmpose shifts neither axis
    ((10, 2), (10.25, 2.25), (10.25, 2.25)),  # both in 2..W-2: both rules shift
])
def test_quarter_offset_border_rules(peak, per_axis, mmpose) -> None:
    maps = torch.zeros(1, 1, 16, 16)
    y, x = peak
    maps[0, 0, y, x] = 2.0
    maps[0, 0, y, x + 1] = 1.0  # the higher neighbour is right ...
    if y + 1 < 16:
        maps[0, 0, y + 1, x] = 1.0  # ... and below
    for border, want in (("per_axis", per_axis), ("mmpose", mmpose)):
        model = tiny_model(f"model.simple_baseline2d.offset_border={border}",
                           "model.simple_baseline2d.heatmap_px=scaled")
        cells = model.keypoint_cells(SimpleBaseline2DOutput(maps))[0, 0]  # (x, y)
        torch.testing.assert_close(cells, torch.tensor([want[1], want[0]]))
    invalid = tiny_model("model.simple_baseline2d.nonpositive_peak=invalid")
    negative = SimpleBaseline2DOutput(maps - 5.0)
    torch.testing.assert_close(invalid.keypoint_cells(negative)[0, 0], torch.tensor([-1.0, -1.0]))


def test_mmpose_joint_box_clamps_towards_the_image() -> None:
    from dir_net.data.pipeline_hand2d import Hand2DPipeline

    uv = np.array([[-20.0, 10.0], [60.0, 50.0]])  # one joint left of a 100 x 80 image
    tight = Hand2DPipeline(load_config(None, ["data.pipeline=hand2d"]), train=False)
    mmpose = Hand2DPipeline(load_config(None, ["data.pipeline=hand2d", "data.hand2d.box=mmpose"]), train=False)
    center, side = tight.joint_box(uv, (80, 100))
    np.testing.assert_allclose(center, [20.0, 30.0])
    assert side == pytest.approx(80.0)
    center, side = mmpose.joint_box(uv, (80, 100))  # min starts at (W, H) = (100, 80): unchanged here
    np.testing.assert_allclose(center, [20.0, 30.0])
    center, side = mmpose.joint_box(np.array([[120.0, 90.0], [130.0, 95.0]]), (80, 100))  # beyond W, H
    np.testing.assert_allclose(center, [115.0, 87.5])  # x0 = min(W, 120) = 100, y0 = min(H, 90) = 80
    assert side == pytest.approx(30.0)

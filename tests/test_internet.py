"""InterNet: heatmap encode/decode, flip consistency with the data pipeline, overfitting, RootNet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dir_net.config import load_config
from dir_net.data.camera import Camera
from dir_net.data.pipelines import Augment, InterNetPipeline
from dir_net.data.reader import Record
from dir_net.errors import DirNetError
from dir_net.models.heatmap import gaussian_heatmaps
from dir_net.models.internet import InterNet, InterNetOutput, back_project
from overfit import fit_one_batch

TINY = [
    "model.name=internet", "model.backbone.width=8", "model.internet.deconv_channels=32",
    "model.internet.depth_bins=16", "model.internet.root_bins=16", "model.internet.hidden=32",
]


def tiny_cfg(*extra: str):
    return load_config(None, TINY + list(extra))


def random_joints_25d(gen: torch.Generator, batch: int, size: int, depth_range: float) -> torch.Tensor:
    """(B, 2, 21, 3): u, v inside the crop, z within the depth range (m); wrists at z = 0."""
    uv = 8 + torch.rand(batch, 2, 21, 2, generator=gen) * (size - 16)
    z = (torch.rand(batch, 2, 21, 1, generator=gen) * 2 - 1) * depth_range * 0.8
    z[:, :, 0] = 0.0
    return torch.cat([uv, z], -1)


# --- encode / decode ---------------------------------------------------------------------------


def test_gaussian_target_matches_the_formula() -> None:
    center = torch.tensor([[2.0, 5.5, 7.25]])  # (z, y, x) cells
    maps = gaussian_heatmaps(center, (6, 12, 14), sigma=2.5, peak=255.0)
    assert maps.shape == (1, 6, 12, 14)
    for z, y, x in [(2, 5, 7), (0, 0, 0), (5, 11, 13), (3, 8, 2)]:
        d2 = (z - 2.0) ** 2 + (y - 5.5) ** 2 + (x - 7.25) ** 2
        assert maps[0, z, y, x].item() == pytest.approx(255.0 * np.exp(-d2 / (2 * 2.5**2)), rel=1e-5)


@pytest.mark.parametrize("decode", ["argmax", "soft_argmax"])
def test_heatmap_round_trip_within_one_voxel(decode: str) -> None:
    model = InterNet(tiny_cfg(f"model.internet.decode={decode}"))
    gen = torch.Generator().manual_seed(0)
    joints = random_joints_25d(gen, 4, 64, model.depth_range)
    maps = model.targets(joints, (16, 16))  # stride 4 px, 16 depth bins of 25 mm
    decoded = model.decode_heatmaps(maps)
    err_uv = (decoded[..., :2] - joints[..., :2]).abs()
    err_z = (decoded[..., 2] - joints[..., 2]).abs()
    bin_m = 2 * model.depth_range / model.depth_bins
    assert err_uv.max() <= 0.5 * model.stride + 1e-4  # within the voxel around the joint
    assert err_z.max() <= 0.5 * bin_m + 1e-6
    if decode == "soft_argmax":  # sub-voxel on average (the argmax averages 0.25 cell)
        assert err_uv.mean() < 0.15 * model.stride and err_z.mean() < 0.15 * bin_m


def test_heatmap_coordinates_follow_the_crop() -> None:
    """A joint at crop px (u, v) peaks in the cell that covers that pixel; depth 0 in bin D/2."""
    model = InterNet(tiny_cfg())
    joints = torch.tensor([[[[13.0, 41.0, 0.0]] * 21] * 2])  # (1, 2, 21, 3)
    maps = model.targets(joints, (16, 16))
    flat = maps[0, 0, 0].flatten().argmax().item()
    z, y, x = np.unravel_index(flat, (16, 16, 16))
    assert (z, y, x) == (8, 41 // 4, 13 // 4)


# --- flip augmentation -------------------------------------------------------------------------


def two_hand_record() -> Record:
    """Both hands in front of a 320x240 camera; the left wrist 6 cm further than the right."""
    rng = np.random.default_rng(3)
    joints = np.zeros((2, 21, 3))
    joints[0] = [-0.05, 0.0, 0.60] + rng.normal(scale=0.03, size=(21, 3))
    joints[1] = [0.05, 0.01, 0.66] + rng.normal(scale=0.03, size=(21, 3))
    joints[0, 0] = [-0.05, 0.0, 0.60]
    joints[1, 0] = [0.05, 0.01, 0.66]
    camera = Camera(np.eye(3), np.zeros(3), np.array([400.0, 410.0]), np.array([160.0, 120.0]))
    uv = camera.project(joints.reshape(-1, 3))
    lo, hi = uv.min(0), uv.max(0)
    image = rng.integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    return Record(
        ann_id=7, image=image, camera=camera, joints_cam=joints, joint_valid=np.ones((2, 21), np.float32),
        hand_type=2, hand_type_valid=1.0, bbox=np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]),
        mano=None, aux=None,
    )


def test_flip_swaps_hands_and_negates_relative_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(None, ["data.pipeline=internet"])
    pipe = InterNetPipeline(cfg, train=True)
    record = two_hand_record()
    rng = np.random.default_rng(0)
    monkeypatch.setattr(pipe, "augment", lambda _rng: Augment())
    plain = pipe(record, rng)
    monkeypatch.setattr(pipe, "augment", lambda _rng: Augment(flip=True))
    flipped = pipe(record, rng)

    assert plain["rel_root_depth"][0] == pytest.approx(0.06, abs=1e-6)
    assert flipped["rel_root_depth"][0] == pytest.approx(-0.06, abs=1e-6)
    for out in (plain, flipped):  # the relative depth is that of the (swapped) wrists
        assert out["rel_root_depth"][0] == pytest.approx(out["joints_3d"][1, 0, 2] - out["joints_3d"][0, 0, 2], abs=1e-6)
    np.testing.assert_array_equal(flipped["hand_present"], plain["hand_present"][::-1])
    mirror = np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(flipped["joints_3d"], plain["joints_3d"][::-1] * mirror, atol=1e-6)
    # 2.5D targets: same wrist-relative depths and v, u mirrored about one vertical line
    np.testing.assert_allclose(flipped["joints_25d"][..., 2], plain["joints_25d"][::-1, :, 2], atol=1e-6)
    np.testing.assert_allclose(flipped["joints_25d"][..., 1], plain["joints_25d"][::-1, :, 1], atol=1e-3)
    u_sum = flipped["joints_25d"][..., 0] + plain["joints_25d"][::-1, :, 0]
    np.testing.assert_allclose(u_sum, u_sum.mean(), atol=1e-3)

    # The model's decoding of the flipped targets gives the mirrored, hand-swapped skeleton.
    model = InterNet(load_config(None, TINY + ["model.internet.depth_bins=64", "model.internet.decode=soft_argmax"]))
    batch = {k: torch.as_tensor(np.stack([plain[k], flipped[k]])) for k in plain}
    maps = model.targets(batch["joints_25d"], (64, 64))
    output = InterNetOutput(maps, torch.zeros(2, 16), batch["rel_root_depth"][:, 0], torch.full((2, 2), 5.0))
    pred = model.predict(output, batch)
    err = (pred.joints - batch["joints_3d"]).norm(dim=-1)
    assert err.max() < 0.01  # metres
    np.testing.assert_allclose(pred.joints[1].numpy(), (pred.joints[0].flip(0) * torch.tensor(mirror)).numpy(), atol=0.01)


# --- overfitting -------------------------------------------------------------------------------


def synthetic_batch(model: InterNet, size: int = 64, batch: int = 2) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    joints_25d = random_joints_25d(gen, batch, size, model.depth_range)
    K = torch.tensor([[120.0, 0.0, size / 2], [0.0, 120.0, size / 2], [0.0, 0.0, 1.0]]).repeat(batch, 1, 1)
    wrist_z = torch.tensor([[0.60, 0.66], [0.70, 0.62]])[:batch]
    joints_3d = back_project(joints_25d[..., :2], joints_25d[..., 2] + wrist_z[:, :, None], K)
    return {
        "image": torch.randn(batch, 3, size, size, generator=gen),
        "id": torch.arange(batch),
        "joints_25d": joints_25d,
        "joints_3d": joints_3d,
        "joint_valid": torch.ones(batch, 2, 21),
        "rel_root_depth": (wrist_z[:, 1] - wrist_z[:, 0])[:, None],
        "root_valid": torch.ones(batch),
        "hand_present": torch.ones(batch, 2),
        "hand_type_valid": torch.ones(batch),
        "K_crop": K,
    }


def joint_error(model: InterNet, batch: dict[str, torch.Tensor]) -> float:
    pred = model.predict(model(batch["image"]), batch)
    return float((pred.joints - batch["joints_3d"]).norm(dim=-1).mean())


def test_overfits_one_batch(one_thread) -> None:
    torch.manual_seed(0)
    model = InterNet(tiny_cfg("model.internet.decode=soft_argmax"))
    batch = synthetic_batch(model)
    before = joint_error(model, batch)
    _, losses = fit_one_batch(model, batch, steps=300, lr=1e-2)
    after = joint_error(model, batch)
    assert set(losses) == {"heatmap", "root_depth", "hand_type", "total"}
    assert after < 0.2 * before, (before, after)


def test_losses_respect_the_masks() -> None:
    model = InterNet(tiny_cfg())
    batch = synthetic_batch(model)
    with torch.no_grad():
        output = model(batch["image"])
    masked = dict(batch, joint_valid=torch.zeros(2, 2, 21), root_valid=torch.zeros(2), hand_type_valid=torch.zeros(2))
    zero = model.losses(output, masked)
    assert zero["heatmap"].item() == zero["root_depth"].item() == zero["hand_type"].item() == 0.0
    full = model.losses(output, batch)
    assert full["heatmap"] > 0 and full["root_depth"] > 0 and full["hand_type"] > 0
    assert full["total"].item() == pytest.approx(float(full["heatmap"] + full["root_depth"] + full["hand_type"]), rel=1e-5)


# --- absolute depth ----------------------------------------------------------------------------


def rootnet_file(tmp_path: Path, entries) -> Path:
    path = tmp_path / "rootnet.json"
    path.write_text(json.dumps(entries))
    return path


def perfect_output(model: InterNet, batch: dict[str, torch.Tensor], right_present: bool) -> InterNetOutput:
    maps = model.targets(batch["joints_25d"], (16, 16))
    logits = torch.full((len(maps), 2), 6.0)
    logits[:, 0] = 6.0 if right_present else -6.0
    return InterNetOutput(maps, torch.zeros(len(maps), 16), batch["rel_root_depth"][:, 0], logits)


def test_rootnet_depths_place_the_hands(tmp_path: Path) -> None:
    path = rootnet_file(tmp_path, [
        {"annot_id": 1, "bbox": [0, 0, 10, 10], "abs_depth": [900.0, 950.0], "root_valid": 1},
        {"annot_id": 0, "bbox": [0, 0, 10, 10], "abs_depth": [800.0, 500.0], "root_valid": 1},
    ])
    model = InterNet(tiny_cfg(f"model.internet.rootnet_file={path}", "model.internet.decode=soft_argmax"))
    batch = synthetic_batch(model)
    rel = batch["rel_root_depth"][:, 0]
    pred = model.predict(perfect_output(model, batch, right_present=True), batch)
    assert pred.absolute
    wrist_z = pred.joints[:, :, 0, 2]
    # each hand at its own RootNet depth (official code and mmpose), whatever the handedness
    np.testing.assert_allclose(wrist_z, [[0.8, 0.5], [0.9, 0.95]], atol=0.004)
    alone = model.predict(perfect_output(model, batch, right_present=False), batch)
    torch.testing.assert_close(alone.joints, pred.joints)
    # the relative root depth places the left wrist only in the MRRPE vector: Z_left = Z_right + rel
    right_z = torch.tensor([0.8, 0.9])
    np.testing.assert_allclose(pred.offset[:, 2], rel, atol=0.004)
    decoded = model.decode_heatmaps(perfect_output(model, batch, True).heatmaps)[:, :, 0]  # (B, 2, 3) wrists
    wrists = back_project(decoded[..., :2], decoded[..., 2] + torch.stack([right_z, right_z + rel], 1), batch["K_crop"])
    np.testing.assert_allclose(pred.offset, wrists[:, 1] - wrists[:, 0], atol=1e-5)
    assert (pred.offset - (pred.joints[:, 1, 0] - pred.joints[:, 0, 0])).abs().max() > 0.1

    missing = dict(batch, id=torch.tensor([0, 5]))
    with pytest.raises(DirNetError, match="rootnet.json.*5"):
        model.predict(perfect_output(model, batch, True), missing)


def test_without_absolute_depth_the_right_wrist_is_the_origin() -> None:
    model = InterNet(tiny_cfg())
    batch = synthetic_batch(model)
    del batch["joints_3d"]
    pred = model.predict(perfect_output(model, batch, True), batch)
    assert not pred.absolute
    assert pred.joints[:, 0, 0].abs().max() < 1e-6


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (None, "rootnet_file.*not found"),
        ("{not json", "not valid JSON"),
        ([], "non-empty JSON list"),
        ([{"annot_id": 3, "bbox": [0, 0, 1, 1], "root_valid": 1}], "entry 0 has no field 'abs_depth'"),
        ([{"abs_depth": [1.0, 2.0]}], "entry 0 has no field 'annot_id'"),
        ([{"annot_id": 3, "abs_depth": "far"}], "entry 0 field 'abs_depth'"),
        ([{"annot_id": 3, "abs_depth": [900.0]}], "field 'abs_depth' must be two"),
        ([{"annot_id": 3, "abs_depth": [1.0, 2.0]}, {"annot_id": 3, "abs_depth": [1.0, 2.0]}], "repeats"),
    ],
)
def test_bad_rootnet_file_is_a_clear_error(tmp_path: Path, content, pattern: str) -> None:
    path = tmp_path / "rootnet.json"
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_text(json.dumps(content))
    with pytest.raises(DirNetError, match=pattern) as info:
        InterNet(tiny_cfg(f"model.internet.rootnet_file={path}"))
    assert "rootnet.json" in str(info.value)


def test_config_file_and_registry() -> None:
    from dir_net.models import build_model

    path = Path(__file__).resolve().parents[1] / "configs" / "internet_r50_interhand.yaml"
    cfg = load_config(path, TINY[1:])
    assert (cfg.model.name, cfg.data.pipeline) == ("internet", "internet")
    assert (cfg.train.optimizer.name, cfg.train.optimizer.lr, cfg.train.epochs) == ("adam", 1e-4, 20)
    assert (cfg.train.schedule.name, cfg.train.schedule.milestones, cfg.train.batch_size) == ("multistep", [15, 17], 64)
    assert isinstance(build_model(cfg), InterNet)


# --- reference conventions (converted checkpoints; the fixtures in test_reference_equivalence) ----


@pytest.mark.parametrize(("mode", "side"), [("none", None), ("as_is", 90.0), ("padded", 90.0 * 1.25)])
def test_rootnet_box_is_the_crop_in_rootnet_mode(tmp_path: Path, mode: str, side) -> None:
    """Official: RootNet's box as it is; mmpose: squared x bbox_pad; none: the GT bbox (x bbox_pad)."""
    record = two_hand_record()
    path = rootnet_file(tmp_path, [{"annot_id": 7, "bbox": [50.0, 40.0, 90.0, 60.0], "abs_depth": [600.0, 660.0],
                                    "root_valid": 1}])
    cfg = load_config(None, ["model.name=internet", "data.pipeline=internet", f"model.internet.rootnet_file={path}",
                             f"data.internet.rootnet_box={mode}", "data.internet.crop_center=half_size"])
    sample = InterNetPipeline(cfg, train=False)(record, np.random.default_rng(0))
    inv = sample["crop_to_image"]  # crop px -> image px
    if side is None:
        x, y, w, h = record.bbox
        side, center = max(w, h) * 1.25, (x + w / 2, y + h / 2)
    else:
        center = (95.0, 70.0)
    np.testing.assert_allclose(inv[:, :2], np.eye(2) * side / 256, atol=1e-5)
    np.testing.assert_allclose(inv @ [128.0, 128.0, 1.0], center, atol=1e-3)  # box centre at crop px S / 2


def test_rootnet_box_needs_the_entry(tmp_path: Path) -> None:
    path = rootnet_file(tmp_path, [{"annot_id": 8, "abs_depth": [600.0, 660.0]}])
    cfg = load_config(None, ["model.name=internet", "data.pipeline=internet", f"model.internet.rootnet_file={path}",
                             "data.internet.rootnet_box=as_is"])
    with pytest.raises(DirNetError, match="no RootNet entry for annotation id 7"):
        InterNetPipeline(cfg, train=False)(two_hand_record(), np.random.default_rng(0))
    path.write_text(json.dumps([{"annot_id": 7, "abs_depth": [600.0, 660.0]}]))
    with pytest.raises(DirNetError, match="no usable field 'bbox'"):
        InterNetPipeline(cfg, train=False)(two_hand_record(), np.random.default_rng(0))


@pytest.mark.parametrize("normalize", ["imagenet", "rgb01"])
@pytest.mark.parametrize("warp", ["uint8", "float"])
def test_image_conventions(normalize: str, warp: str) -> None:
    """rgb01: RGB / 255 only (official InterNet); float: the warp is not rounded to grey levels."""
    from dir_net.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    cfg = load_config(None, ["data.pipeline=internet", f"data.internet.normalize={normalize}",
                             f"data.internet.warp={warp}"])
    image = InterNetPipeline(cfg, train=False)(two_hand_record(), np.random.default_rng(0))["image"]
    rgb = image if normalize == "rgb01" else image * IMAGENET_STD[:, None, None] + IMAGENET_MEAN[:, None, None]
    assert rgb.min() >= -1e-6 and rgb.max() <= 1 + 1e-6
    grey = rgb * 255
    off_grid = np.abs(grey - np.round(grey)) > 1e-3
    assert off_grid.mean() > 0.5 if warp == "float" else off_grid.mean() < 1e-3


def test_scaled_cells_and_nonpositive_maxima() -> None:
    """heatmap_px=scaled: cell i is crop px 4 i; nonpositive_peak=invalid: a map <= 0 decodes to cell -1."""
    model = InterNet(tiny_cfg("model.internet.heatmap_px=scaled", "model.internet.nonpositive_peak=invalid"))
    maps = torch.full((2, 16, 16, 16), -1.0)
    maps[0, 8, 3, 5] = 2.0  # z bin 8 (the wrist depth), y 3, x 5
    maps[1, 8, 3, 5] = 0.0  # maximum exactly 0
    decoded = model.decode_heatmaps(maps)
    torch.testing.assert_close(decoded[0], torch.tensor([20.0, 12.0, 0.0]))
    bin_m = 2 * model.depth_range / model.depth_bins
    torch.testing.assert_close(decoded[1], torch.tensor([-4.0, -4.0, (-1 - 8) * bin_m]))
    keep = InterNet(tiny_cfg()).decode_heatmaps(maps)  # project defaults: cell centres, argmax kept
    torch.testing.assert_close(keep[1], torch.tensor([5.5 * 4 - 0.5, 3.5 * 4 - 0.5, 0.0]))

"""`dirnet demo`: crop, DIR forward (reduced width, untrained), overlay, meshes, JSON, errors."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from dir_net import cli
from dir_net.config import load_config
from dir_net.models import build_model
from dir_net.render.camera import weak_perspective_project, weak_perspective_to_pinhole
from dir_net.render.demo import crop_image, image_camera, predict, read_image
from dir_net.render.export import load_mesh
from dir_net.render.renderer import Renderer, RenderUnavailableError
from dir_net.utils.io import torch_save
from gl import no_gl

SMALL = ["model.backbone.width=8", "model.dir.width=32", "model.dir.joint_dim=32", "model.dir.plane_dim=8",
         "data.image_size=128"]
H, W = 180, 240


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("demo") / "hands.png"
    cv2.imwrite(str(path), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    return path


def _demo(image_path, out, bbox="60,40,100,120"):
    return cli.main(["demo", "--image", str(image_path), f"--bbox={bbox}", "--out", str(out), *SMALL])


def test_demo_without_checkpoint_writes_everything_and_says_untrained(image_path, tmp_path, caplog, capsys):
    try:
        Renderer(8, 8).close()
    except RenderUnavailableError as exc:
        no_gl(exc)
    with caplog.at_level(logging.WARNING):
        assert _demo(image_path, tmp_path) == 0
    assert any(r.levelno == logging.WARNING and "untrained" in r.getMessage() for r in caplog.records)
    assert "untrained" in capsys.readouterr().out
    overlay = cv2.imread(str(tmp_path / "overlay.png"))
    assert overlay.shape == (H, W, 3)
    original = cv2.imread(str(image_path))
    assert (np.abs(overlay.astype(int) - original).max(-1) > 30).mean() > 0.01  # hands drawn on it
    assert cv2.imread(str(tmp_path / "side.png")).shape == (128, 128, 3)
    assert cv2.imread(str(tmp_path / "panel.png")).shape[1] == 3 * 128 + 2 * 2
    record = json.loads((tmp_path / "mano_params.json").read_text())
    assert record["untrained"] is True and "untrained" in record["weights"]
    for hand in ("right", "left"):
        params = record["hands"][hand]
        assert len(params["root_axis_angle"]) == 3 and len(params["finger_pose_axis_angle"]) == 45
        assert len(params["betas"]) == 10 and set(params["cam"]) == {"s", "tx", "ty"}
    assert len(record["offset_m"]) == 3
    for hand in ("right", "left"):
        for fmt in ("obj", "ply"):
            verts, faces = load_mesh(tmp_path / "meshes" / f"hands_{hand}.{fmt}")
            assert verts.shape == (778, 3) and faces.shape == (1552, 3)
    right, _ = load_mesh(tmp_path / "meshes" / "hands_right.ply")
    assert np.linalg.norm(right, axis=1).max() < 0.5  # metres about the right wrist


@pytest.mark.parametrize("bbox", ["200,40,100,120", "-5,0,50,50", "0,0,10,200"])
def test_demo_box_outside_the_image(image_path, tmp_path, capsys, bbox):
    assert _demo(image_path, tmp_path, bbox) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--bbox" in err and f"{W}x{H}" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "1,2,0,5"])
def test_demo_malformed_box(image_path, tmp_path, capsys, bbox):
    assert _demo(image_path, tmp_path, bbox) == 2
    assert "--bbox" in capsys.readouterr().err


def test_demo_missing_image(tmp_path, capsys):
    missing = tmp_path / "no_such_image.jpg"
    assert _demo(missing, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(missing) in err and "--image" in err
    assert not (tmp_path / "out").exists()


def test_overlay_camera_maps_the_weak_perspective_onto_the_full_image():
    """Pinhole projection with the image camera == weak-perspective crop px through the inverse crop."""
    image = np.zeros((300, 400, 3), np.uint8)
    crop = crop_image(image, np.array([120.0, 60.0, 90.0, 150.0]), 128, 0.8)
    rng = np.random.default_rng(1)
    verts = rng.normal(0.0, 0.01, (50, 3)) * np.array([1.0, 1.0, 0.2])  # a flat-ish hand, metres
    cam = np.array([7.0, 0.1, -0.2])
    crop_camera, transl = weak_perspective_to_pinhole(cam, 128)
    full = image_camera(crop_camera, crop.crop_to_image).project(verts + transl)
    crop_px = weak_perspective_project(verts, cam, 128)
    expected = np.concatenate([crop_px, np.ones((50, 1))], 1) @ crop.crop_to_image.T
    np.testing.assert_allclose(full, expected, atol=0.05)


def test_demo_with_checkpoint_uses_its_config_and_weights(image_path, tmp_path):
    """The JSON holds the checkpoint model's output on the crop (a fresh random model would differ)."""
    cfg = load_config(None, SMALL)
    model = build_model(cfg).eval()
    checkpoint = tmp_path / "best.pt"
    torch_save(checkpoint, {"model": model.state_dict(), "config": cfg.to_dict()})
    out = tmp_path / "out"
    argv = ["demo", "--image", str(image_path), "--bbox=60,40,100,120", "--out", str(out),
            "--checkpoint", str(checkpoint)]
    try:
        assert cli.main(argv) == 0
    except RenderUnavailableError as exc:
        no_gl(exc)
    record = json.loads((out / "mano_params.json").read_text())
    assert record["untrained"] is False and record["weights"] == str(checkpoint)
    crop = crop_image(read_image(image_path), np.array([60.0, 40.0, 100.0, 120.0]), 128, cfg.data.dir.crop_ratio)
    expected = predict(model, crop).stages[-1]
    np.testing.assert_allclose(record["offset_m"], expected.offset[0].tolist(), atol=1e-5)
    np.testing.assert_allclose(record["hands"]["left"]["betas"], expected.betas[0, 1].tolist(), atol=1e-5)

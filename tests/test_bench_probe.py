"""`dirnet bench probe`: the plain-CNN learnability probe (dir_net.bench.probe) on a tiny synthetic set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dir_net.bench.probe import Crops, Regressor, hand_errors, to_crops
from mano.joints import MIDDLE_MCP


def test_crops_are_middle_mcp_relative_millimetres():
    joints_m = torch.tensor(np.random.default_rng(0).normal(size=(3, 2, 21, 3)), dtype=torch.float32)
    raw = {"image": torch.zeros(3, 3, 128, 128), "joints_3d": joints_m, "joints_2d": torch.zeros(3, 2, 21, 2),
           "joint_valid": torch.ones(3, 2, 21)}
    crops = to_crops(raw, 64)
    assert crops.image.shape == (3, 3, 64, 64)
    assert crops.joints_mm[:, :, MIDDLE_MCP].abs().max() < 1e-4
    expected = (joints_m[0, 1, 0] - joints_m[0, 1, MIDDLE_MCP]) * 1000
    torch.testing.assert_close(crops.joints_mm[0, 1, 0], expected, rtol=1e-5, atol=1e-3)


def test_hand_errors_average_over_valid_hands_only():
    joints = torch.zeros(2, 2, 21, 3)
    crops = Crops(torch.zeros(2, 3, 8, 8), joints, torch.zeros(2, 2, 21, 2), torch.tensor([[True, False], [True, True]]))
    pred_mm, pred_px = joints.clone(), torch.zeros(2, 2, 21, 2)
    pred_mm[:, 0, :, 0] = 3.0  # right hands 3 mm off
    pred_mm[0, 1] = 100.0  # frame 0's left hand is not valid: ignored
    pred_px[1, 1, :, 1] = 6.0  # frame 1's left hand 6 px off
    e3, e2 = hand_errors(pred_mm, pred_px, crops)
    assert e3 == pytest.approx(2.0)  # (3 + 3 + 0) / 3 valid hands
    assert e2 == pytest.approx(2.0)


@pytest.mark.parametrize("backbone, head", [("plain", "direct"), ("resnet50", "direct"), ("plain", "mano")])
def test_regressor_shape(backbone, head):
    out = Regressor(backbone, 8, 64, head)(torch.zeros(2, 3, 64, 64))
    assert out.shape == (2, 2, 21, 5)


def test_direct_head_starts_near_the_mean_hand():
    mean_mm, mean_px = torch.randn(2, 21, 3) * 30.0, torch.rand(2, 21, 2) * 128.0
    out = Regressor("plain", 8, 64, "direct", mean_mm, mean_px)(torch.zeros(1, 3, 64, 64))
    assert (out[0, ..., :3] - mean_mm).abs().max() < 20.0  # default Linear init: offsets of a few mm
    assert (out[0, ..., 3:] - mean_px).abs().max() < 30.0


def test_mano_head_poses_parameters_as_dir_decodes_them():
    """The probe's mano head must measure DIR's parameterisation: same joints and projections as
    DIRModel.decode for the same parameter vectors (hand axis: right, left)."""
    from dir_net.config import load_config
    from dir_net.models import build_model

    torch.manual_seed(0)
    probe = Regressor("plain", 8, 64, "mano")
    params = probe.head.bias.detach().view(1, 2, -1).repeat(3, 1, 1) + 0.3 * torch.randn(3, 2, 64)
    with torch.no_grad():
        out = probe._pose(params)
        dir_model = build_model(load_config(Path(__file__).parents[1] / "configs" / "learn_dir_cpu.yaml"))
        est = dir_model.decode({"right": params[:, 0], "left": params[:, 1]}, torch.zeros(3, 3))
    for axis, hand in enumerate(("right", "left")):
        joints = est.joints[hand]
        torch.testing.assert_close(out[:, axis, :, :3], (joints - joints[:, MIDDLE_MCP:MIDDLE_MCP + 1]) * 1000.0,
                                   rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(out[:, axis, :, 3:], (est.joint_uv[hand] + 1.0) * 64.0, rtol=1e-4, atol=1e-3)


def test_probe_command_writes_a_learning_curve(tmp_path: Path, one_thread):
    from dir_net.cli import main
    from dir_net.data.synth import generate

    root = tmp_path / "synth"
    generate(root, frames=4, seed=0, splits=["train", "test"], cameras=1)
    out, cache = tmp_path / "probe.json", tmp_path / "crops.pt"
    args = ["bench", "probe", str(root), "--minutes", "0.02", "--evals", "2", "--width", "8", "--cache", str(cache)]
    assert main([*args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["steps"] > 0 for row in result["rows"]] == [True, True]
    assert result["rows"][1]["steps"] > result["rows"][0]["steps"]
    assert result["extra"]["mean_hand"]["test"]["3d_mm"] > 0
    assert cache.is_file()  # a second run reads the cached crops
    assert main([*args, "--head", "mano", "--json", str(tmp_path / "mano.json")]) == 0
    assert json.loads((tmp_path / "mano.json").read_text())["settings"]["head"] == "mano"


@pytest.mark.parametrize("args, message", [
    (["--evals", "0"], "--evals 0"), (["--minutes", "0"], "--minutes 0"), (["--size", "16"], "--size 16"),
    (["--width", "0"], "--width 0"), (["--head", "heatmap"], "--head heatmap"),
])
def test_probe_refuses_options_out_of_range_in_one_line(tmp_path, capsys, args, message):
    from dir_net.cli import main

    assert main(["bench", "probe", str(tmp_path), *args]) == 2  # refused before any data is read
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1

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


@pytest.mark.parametrize("backbone", ["plain", "resnet50"])
def test_regressor_shape(backbone):
    out = Regressor(backbone, 8, 64)(torch.zeros(2, 3, 64, 64))
    assert out.shape == (2, 2, 21, 5)


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
    assert main([*args, "--json", str(tmp_path / "again.json")]) == 0


@pytest.mark.parametrize("args, message", [
    (["--evals", "0"], "--evals 0"), (["--minutes", "0"], "--minutes 0"), (["--size", "16"], "--size 16"),
    (["--width", "0"], "--width 0"),
])
def test_probe_refuses_options_out_of_range_in_one_line(tmp_path, capsys, args, message):
    from dir_net.cli import main

    assert main(["bench", "probe", str(tmp_path), *args]) == 2  # refused before any data is read
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1

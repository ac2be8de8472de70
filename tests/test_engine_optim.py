"""Optimisers and per-iteration LR schedules from the config; engine config checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from dir_net.config import load_config
from dir_net.engine.optim import build_optimizer, build_scheduler, make_schedule
from dir_net.engine.runtime import check_engine_config, resolve_precision
from dir_net.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def cfg_with(*overrides: str):
    return load_config(None, list(overrides)).train


def test_cosine_with_warmup_per_iteration():
    schedule = make_schedule(cfg_with("train.epochs=10", "train.schedule.warmup_epochs=1",
                                      "train.schedule.warmup_factor=0.1"), steps_per_epoch=100)
    assert schedule(0) == pytest.approx(0.1)
    assert schedule(50) == pytest.approx(0.55)  # halfway through the linear warm-up
    assert schedule(100) == pytest.approx(1.0)
    assert schedule(550) == pytest.approx(0.5)  # half of the cosine span (100..1000)
    assert schedule(1000) == pytest.approx(0.0, abs=1e-12)
    assert schedule(325) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))


def test_cosine_floor():
    schedule = make_schedule(cfg_with("train.epochs=2", "train.schedule.min_factor=0.05"), steps_per_epoch=10)
    assert schedule(20) == pytest.approx(0.05) and schedule(0) == pytest.approx(1.0)


def test_multistep_internet_recipe():
    train = cfg_with("train.epochs=20", "train.optimizer.name=adam", "train.optimizer.lr=0.0001",
                     "train.schedule.name=multistep", "train.schedule.milestones=[15, 17]")
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(train, model)
    assert isinstance(optimizer, torch.optim.Adam) and not isinstance(optimizer, torch.optim.AdamW)
    scheduler = build_scheduler(train, optimizer, steps_per_epoch=10)
    lrs = []
    for _ in range(200):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[149] == pytest.approx(1e-4) and lrs[150] == pytest.approx(1e-5)
    assert lrs[169] == pytest.approx(1e-5) and lrs[170] == pytest.approx(1e-6)


def test_adamw_gets_the_configured_hyper_parameters():
    train = cfg_with("train.optimizer.lr=0.0005", "train.optimizer.weight_decay=0.05",
                     "train.optimizer.betas=[0.8, 0.99]")
    optimizer = build_optimizer(train, torch.nn.Linear(3, 1))
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert (group["lr"], group["weight_decay"], group["betas"]) == (0.0005, 0.05, (0.8, 0.99))


@pytest.mark.parametrize("override, key", [
    ("train.precision=fp8", "train.precision"),
    ("train.optimizer.name=sgd", "train.optimizer.name"),
    ("train.schedule.name=linear", "train.schedule.name"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.max_steps=-3", "train.max_steps"),
    ("train.optimizer.betas=[0.9]", "train.optimizer.betas"),
    ("evaluation.protocols=[moon, bogus]", "evaluation.protocols"),
    ("train.optimizer.lr=0", "train.optimizer.lr"),
    ("train.optimizer.lr=-1e-4", "train.optimizer.lr"),
    ("data.image_size=0", "data.image_size"),
    ("data.image_size=250", "data.image_size"),
    ("data.internet.bbox_pad=0", "data.internet.bbox_pad"),
    ("data.hand2d.bbox_pad=-1.5", "data.hand2d.bbox_pad"),
    ("data.dir.crop_ratio=0", "data.dir.crop_ratio"),
    ("data.dir.crop_ratio=1.2", "data.dir.crop_ratio"),
    ("model.internet.sigma=0", "model.internet.sigma"),
    ("model.simple_baseline2d.sigma=-2", "model.simple_baseline2d.sigma"),
    ("evaluation.batch_size=0", "evaluation.batch_size"),
])
def test_engine_config_errors_name_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        check_engine_config(load_config(None, [override]))


def test_valid_edge_values_pass():
    check_engine_config(load_config(None, ["data.dir.crop_ratio=1.0", "data.image_size=224",
                                           "train.optimizer.lr=1e-9"]))


def test_dirnet_train_check_rejects_a_bad_value_before_any_work(tmp_path, capsys):
    from dir_net.cli import main as dirnet

    root = tmp_path / "data"  # split files that exist: --check also checks data.root
    for split in ("train", "val"):
        (root / "annotations" / split).mkdir(parents=True)
        for kind in ("data", "camera", "joint_3d"):
            (root / "annotations" / split / f"InterHand2.6M_{split}_{kind}.json").write_text("{}")
    args = ["train", "--check", "--config", str(REPO / "configs" / "quickstart.yaml"),
            f"experiment.output_dir={tmp_path / 'runs'}", f"data.root={root}"]
    assert dirnet([*args, "data.image_size=100"]) == 2
    assert "'data.image_size' must be a multiple of 32, got 100" in capsys.readouterr().err
    assert dirnet([*args, "model.name=internet", "evaluation.protocols=[mcp]"]) == 2
    assert "only the dir pipeline" in capsys.readouterr().err
    assert dirnet(args) == 0 and "config ok" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists() and not (root / "dirnet_cache").exists()  # nothing was created


def test_precision_on_cpu():
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    with pytest.raises(ConfigError, match="train.precision"):
        resolve_precision("bf16", torch.device("cpu"))

"""What a new user trips over (issue 18): predictions drawn at the crop size they were made on,
one-line launcher errors, an out-of-memory rank named as such, one synthetic-hand notice per run,
`dirnet data synth` refusing to replace a dataset, bench help saying the cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dir_net import cli
from dir_net.config import load_config
from dir_net.engine.inference import crop_convention, prediction_meta

REPO = Path(__file__).resolve().parents[1]
CROP = 128  # the quickstart's data.image_size: not the 256 px default


# -- 1. predictions record their crop; `dirnet render` draws them on it ---------------------------

@pytest.fixture(scope="module")
def small_crop_predictions(tmp_path_factory):
    """2 synthetic test frames; predictions = ground truth made root-relative, with joints_2d in
    the pixels of a 128 px crop and the crop fields `dirnet eval` writes for a 128 px model."""
    from dir_net.data.synth import generate
    from dir_net.render.samples import DatasetSamples

    root = tmp_path_factory.mktemp("synth")
    generate(root, frames=2, seed=0, splits=["test"], cameras=1, missing_mano=0.0)
    cfg = load_config(None, [f"data.root={root}", f"data.image_size={CROP}"])
    source = DatasetSamples(cfg, "test")
    ids, joints, joints_2d = [], [], []
    for ann_id in source.ids:
        s = source.sample(ann_id)
        assert s.image.shape[:2] == (CROP, CROP)
        p = s.gt_joints @ s.K.T
        ids.append(ann_id)
        joints.append((s.gt_joints - s.gt_joints[0, 0]) * 1000.0)
        joints_2d.append(p[..., :2] / p[..., 2:])
    pred = root / "predictions.npz"
    np.savez(pred, ids=np.array(ids), joints=np.array(joints), joints_2d=np.array(joints_2d),
             **prediction_meta(cfg))
    return {"root": root, "pred": pred, "ids": ids}


def _render(case, out, *extra):
    from gl import open_renderer

    open_renderer(8, 8).close()
    return cli.main(["render", "--pred", str(case["pred"]), "--data", str(case["root"]), "--out", str(out),
                     "--place", "fit2d", "--ids", str(case["ids"][0]), *extra])


def test_prediction_meta_records_crop_size_model_and_crop_rules():
    cfg = load_config(None, ["data.image_size=128", "model.name=internet", "data.pipeline=internet"])
    meta = prediction_meta(cfg)
    assert int(meta["crop_size"]) == 128 and str(meta["model_name"]) == "internet"
    crop = json.loads(str(meta["crop"]))
    assert crop == crop_convention(cfg)
    assert crop["data.image_size"] == 128 and crop["data.pipeline"] == "internet"
    assert crop["data.internet.bbox_pad"] == 1.25


def test_render_without_config_draws_on_the_recorded_crop(small_crop_predictions, tmp_path):
    """The quickstart case: no --config, a 128 px model. The panel columns are 128 px and the
    prediction (placed by its joints_2d) lands on the ground truth, not at half size in a corner."""
    rc = _render(small_crop_predictions, tmp_path)
    assert rc == 0
    panel = cv2.imread(str(tmp_path / "panels" / f"{small_crop_predictions['ids'][0]}.png")).astype(np.int16)
    pad = 2  # figures.side_by_side gap
    assert panel.shape[1] == 5 * CROP + 4 * pad
    body = panel[panel.shape[0] - CROP:]
    image, pred, _, gt, _ = (body[:, k * (CROP + pad): k * (CROP + pad) + CROP] for k in range(5))
    assert (np.abs(pred - image).max(-1) > 30).mean() > 0.005  # the skeleton is drawn
    assert np.abs(pred - gt).mean() < 1.0  # exactly where the ground truth is


def test_render_refuses_a_config_with_another_crop_size(small_crop_predictions, tmp_path, capsys):
    config = tmp_path / "paper.yaml"
    config.write_text("data:\n  image_size: 256\n")
    rc = _render(small_crop_predictions, tmp_path / "out", "--config", str(config))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "data.image_size=128" in err and "data.image_size=256" in err and str(config) in err
    assert not (tmp_path / "out" / "panels").exists()
    rc = _render(small_crop_predictions, tmp_path / "out", "data.image_size=160")
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "override data.image_size=160" in err


def test_eval_writes_the_crop_fields_and_the_toolkit_still_reads_the_file(tmp_path):
    from dir_net.engine.evaluation import evaluate_checkpoint
    from dir_net.engine.trainer import Trainer
    from eval import load_npz
    from test_engine_toys import toy_config, toy_dataset_factory, toy_model_factory

    cfg = toy_config(tmp_path, "train.epochs=1", "train.val_every=0", "data.image_size=64")
    result = Trainer(cfg, model_factory=toy_model_factory, dataset_factory=toy_dataset_factory).fit()
    evaluation = evaluate_checkpoint(cfg, result.last_checkpoint, "test", tmp_path / "eval",
                                     model_factory=toy_model_factory, dataset_factory=toy_dataset_factory)
    path = evaluation.files["predictions.npz"]
    with np.load(path) as npz:
        assert int(npz["crop_size"]) == 64 and str(npz["model_name"]) == cfg.model.name
        assert json.loads(str(npz["crop"]))["data.image_size"] == 64
    assert len(load_npz(path, "pred")["ids"]) == evaluation.num_samples


# -- 5. one synthetic-hand notice per run ----------------------------------------------------------

_NOTICE_SCRIPT = """
import logging, os, subprocess, sys
import mano

logging.basicConfig(level=logging.INFO)
mano.load_hands(); mano.load_hands()             # twice in the main process
child = [sys.executable, "-c", "import logging, mano; logging.basicConfig(); mano.load_hands()"]
subprocess.run(child, check=True)                # a process it starts (a loader worker, a bench)
subprocess.run(child, check=True, env={**os.environ, "RANK": "1", "%s": ""})  # rank 1 of a job
"""


def test_synthetic_hand_notice_is_shown_once_per_run(tmp_path):
    from mano.layer import ENV_VAR, NOTICE_ENV_VAR

    script = tmp_path / "run.py"
    script.write_text(_NOTICE_SCRIPT % NOTICE_ENV_VAR)
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, NOTICE_ENV_VAR, "RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (done.stdout + done.stderr).count("SYNTHETIC MANO-format hand") == 1


# -- 6. `dirnet data synth` never silently replaces a dataset ------------------------------------

def test_data_synth_skips_the_same_dataset_and_refuses_another_without_force(tmp_path, monkeypatch, capsys):
    import dir_net.data.synth as synth

    out = tmp_path / "data"
    argv = ["data", "synth", str(out), "--frames", "1", "--cameras", "1", "--splits", "test"]
    assert cli.main(argv) == 0
    marker = json.loads((out / synth.COMPLETE_MARKER).read_text())
    assert marker["arguments"]["seed"] == 0 and marker["arguments"]["frames"] == 1
    capsys.readouterr()

    def no_rendering(*args, **kwargs):
        raise AssertionError("the dataset was generated again")

    monkeypatch.setattr(synth, "_render_split", no_rendering)
    assert cli.main(argv) == 0  # same arguments: nothing to do
    assert "nothing to do" in capsys.readouterr().err

    for other in (["--seed", "1"], ["--frames", "2"], ["--splits", "test,val"]):
        assert cli.main([*argv, *other]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and str(out) in err and "--force" in err
    assert json.loads((out / synth.COMPLETE_MARKER).read_text()) == marker  # untouched

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a synthetic dataset")
    assert cli.main(["data", "synth", str(tmp_path / "other"), "--frames", "1"]) == 2
    assert "no finished synthetic dataset" in capsys.readouterr().err

    monkeypatch.undo()
    assert cli.main([*argv, "--seed", "1", "--force"]) == 0
    assert json.loads((out / synth.COMPLETE_MARKER).read_text())["arguments"]["seed"] == 1


# -- 8. moon on the MANO ground truth is flagged -----------------------------------------------

def test_moon_scored_on_the_mano_ground_truth_warns(tmp_path, capsys):
    from test_engine_toys import template_hand

    hands = np.stack([template_hand(), template_hand() + [0.2, 0.0, 0.0]]) * 1000.0  # (2, 21, 3) mm
    rows = {"ids": np.arange(3), "joints": np.repeat(hands[None], 3, 0)}
    np.savez(tmp_path / "predictions.npz", **rows)
    for name, warned in (("groundtruth_mano.npz", True), ("groundtruth_annot.npz", False)):
        np.savez(tmp_path / name, **rows)
        for protocol, expected in (("moon", warned), ("all", warned), ("mcp_scaled", False)):
            argv = ["eval", "score", "--pred", str(tmp_path / "predictions.npz"), "--gt", str(tmp_path / name),
                    "--protocol", protocol]
            assert cli.main(argv) == 0
            err = capsys.readouterr().err
            assert ("moon is defined on the annotated joints" in err) == expected, (name, protocol, err)


# -- 2. a paper config on a CPU machine: the memory estimate says it will not fit -------------------

def _split_files(root: Path) -> Path:
    for split in ("train", "val"):
        (root / "annotations" / split).mkdir(parents=True)
        for kind in ("data", "camera", "joint_3d"):
            (root / "annotations" / split / f"InterHand2.6M_{split}_{kind}.json").write_text("{}")
    return root


def test_memory_estimate_of_the_paper_configs_on_a_cpu():
    from dir_net.engine.preflight import estimate_memory

    internet = load_config(REPO / "configs" / "internet_r50_interhand.yaml", ["train.device=cpu"])
    paper = estimate_memory(internet, processes=1)
    assert paper.device == "cpu" and 20 < paper.per_process_gb < 30  # killed at ~23 GB on a CPU machine
    small = estimate_memory(load_config(REPO / "configs" / "internet_r50_interhand.yaml",
                                        ["train.device=cpu", "train.batch_size=8", "data.image_size=128"]), 1)
    assert small.per_process_gb < paper.per_process_gb / 4
    assert estimate_memory(internet, processes=2).needed_gb == pytest.approx(2 * paper.needed_gb)
    quick = estimate_memory(load_config(REPO / "configs" / "quickstart.yaml", ["train.device=cpu"]), 1)
    assert quick.per_process_gb < 2


def test_train_check_refuses_a_cpu_run_that_will_not_fit(tmp_path, monkeypatch, capsys):
    from dir_net.engine import preflight

    monkeypatch.setattr(preflight, "available_ram_gb", lambda: 16.0)
    monkeypatch.delenv(preflight.SKIP_ENV_VAR, raising=False)
    args = ["train", "--check", "--config", str(REPO / "configs" / "internet_r50_interhand.yaml"), "train.device=cpu",
            f"data.root={_split_files(tmp_path / 'data')}", f"experiment.output_dir={tmp_path / 'runs'}"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "out of memory" in err and "16.0 GB" in err
    assert "GPU configs" in err and "train.batch_size" in err and "data.image_size" in err
    assert cli.main([*args, "train.batch_size=8", "data.image_size=128"]) == 0
    assert "config ok" in capsys.readouterr().out
    monkeypatch.setenv(preflight.SKIP_ENV_VAR, "1")
    assert cli.main(args) == 0


def test_the_first_step_reports_its_progress(tmp_path, caplog):
    """A run that takes minutes for its first step (a paper config on a CPU) says what it is doing."""
    import logging

    from dir_net.engine.trainer import Trainer
    from test_engine_toys import toy_config, toy_dataset_factory, toy_model_factory

    cfg = toy_config(tmp_path, "train.epochs=1", "train.val_every=0", "train.log_every=0")
    with caplog.at_level(logging.INFO, logger="dir_net.engine.trainer"):
        Trainer(cfg, model_factory=toy_model_factory, dataset_factory=toy_dataset_factory).fit()
    first = [r.getMessage() for r in caplog.records if r.getMessage().startswith("first step")]
    assert len(first) == 3  # once per run, not per step
    assert "loading the first batch" in first[0] and "batch loaded in" in first[1]
    assert "done in" in first[2] and "peak memory" in first[2] and " GB" in first[2]


# -- 7. the long benches say what they cost; a bf16 peak only for a bf16 run ---------------------

def test_bench_help_says_time_and_memory_and_smoke_stays_quick(capsys):
    for argv in (["bench", "all", "--help"], ["bench", "index", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert "min" in text and "GB" in text, argv
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    listing = " ".join(capsys.readouterr().out.split())
    assert "25 min" in listing and "10 GB" in listing and "--smoke" in listing


@pytest.mark.parametrize("dtype, expected", [("fp32", ["fp32"]), ("bf16", ["fp32", "bf16"]),
                                             ("fp16", ["fp32", "fp16"])])
def test_matmul_peaks_measure_bf16_only_for_a_bf16_run(monkeypatch, dtype, expected):
    import torch

    from dir_net.bench import infer

    measured = []
    monkeypatch.setattr(infer, "matmul_peak", lambda device, name, size: measured.append(name) or {"tflops": 1.0})
    assert list(infer.measure_peaks(torch.device("cpu"), dtype, 64)) == expected
    assert measured == expected

"""The quickstart end to end with the real DIR model and synthetic data (shrunk to seconds), then
`dirnet eval run` on its checkpoint with the config stored in the checkpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from dir_net.cli import main as dirnet
from eval import load_npz

REPO = Path(__file__).resolve().parents[1]
TINY = ["train.epochs=1", "train.batch_size=4", "train.num_workers=0", "data.image_size=64",
        "model.backbone.width=8", "model.dir.width=32", "evaluation.batch_size=8", "train.log_every=1"]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    work = tmp_path_factory.mktemp("quickstart")
    args = ["quickstart", "--config", str(REPO / "configs" / "quickstart.yaml"), "--frames", "16",
            f"data.root={work / 'data'}", f"experiment.output_dir={work / 'runs'}", *TINY]
    return work, args


def test_quickstart_trains_evaluates_and_draws(quickstart, capsys):
    work, args = quickstart
    assert dirnet(args) == 0
    out = capsys.readouterr().out
    run = work / "runs" / "quickstart"
    for line in ("metrics table:", "TensorBoard logs:", "checkpoint:", "figure:"):
        assert line in out
    assert (work / "data" / "annotations" / "test").is_dir()  # the synthetic dataset was generated
    maps = list((work / "data" / "dirnet_cache" / "aux").rglob("*.png"))  # `dirnet data prepare` ran
    assert maps and {p.parent.parent.name.split("-")[0] for p in maps} == {"train"}
    steps = [line for line in (run / "train.log").read_text().splitlines() if re.search(r" step \d+/\d+ ", line)]
    assert steps and all(float(line.split("seg_ce=")[1].split()[0]) > 0 for line in steps)  # aux losses active
    assert re.search(r"quickstart finished in \d+ s \(data \d+ s, training \d+ s, evaluation \d+ s", out)
    assert (run / "checkpoints" / "best.pt").is_file() and list((run / "tb").iterdir())
    table = (run / "eval" / "test" / "metrics.md").read_text()
    assert "| mpjpe | mm |" in table and "wrist_scaled" in table and "mcp_scaled" in table
    assert (run / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert "data.pipeline" not in out  # the DIR config already uses the DIR pipeline
    # the mean hand beside the model, so a newcomer can judge the figures, and the meshes' bone lengths
    judged = re.findall(r"\| (wrist_scaled|mcp_scaled|mcp) \| mpjpe \(mm\) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", out)
    assert {row[0] for row in judged} == {"wrist_scaled", "mcp_scaled", "mcp"}
    assert all(float(r[3]) == pytest.approx(float(r[1]) / float(r[2]), abs=0.01) for r in judged)
    assert re.search(r"predicted / GT bone length, median over the test hands: \d+\.\d\d", out)

    assert dirnet(args) == 0  # a second run resumes the finished run and re-evaluates
    assert "quickstart finished" in capsys.readouterr().out


def test_quickstart_never_writes_into_an_unfinished_dataset(tmp_path, capsys):
    root = tmp_path / "data"
    (root / "annotations" / "train").mkdir(parents=True)  # e.g. an interrupted `dirnet data synth`
    code = dirnet(["quickstart", "--config", str(REPO / "configs" / "quickstart.yaml"), f"data.root={root}",
                   f"experiment.output_dir={tmp_path / 'runs'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert str(root) in err and "delete the folder" in err
    assert [p.relative_to(root).as_posix() for p in sorted(root.rglob("*"))] == ["annotations", "annotations/train"]
    assert not (tmp_path / "runs").exists()


def test_eval_run_uses_the_checkpoint_config(quickstart, tmp_path, capsys):
    work, _ = quickstart
    ckpt = work / "runs" / "quickstart" / "checkpoints" / "best.pt"
    assert dirnet(["eval", "run", "--checkpoint", str(ckpt), "--split", "val", "--out", str(tmp_path)]) == 0
    assert f"results in {tmp_path}" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {"wrist_scaled", "mcp_scaled", "mcp"} and metrics["mcp"]["mpjpe"] > 0
    pred, gt = load_npz(tmp_path / "predictions.npz", "pred"), load_npz(tmp_path / "groundtruth_mano.npz", "gt")
    assert len(pred["ids"]) == 16 and pred["verts"].shape[2] == 778 and pred["faces"].shape[0] == 2
    # the DIR protocols score the interacting frames with both MANO fits only
    assert 0 < len(gt["ids"]) < 16 and set(gt["ids"]) <= set(pred["ids"])
    assert (np.load(tmp_path / "groundtruth_mano.npz")["hand_type"] == 2).all()


def test_eval_run_rejects_a_mismatched_checkpoint(quickstart, capsys):
    work, _ = quickstart
    ckpt = work / "runs" / "quickstart" / "checkpoints" / "best.pt"
    code = dirnet(["eval", "run", "--checkpoint", str(ckpt), "--split", "val", "model.dir.width=16"])
    assert code == 2
    err = capsys.readouterr().err
    assert str(ckpt) in err and "shape mismatch" in err


def test_trains_and_scores_a_2d_keypoint_model(tmp_path):
    """SimpleBaseline2D: hand2d pipeline (set from model.name), interhand2d protocol, best by PCK."""
    from dir_net.config import load_config
    from dir_net.data.synth import generate
    from dir_net.engine.evaluation import evaluate_checkpoint
    from dir_net.engine.trainer import Trainer

    generate(tmp_path / "data", frames=4, seed=1, splits=["train", "val"], cameras=2)
    cfg = load_config(REPO / "configs" / "simplebaseline2d_r50_interhand2d.yaml", [
        f"data.root={tmp_path / 'data'}", f"experiment.output_dir={tmp_path / 'runs'}", "data.pipeline=dir",
        "train.epochs=1", "train.batch_size=4", "train.num_workers=0", "data.image_size=64",
        "model.backbone.width=8", "train.progress_bar=false"])
    result = Trainer(cfg).fit()
    assert (result.run_dir / "config.yaml").read_text().count("pipeline: hand2d") == 1
    metrics = result.val_history[-1]["metrics"]["interhand2d"]
    assert set(metrics) == {"pck", "auc", "epe"} and 0 <= metrics["pck"] <= 1
    assert result.best_checkpoint is not None
    evaluation = evaluate_checkpoint(cfg, result.best_checkpoint, "val", tmp_path / "eval")
    assert evaluation.results["interhand2d"] == pytest.approx(metrics)
    rows = np.load(tmp_path / "eval" / "groundtruth_hand2d.npz")
    assert {"ids", "hands", "keypoints", "keypoint_valid", "bbox_size"} <= set(rows.files)
    assert "| pck | - |" in (tmp_path / "eval" / "metrics.md").read_text()
    assert not (tmp_path / "eval" / "pck.png").exists()  # the 3D PCK curve does not apply


def test_bone_length_ratio_measures_the_scale_of_the_predicted_hands():
    from dir_net.engine.quickstart import bone_length_ratio

    rng = np.random.default_rng(0)
    gt = rng.normal(size=(5, 2, 21, 3)) * 30.0
    assert bone_length_ratio(gt, gt) == pytest.approx(1.0)
    assert bone_length_ratio(0.8 * gt + 5.0, gt) == pytest.approx(0.8)  # shrunk about any point
    collapsed = np.repeat(gt[:, :, :1], 21, axis=2)  # every joint at the wrist
    assert bone_length_ratio(collapsed, gt) == pytest.approx(0.0)


def test_a_signal_during_training_stops_the_quickstart_before_evaluation(tmp_path, monkeypatch, capsys):
    """Ctrl-C in training: the trainer saved a checkpoint; no evaluation starts, exit 128 + SIGINT."""
    import signal

    from dir_net.engine import quickstart as qs
    from dir_net.engine.trainer import TrainResult

    class StoppedTrainer:
        def __init__(self, cfg, resume):
            pass

        def fit(self):
            return TrainResult(tmp_path / "run", 3, 0, tmp_path / "run" / "step_3.pt", None, stopped_by="SIGINT")

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluation must not start after a signal")

    monkeypatch.setattr(qs, "ensure_synthetic_data", lambda *a, **k: None)
    monkeypatch.setattr(qs, "prepare_splits", lambda *a, **k: None)
    monkeypatch.setattr(qs, "Trainer", StoppedTrainer)
    monkeypatch.setattr(qs, "evaluate_checkpoint", no_evaluation)
    code = dirnet(["quickstart", "--config", str(REPO / "configs" / "quickstart.yaml"),
                   f"data.root={tmp_path / 'data'}", f"experiment.output_dir={tmp_path / 'runs'}"])
    assert code == 128 + signal.SIGINT
    assert "stopped by SIGINT" in capsys.readouterr().err

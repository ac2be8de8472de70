"""`evaluate_checkpoint` (dirnet eval run): interchange files, metrics, table, CSV row, PCK plot;
the files round-trip through the stand-alone toolkit (`dirnet eval score`); mesh metrics skip
hands without a ground-truth mesh."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from dir_net.cli import main as dirnet
from dir_net.engine.evaluation import default_out_dir, evaluate_checkpoint
from dir_net.engine.inference import ShardSampler, make_evaluator
from dir_net.engine.trainer import Trainer
from eval import load_npz, score
from test_engine_toys import toy_config, toy_dataset_factory, toy_model_factory


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    cfg = toy_config(root, "train.epochs=1", "train.val_every=0", "evaluation.protocols=[mcp_scaled, moon]")
    result = Trainer(cfg, model_factory=toy_model_factory, dataset_factory=toy_dataset_factory).fit()
    out = default_out_dir(result.last_checkpoint, "test")
    evaluation = evaluate_checkpoint(cfg, result.last_checkpoint, "test", out,
                                     model_factory=toy_model_factory, dataset_factory=toy_dataset_factory)
    return result, evaluation


def test_writes_every_output_into_the_run_directory(evaluated):
    result, evaluation = evaluated
    assert evaluation.out_dir == result.run_dir / "eval" / "test"
    assert sorted(p.name for p in evaluation.out_dir.iterdir()) == [
        "groundtruth.npz", "metrics.csv", "metrics.json", "metrics.md", "pck.png", "predictions.npz"]
    assert evaluation.files["pck.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_interchange_files_are_millimetres_and_rescore_identically(evaluated):
    _, evaluation = evaluated
    pred = load_npz(evaluation.files["predictions.npz"], "pred")
    gt = load_npz(evaluation.files["groundtruth.npz"], "gt")
    assert evaluation.num_samples == len(gt["ids"]) == 10
    assert np.array_equal(np.sort(pred["ids"]), np.arange(1000, 1010))
    wrist_to_tip = np.linalg.norm(gt["joints"][:, 0, 4] - gt["joints"][:, 0, 0], axis=-1)
    assert 90 < wrist_to_tip.mean() < 130  # toy thumb: 11.5 cm from the wrist, in millimetres
    saved = json.loads(evaluation.files["metrics.json"].read_text())
    assert set(saved) == {"mcp_scaled", "moon"}
    for protocol in saved:
        assert saved[protocol] == pytest.approx(score(pred, gt, protocol))


def test_markdown_table_and_csv_row(evaluated):
    result, evaluation = evaluated
    table = evaluation.files["metrics.md"].read_text()
    assert "| metric | unit | mcp_scaled | moon |" in table
    mpjpe = evaluation.results["mcp_scaled"]["mpjpe"]
    assert f"| mpjpe | mm | {mpjpe:.2f} |" in table
    assert "split test, 10 samples" in table and "(step 6)" in table
    assert table.count("| auc |") == 1  # each metric once, though 2D keypoints also have an auc
    header = evaluation.files["metrics.csv"].read_text().splitlines()[0].split(",")
    assert len(header) == len(set(header))
    rows = list(csv.DictReader(evaluation.files["metrics.csv"].read_text().splitlines()))
    assert len(rows) == 1
    assert rows[0]["run"] == "toy" and rows[0]["step"] == "6" and rows[0]["samples"] == "10"
    assert float(rows[0]["mcp_scaled/mpjpe"]) == pytest.approx(mpjpe, rel=1e-5)
    assert float(rows[0]["moon/mpjpe_interacting"]) == pytest.approx(
        evaluation.results["moon"]["mpjpe_interacting"], rel=1e-5)


def test_dirnet_eval_score_delegates_to_the_toolkit(evaluated, tmp_path, capsys):
    _, evaluation = evaluated
    out_json = tmp_path / "scored.json"
    code = dirnet(["eval", "score", "--pred", str(evaluation.files["predictions.npz"]),
                   "--gt", str(evaluation.files["groundtruth.npz"]), "--protocol", "moon", "--json", str(out_json)])
    assert code == 0
    assert json.loads(out_json.read_text())["moon"] == pytest.approx(evaluation.results["moon"])
    assert "mpjpe" in capsys.readouterr().out
    assert dirnet(["eval", "score", "--pred", str(tmp_path / "missing.npz"),
                   "--gt", str(evaluation.files["groundtruth.npz"])]) == 2


def test_shard_sampler_pads_evenly_and_marks_real_rows():
    shards = [ShardSampler(5, rank, 2) for rank in range(2)]
    assert [list(s) for s in shards] == [[0, 2, 4], [1, 3, 3]]
    assert [s.num_real for s in shards] == [3, 2]


def test_mesh_metrics_skip_hands_without_a_ground_truth_mesh():
    from eval import evaluate
    from test_engine_toys import template_hand

    rng = np.random.default_rng(0)
    joints = np.stack([template_hand() * 1000 + [0, 0, 600], template_hand() * 1000 + [120, 0, 600]])  # (2, 21, 3) mm
    gt_joints = np.stack([joints, joints + 2.0])  # (2 rows, 2 hands, 21, 3)
    verts = gt_joints[:, :, rng.integers(0, 21, 50)] + rng.normal(0, 5, (2, 2, 50, 3))
    pred = {"ids": np.array([1, 2]), "joints": gt_joints + rng.normal(0, 3, gt_joints.shape),
            "verts": verts + rng.normal(0, 4, verts.shape)}
    gt = {"ids": np.array([1, 2]), "joints": gt_joints, "hand_type": np.array([2, 2]),
          "joint_valid": np.ones((2, 2, 21), bool), "verts": verts.copy(),
          "verts_valid": np.array([[True, True], [True, False]])}
    gt["verts"][1, 1] = 0.0  # no MANO fit: the dataset leaves zeros
    evaluator = make_evaluator(["mcp"])
    evaluator.update(pred, gt)
    results = evaluator.compute()["mcp"]
    garbage = {**gt, "verts": gt["verts"].copy()}
    garbage["verts"][1, 1] = 1e4  # whatever stands in the unfitted hand does not count
    assert results["mpvpe"] == pytest.approx(score(pred, garbage, "mcp")["mpvpe"])
    all_rows_joints = {k: v for k, v in gt.items() if k not in ("verts", "verts_valid")}
    assert results["mpjpe"] == pytest.approx(score(pred, all_rows_joints, "mcp")["mpjpe"])
    naive = evaluate(pred, {k: v for k, v in gt.items() if k != "verts_valid"}, ["mcp"]).compute()["mcp"]
    assert naive["mpvpe"] > 5 * results["mpvpe"]  # zeros would have dominated the mean

"""`evaluate_checkpoint` (dirnet eval run): interchange files, metrics, table, CSV row, PCK plot;
the files round-trip through the stand-alone toolkit (`dirnet eval score`); each protocol is
scored on its own ground truth (MANO-regressed joints of interacting frames with both fits for
the DIR protocols, annotated joints with joint_valid on every frame for moon); H / M / H+M
results of 2D keypoint models; mesh metrics skip hands without a ground-truth mesh."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from dir_net.cli import build_parser
from dir_net.cli import main as dirnet
from dir_net.config import load_config
from dir_net.engine import groundtruth
from dir_net.engine.evaluation import default_out_dir, evaluate_checkpoint
from dir_net.engine.inference import ShardSampler, make_evaluator
from dir_net.engine.trainer import Trainer
from dir_net.errors import ConfigError
from eval import load_npz, score
from test_engine_toys import ToyHands, toy_config, toy_dataset_factory, toy_model_factory


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
        "groundtruth_annot.npz", "groundtruth_mano.npz", "metrics.csv", "metrics.json", "metrics.md", "pck.png",
        "predictions.npz"]
    assert evaluation.files["pck.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_interchange_files_are_millimetres_and_rescore_identically(evaluated):
    _, evaluation = evaluated
    pred = load_npz(evaluation.files["predictions.npz"], "pred")
    gts = {family: load_npz(evaluation.files[f"groundtruth_{family}.npz"], "gt") for family in ("mano", "annot")}
    assert evaluation.num_samples == len(gts["mano"]["ids"]) == len(gts["annot"]["ids"]) == 10
    assert np.array_equal(np.sort(pred["ids"]), np.arange(1000, 1010))
    wrist_to_tip = np.linalg.norm(gts["mano"]["joints"][:, 0, 4] - gts["mano"]["joints"][:, 0, 0], axis=-1)
    assert 90 < wrist_to_tip.mean() < 130  # toy thumb: 11.5 cm from the wrist, in millimetres
    saved = json.loads(evaluation.files["metrics.json"].read_text())
    assert set(saved) == {"mcp_scaled", "moon"}
    assert saved["mcp_scaled"] == pytest.approx(score(pred, gts["mano"], "mcp_scaled"))
    assert saved["moon"] == pytest.approx(score(pred, gts["annot"], "moon"))


def test_markdown_table_and_csv_row(evaluated):
    result, evaluation = evaluated
    table = evaluation.files["metrics.md"].read_text()
    assert "| metric | unit | mcp_scaled | moon |" in table
    assert "| ground truth | - | mano | annot |" in table and "| rows | - | 10 | 10 |" in table
    assert f"- ground truth `mano`: {groundtruth.DESCRIPTIONS['mano']}" in table
    mpjpe = evaluation.results["mcp_scaled"]["mpjpe"]
    assert f"| mpjpe | mm | {mpjpe:.2f} |" in table
    assert "split test, 10 samples" in table and "(step 6)" in table
    assert table.count("| auc |") == 1  # each metric once, though 2D keypoints also have an auc
    header = evaluation.files["metrics.csv"].read_text().splitlines()[0].split(",")
    assert len(header) == len(set(header))
    rows = list(csv.DictReader(evaluation.files["metrics.csv"].read_text().splitlines()))
    assert len(rows) == 1
    assert rows[0]["run"] == "toy" and rows[0]["step"] == "6" and rows[0]["samples"] == "10"
    assert rows[0]["moon/ground_truth"] == "annot" and rows[0]["mcp_scaled/rows"] == "10"
    assert float(rows[0]["mcp_scaled/mpjpe"]) == pytest.approx(mpjpe, rel=1e-5)
    assert float(rows[0]["moon/mpjpe_interacting"]) == pytest.approx(
        evaluation.results["moon"]["mpjpe_interacting"], rel=1e-5)


def test_dirnet_eval_score_delegates_to_the_toolkit(evaluated, tmp_path, capsys):
    _, evaluation = evaluated
    out_json = tmp_path / "scored.json"
    code = dirnet(["eval", "score", "--pred", str(evaluation.files["predictions.npz"]),
                   "--gt", str(evaluation.files["groundtruth_annot.npz"]), "--protocol", "moon",
                   "--json", str(out_json)])
    assert code == 0
    assert json.loads(out_json.read_text())["moon"] == pytest.approx(evaluation.results["moon"])
    assert "mpjpe" in capsys.readouterr().out
    assert dirnet(["eval", "score", "--pred", str(tmp_path / "missing.npz"),
                   "--gt", str(evaluation.files["groundtruth_annot.npz"])]) == 2


class MixedHands(ToyHands):
    """ToyHands with the dir pipeline's mix: every 5 samples two interacting frames with both MANO
    fits, a right-hand and a left-hand frame, and an interacting frame whose left hand has no fit.
    The annotated joints differ from the MANO-regressed ones (index tip 6 mm off) and some are
    not annotated."""

    HAND_TYPES = (2, 2, 0, 1, 2)
    MANO_VALID = ((1, 1), (1, 1), (1, 0), (0, 1), (1, 0))

    def __getitem__(self, index: int) -> dict:
        sample = super().__getitem__(index)
        kind = index % 5
        present = torch.tensor([self.HAND_TYPES[kind] in (0, 2), self.HAND_TYPES[kind] in (1, 2)]).float()
        annot = sample["joints_3d"].clone()
        annot[:, 8] += torch.tensor([0.006, 0.0, 0.0])
        annot_valid = present[:, None].repeat(1, 21)
        annot_valid[0, 12:16] = 0.0  # the right middle finger is not annotated
        annot[0, 12:16] = 0.0
        sample.update(hand_type=torch.tensor(self.HAND_TYPES[kind]),
                      mano_valid=torch.tensor(self.MANO_VALID[kind]).float(), joints_3d_annot=annot,
                      joint_valid_annot=annot_valid, joint_valid=present[:, None].repeat(1, 21))
        return sample


def test_each_protocol_is_scored_on_its_own_ground_truth(tmp_path):
    cfg = toy_config(tmp_path, "train.epochs=1", "train.val_every=0", "evaluation.protocols=[mcp, moon]")
    result = Trainer(cfg, model_factory=toy_model_factory, dataset_factory=toy_dataset_factory).fit()
    data = MixedHands(10, train=False, seed=1)
    evaluation = evaluate_checkpoint(cfg, result.last_checkpoint, "test", tmp_path / "out",
                                     model_factory=toy_model_factory, dataset_factory=lambda *_: data)
    pred = load_npz(evaluation.files["predictions.npz"], "pred")
    mano = load_npz(evaluation.files["groundtruth_mano.npz"], "gt")
    annot = load_npz(evaluation.files["groundtruth_annot.npz"], "gt")
    # mano: interacting frames with both fits only (samples 0, 1, 5, 6), MANO joints, no masking
    assert mano["ids"].tolist() == [1000, 1001, 1005, 1006] and "joint_valid" not in mano
    np.testing.assert_allclose(mano["joints"][2], data[5]["joints_3d"].numpy() * 1000, atol=1e-3)
    # annot: every frame, annotated joints with joint_valid
    assert annot["ids"].tolist() == list(range(1000, 1010)) and len(pred["ids"]) == 10
    np.testing.assert_allclose(annot["joints"][2], data[2]["joints_3d_annot"].numpy() * 1000, atol=1e-3)
    assert annot["joint_valid"][0, 0, 12:16].sum() == 0 and annot["joint_valid"][2, 1].sum() == 0
    assert evaluation.results["mcp"] == pytest.approx(score(pred, mano, "mcp"))
    assert evaluation.results["moon"] == pytest.approx(score(pred, annot, "moon"))
    assert "mpjpe_single" in evaluation.results["moon"]
    assert evaluation.ground_truth == {"mcp": ("mano", 4), "moon": ("annot", 10)}
    table = evaluation.files["metrics.md"].read_text()
    assert "| ground truth | - | mano | annot |" in table and "| rows | - | 4 | 10 |" in table
    assert "split test, 10 samples" in table


def test_ground_truth_the_pipeline_cannot_give_is_a_config_error():
    internet = load_config(None, ["model.name=internet", "data.pipeline=internet", "evaluation.protocols=[mcp]"])
    with pytest.raises(ConfigError, match=r"evaluation.protocols.*\['mcp'\].*only the dir pipeline"):
        groundtruth.check_ground_truth(internet, ["mcp"])
    groundtruth.check_ground_truth(internet, ["moon"])  # the annotated joints: fine
    no_mano = load_config(None, ["data.dir.joints_from_mano=false"])
    with pytest.raises(ConfigError, match="data.dir.joints_from_mano"):
        groundtruth.check_ground_truth(no_mano, ["wrist_scaled", "moon"])
    with pytest.raises(ConfigError, match="hand2d pipeline"):
        groundtruth.check_ground_truth(load_config(None, ["data.pipeline=hand2d"]), ["moon"])


def test_moon_evaluates_every_frame_the_dir_protocols_their_subset():
    dir_subset = load_config(None, ["data.hand_types=interacting", "data.require_mano=true"])
    assert groundtruth.select_frames(dir_subset, ["mcp_scaled"]) is dir_subset
    relaxed = groundtruth.select_frames(dir_subset, ["mcp_scaled", "moon"])
    assert (relaxed.data.hand_types, relaxed.data.require_mano) == ("all", False)
    assert dir_subset.data.hand_types == "interacting"  # the caller's config is left alone


def test_bare_dirnet_eval_is_eval_run():
    parser = build_parser()
    args = parser.parse_args(["eval", "--config", "c.yaml", "--checkpoint", "k.pt", "--split", "test", "a.b=1"])
    assert (args.eval_action, args.config, args.checkpoint, args.split, args.overrides) == (
        "run", "c.yaml", "k.pt", "test", ["a.b=1"])
    assert args.func.__name__ == "_run"
    args = parser.parse_args(["eval", "run", "--checkpoint", "k.pt"])
    assert (args.eval_action, args.checkpoint, args.split) == ("run", "k.pt", None)
    args = parser.parse_args(["eval", "score", "--pred", "p.npz", "--gt", "g.npz"])
    assert args.eval_cli_action == "score" and args.args == ["--pred", "p.npz", "--gt", "g.npz"]


def test_2d_keypoint_eval_reports_human_machine_subsets(tmp_path, capsys):
    """`dirnet eval` (no `run`) of a SimpleBaseline2D checkpoint on a synthetic dataset with
    aid_{human,machine}_annot_val.txt lists: H, M and H+M results and their row counts."""
    from dir_net.data.synth import generate
    from dir_net.models import build_model
    from eval.keypoints2d import evaluate_keypoints2d, load_keypoints_npz

    generate(tmp_path / "data", frames=2, seed=3, splits=["val"], cameras=2)
    ann = tmp_path / "data" / "annotations" / "val"
    ann_ids = sorted(a["id"] for a in json.loads((ann / "InterHand2.6M_val_data.json").read_text())["annotations"])
    human, machine = ann_ids[: len(ann_ids) // 2], ann_ids[len(ann_ids) // 2:]
    (ann / "aid_human_annot_val.txt").write_text("".join(f"{i}\n" for i in human))
    (ann / "aid_machine_annot_val.txt").write_text("# machine\n" + "".join(f"{i}\n" for i in machine))
    cfg = load_config(None, ["model.name=simple_baseline2d", "data.pipeline=hand2d", f"data.root={tmp_path / 'data'}",
                             "data.image_size=64", "model.backbone.width=8", "train.device=cpu",
                             "train.num_workers=0", "evaluation.batch_size=4"])
    torch.manual_seed(0)
    ckpt = tmp_path / "sb2d.pt"
    torch.save({"model": build_model(cfg).state_dict(), "config": cfg.to_dict(), "step": 0}, ckpt)
    out = tmp_path / "out"
    assert dirnet(["eval", "--checkpoint", str(ckpt), "--split", "val", "--out", str(out)]) == 0
    assert f"results in {out}" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["interhand2d", "interhand2d_h", "interhand2d_m", "interhand2d_hm"]
    pred = load_keypoints_npz(out / "predictions.npz", "pred")
    gt = load_keypoints_npz(out / "groundtruth_hand2d.npz", "gt")
    expected = evaluate_keypoints2d(pred, gt, human_ids=np.array(human), machine_ids=np.array(machine))
    for name, values in expected.items():
        assert metrics[name] == pytest.approx(values)
    assert metrics["interhand2d_hm"] == pytest.approx(metrics["interhand2d"])  # H + M = every annotation
    table = (out / "metrics.md").read_text()
    hands_h = int(np.isin(gt["ids"], human).sum())
    assert f"| rows | - | {len(gt['ids'])} | {hands_h} | {len(gt['ids']) - hands_h} | {len(gt['ids'])} |" in table


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
    evaluator.update(pred, {"mano": gt})
    results = evaluator.compute()["mcp"]
    garbage = {**gt, "verts": gt["verts"].copy()}
    garbage["verts"][1, 1] = 1e4  # whatever stands in the unfitted hand does not count
    assert results["mpvpe"] == pytest.approx(score(pred, garbage, "mcp")["mpvpe"])
    all_rows_joints = {k: v for k, v in gt.items() if k not in ("verts", "verts_valid")}
    assert results["mpjpe"] == pytest.approx(score(pred, all_rows_joints, "mcp")["mpjpe"])
    naive = evaluate(pred, {k: v for k, v in gt.items() if k != "verts_valid"}, ["mcp"]).compute()["mcp"]
    assert naive["mpvpe"] > 5 * results["mpvpe"]  # zeros would have dominated the mean

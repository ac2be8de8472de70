"""Hand-computed cases for the 2D keypoint protocol `interhand2d` (PCK@0.2, AUC 0-30 px, EPE)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval import InputError, Keypoints2DEvaluator, evaluate_keypoints2d
from eval.cli import main
from eval.io import save_npz


def case():
    """Two hands of annotation 1 (bbox 100 and 50 px) with known errors.

    right (thr 20 px): joint 0 off by 10 px (6, 8), joint 1 off by 25 px; left (thr 10 px): joint 0
    off by 10 px (not < 10), joint 2 off by 1000 px but not annotated. Everything else exact.
    """
    gt_kp = np.random.default_rng(0).uniform(0, 300, size=(2, 21, 2))
    pred_kp = gt_kp.copy()
    pred_kp[0, 0] += [6.0, 8.0]
    pred_kp[0, 1] += [0.0, 25.0]
    pred_kp[1, 0] += [10.0, 0.0]
    pred_kp[1, 2] += [1000.0, 0.0]
    valid = np.ones((2, 21), bool)
    valid[1, 2] = False
    gt = {"ids": np.array([1, 1]), "hands": np.array([0, 1]), "keypoints": gt_kp, "keypoint_valid": valid,
          "bbox_size": np.array([100.0, 50.0])}
    pred = {"ids": np.array([1, 1]), "hands": np.array([0, 1]), "keypoints": pred_kp}
    return pred, gt


def test_hand_computed_pck_auc_epe() -> None:
    pred, gt = case()
    scores = evaluate_keypoints2d(pred, gt)
    assert list(scores) == ["interhand2d"]
    s = scores["interhand2d"]
    # per joint: j0 1/2, j1 1/2, j2 1/1 (left not annotated), 18 others 1 -> mean over 21 joints
    assert s["pck"] == pytest.approx(20 / 21)
    # pooled over the 41 annotated joints: 10 + 25 + 10 px
    assert s["epe"] == pytest.approx(45 / 41)
    # thresholds i * 1.5 px, i = 0..19 (error < t): j0 (10, 10) -> i >= 7: 13/20; j1 (25, 0) -> 0.5
    # for i = 1..16 and 1 for i >= 17: 11/20; every other joint exact -> i >= 1: 19/20
    assert s["auc"] == pytest.approx((13 + 11 + 19 * 19) / (20 * 21))


def test_rows_are_matched_by_id_and_hand() -> None:
    pred, gt = case()
    shuffled = {k: v[::-1] for k, v in pred.items()}
    extra = {k: np.concatenate([v, v[:1]]) for k, v in shuffled.items()}
    extra["ids"][-1] = 99
    assert evaluate_keypoints2d(extra, gt) == evaluate_keypoints2d(pred, gt)
    lost = {k: v[:1] for k, v in pred.items()}
    with pytest.raises(InputError, match="no prediction for 1 of 2 ground-truth hands.*1/left"):
        evaluate_keypoints2d(lost, gt)


def with_machine_row(pred, gt):
    """Adds annotation 2 (right hand, bbox 100): every joint off by 5 px."""
    gt = {k: np.concatenate([v, v[:1]]) for k, v in gt.items()}
    pred = {k: np.concatenate([v, v[:1]]) for k, v in pred.items()}
    gt["ids"][-1] = pred["ids"][-1] = 2
    gt["keypoint_valid"][-1] = True
    pred["keypoints"][-1] = gt["keypoints"][-1] + [3.0, 4.0]
    return pred, gt


def test_human_machine_subsets() -> None:
    pred, gt = with_machine_row(*case())
    scores = evaluate_keypoints2d(pred, gt, human_ids=np.array([1, 7]), machine_ids=np.array([2]))
    assert set(scores) == {"interhand2d", "interhand2d_h", "interhand2d_m", "interhand2d_hm"}
    assert scores["interhand2d_h"] == evaluate_keypoints2d(*case())["interhand2d"]
    m = scores["interhand2d_m"]
    assert m["pck"] == 1.0 and m["epe"] == pytest.approx(5.0)
    assert m["auc"] == pytest.approx(16 / 20)  # 5 < i * 1.5 for i >= 4
    assert scores["interhand2d_hm"] == scores["interhand2d"]
    assert scores["interhand2d"]["epe"] == pytest.approx((45 + 21 * 5) / 62)
    only_h = evaluate_keypoints2d(pred, gt, human_ids=np.array([1]))
    assert set(only_h) == {"interhand2d", "interhand2d_h"}


def test_streaming_equals_one_shot() -> None:
    pred, gt = with_machine_row(*case())
    evaluator = Keypoints2DEvaluator()
    for rows in (slice(0, 1), slice(1, 3)):
        evaluator.update({k: v[rows] for k, v in pred.items()}, {k: v[rows] for k, v in gt.items()})
    assert evaluator.compute() == evaluate_keypoints2d(pred, gt)


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda g: g.pop("bbox_size"), "missing field.*bbox_size"),
        (lambda g: g.update(hands=np.array([0, 0])), r"\(ids, hands\) pairs repeat"),
        (lambda g: g.update(hands=np.array([0, 2])), "'hands' must be 0"),
        (lambda g: g.update(bbox_size=np.array([100.0, 0.0])), "'bbox_size' must be positive"),
        (lambda g: g["keypoints"].__setitem__((0, 3, 1), np.nan), "'keypoints' has NaN/inf in 1 rows"),
        (lambda g: g.update(keypoints=g["keypoints"][:, :20]), r"'keypoints' has shape \(2, 20, 2\)"),
        (lambda g: g.update(keypoint_valid=np.full((2, 21), 0.5)), "keypoint_valid' must hold booleans"),
    ],
)
def test_bad_ground_truth_is_rejected(change, pattern: str) -> None:
    pred, gt = case()
    change(gt)
    with pytest.raises(InputError, match=pattern):
        evaluate_keypoints2d(pred, gt, gt_source="gt.npz")


def test_cli_score2d(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pred, gt = with_machine_row(*case())
    save_npz(tmp_path / "pred.npz", pred)
    save_npz(tmp_path / "gt.npz", gt)
    (tmp_path / "human.txt").write_text("# human\n1\n")
    (tmp_path / "machine.txt").write_text("2\n")
    out = tmp_path / "scores.json"
    code = main(["score2d", "--pred", str(tmp_path / "pred.npz"), "--gt", str(tmp_path / "gt.npz"),
                 "--human-ids", str(tmp_path / "human.txt"), "--machine-ids", str(tmp_path / "machine.txt"),
                 "--json", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["metric", "unit", "interhand2d", "interhand2d_h", "interhand2d_m",
                                            "interhand2d_hm"]
    assert "epe" in table and "px" in table
    written = json.loads(out.read_text())
    assert written["interhand2d_m"]["epe"] == pytest.approx(5.0)

    (tmp_path / "bad.txt").write_text("x12\n")
    code = main(["score2d", "--pred", str(tmp_path / "pred.npz"), "--gt", str(tmp_path / "gt.npz"),
                 "--human-ids", str(tmp_path / "bad.txt")])
    assert code == 2
    assert "bad.txt:1: expected an annotation id" in capsys.readouterr().err


# -- reliability: zero rows, rows mmpose would drop ----------------------------------------------


def _write_case(tmp_path: Path, pred: dict, gt: dict) -> tuple[str, str]:
    save_npz(tmp_path / "pred.npz", pred)
    save_npz(tmp_path / "gt.npz", gt)
    return str(tmp_path / "pred.npz"), str(tmp_path / "gt.npz")


def test_score2d_zero_rows_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pred, gt = case()
    empty = {k: v[:0] for k, v in gt.items()}
    for files in ((pred, empty), ({k: v[:0] for k, v in pred.items()}, gt)):
        pred_path, gt_path = _write_case(tmp_path, *files)
        assert main(["score2d", "--pred", pred_path, "--gt", gt_path]) == 2
        err = capsys.readouterr().err.strip()
        named = gt_path if files[1] is empty else pred_path
        assert err.startswith("eval: error:") and "\n" not in err and named in err and "no rows" in err
    with pytest.raises(InputError, match="batch.*no rows"):
        Keypoints2DEvaluator().update({k: v[:0] for k, v in pred.items()}, empty, "pred batch", "gt batch")


def _mmpose_case():
    """Right hand: root invalid; left hand: 11 valid joints; annotation 2: a full hand."""
    pred, gt = case()
    gt["keypoint_valid"][0, 0] = False  # mmpose drops a hand whose root is invalid
    gt["keypoint_valid"][1, 11:] = False  # ... or that has <= 11 valid joints (here 10)
    more = {k: np.concatenate([v, v[:1]]) for k, v in gt.items()}
    more["ids"][-1], more["keypoint_valid"][-1] = 2, True
    pred = {k: np.concatenate([v, v[:1]]) for k, v in pred.items()}
    pred["ids"][-1] = 2
    return pred, more


def test_rows_mmpose_would_drop_are_warned_and_dropped_on_request(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    pred, gt = _mmpose_case()
    pred_path, gt_path = _write_case(tmp_path, pred, gt)
    out = tmp_path / "scores.json"
    assert main(["score2d", "--pred", pred_path, "--gt", gt_path, "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert "eval: warning:" in err and "2 of 3" in err and "--mmpose-rules" in err
    kept = json.loads(out.read_text())["interhand2d"]
    assert main(["score2d", "--pred", pred_path, "--gt", gt_path, "--json", str(out), "--mmpose-rules"]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "dropped 2 of 3" in err
    mmpose = json.loads(out.read_text())["interhand2d"]
    only = {k: v[2:] for k, v in gt.items()}
    assert mmpose == pytest.approx(evaluate_keypoints2d({k: v[2:] for k, v in pred.items()}, only)["interhand2d"])
    assert mmpose != pytest.approx(kept)

"""`python -m eval` commands and the input checks behind them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval import load_npz, save_npz
from eval.cli import main
from eval.protocols import PROTOCOLS

REPO = Path(__file__).resolve().parents[1]


def write_pair(tmp_path: Path, num_rows: int = 4, **changes) -> tuple[Path, Path]:
    """Ground truth (line hands, mm) and a prediction 2 mm off on every right-hand tip."""
    joints = np.zeros((num_rows, 2, 21, 3))
    joints[..., 0] = 10.0 * np.arange(21)
    joints[:, 1, :, 1] = 50.0
    joints[..., 2] = 500.0
    gt = {"ids": np.arange(100, 100 + num_rows), "joints": joints,
          "hand_type": np.full(num_rows, 2), "joint_valid": np.ones((num_rows, 2, 21), bool)}
    pred = {"ids": gt["ids"][::-1].copy(), "joints": joints[::-1].copy(),
            "hand_prob": np.full((num_rows, 2), 0.9)}
    pred["joints"][:, 0, [4, 8, 12, 16, 20], 2] += 2.0
    for key, value in changes.items():
        role, field = key.split("__")
        (pred if role == "pred" else gt)[field] = value(pred if role == "pred" else gt)
    pred_path, gt_path = tmp_path / "pred.npz", tmp_path / "gt.npz"
    save_npz(pred_path, pred)
    save_npz(gt_path, gt)
    return pred_path, gt_path


def test_score_all_writes_json_with_documented_keys(tmp_path, capsys):
    pred, gt = write_pair(tmp_path)
    out = tmp_path / "res" / "scores.json"
    assert main(["score", "--pred", str(pred), "--gt", str(gt), "--protocol", "all",
                 "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "moon" in table and "mcp_scaled" in table and "mpjpe" in table
    results = json.loads(out.read_text())
    assert set(results) == set(PROTOCOLS)  # --protocol all: every protocol side by side
    assert set(results["moon"]) == {"mpjpe", "mpjpe_all", "mpjpe_interacting", "mrrpe", "auc",
                                    "handedness_acc", "ap_h"}
    assert set(results["mcp"]) == {"mpjpe", "mrrpe", "auc", "handedness_acc", "ap_h"}
    # 5 of 21 right-hand joints off by 2 mm, left exact: per hand 10/21, then the mean of hands
    assert results["mcp"]["mpjpe"] == pytest.approx(10.0 / 21 / 2)
    assert results["moon"]["mpjpe"] == pytest.approx(10.0 / 42)
    assert results["moon"]["handedness_acc"] == 1.0


def test_single_protocol(tmp_path, capsys):
    pred, gt = write_pair(tmp_path)
    out = tmp_path / "s.json"
    assert main(["score", "--pred", str(pred), "--gt", str(gt), "--protocol", "wrist_scaled",
                 "--json", str(out)]) == 0
    assert list(json.loads(out.read_text())) == ["wrist_scaled"]


def run_bad(args, capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("eval: error: ") and "\n" not in err
    return err


def test_metres_are_rejected(tmp_path, capsys):
    pred, gt = write_pair(tmp_path, pred__joints=lambda d: d["joints"] / 1000.0)
    err = run_bad(["score", "--pred", str(pred), "--gt", str(gt)], capsys)
    assert "looks like metres, multiply by 1000" in err and "pred.npz" in err


def test_missing_ids_listed_and_extra_ids_noted(tmp_path, capsys):
    pred, gt = write_pair(tmp_path, pred__ids=lambda d: d["ids"] + 2)  # 100, 101 missing
    err = run_bad(["score", "--pred", str(pred), "--gt", str(gt)], capsys)
    assert "no prediction for 2 of 4" in err and "100, 101" in err
    pred, gt = write_pair(tmp_path)
    full = load_npz(pred, "pred")
    save_npz(pred, {**full, "ids": np.r_[full["ids"], 7],
                    "joints": np.concatenate([full["joints"], full["joints"][:1]]),
                    "hand_prob": np.concatenate([full["hand_prob"], full["hand_prob"][:1]])})
    assert main(["score", "--pred", str(pred), "--gt", str(gt), "--protocol", "mcp"]) == 0
    assert "ignored 1 predictions" in capsys.readouterr().err


def test_drop_invalid_scores_only_the_predicted_ids(tmp_path, capsys):
    pred, gt = write_pair(tmp_path, pred__ids=lambda d: d["ids"] + 2)  # gt 100, 101 have no prediction
    out = tmp_path / "kept.json"
    assert main(["score", "--pred", str(pred), "--gt", str(gt), "--drop-invalid", "--protocol", "mcp",
                 "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert "dropped 2 of 4 ground-truth ids" in err and "no prediction (100, 101)" in err
    assert "ignored 2 predictions" in err  # 104, 105 are not in the ground truth
    both = {role: load_npz(path, role) for role, path in (("pred", pred), ("gt", gt))}
    kept = {role: {k: v[np.isin(a["ids"], [102, 103])] for k, v in a.items()} for role, a in both.items()}
    from eval import score

    assert json.loads(out.read_text())["mcp"] == pytest.approx(score(kept["pred"], kept["gt"], "mcp"))
    pred, gt = write_pair(tmp_path, pred__ids=lambda d: d["ids"] + 10)  # no id in common
    err = run_bad(["score", "--pred", str(pred), "--gt", str(gt), "--drop-invalid"], capsys)
    assert "no ground-truth id has a prediction" in err


def test_bad_shape_exits_2(tmp_path, capsys):
    pred, gt = write_pair(tmp_path, pred__joints=lambda d: d["joints"][:, :, :20])
    err = run_bad(["score", "--pred", str(pred), "--gt", str(gt)], capsys)
    assert "'joints' has shape (4, 2, 20, 3)" in err


def test_nan_rows_error_or_dropped(tmp_path, capsys):
    def with_nan(d):
        joints = d["joints"].copy()
        joints[0, 1, 3, 0] = np.nan  # pred rows are reversed: this is id 103
        return joints

    pred, gt = write_pair(tmp_path, pred__joints=with_nan)
    err = run_bad(["score", "--pred", str(pred), "--gt", str(gt)], capsys)
    assert "pred.npz" in err and "'joints'" in err and "103" in err and "--drop-invalid" in err
    out = tmp_path / "dropped.json"
    assert main(["score", "--pred", str(pred), "--gt", str(gt), "--drop-invalid",
                 "--protocol", "moon", "--json", str(out)]) == 0
    assert "dropped 1 ids with NaN/inf values (103)" in capsys.readouterr().err
    assert json.loads(out.read_text())["moon"]["mpjpe"] == pytest.approx(10.0 / 42)


def test_missing_file_and_unknown_protocol(tmp_path, capsys):
    pred, _ = write_pair(tmp_path)
    err = run_bad(["score", "--pred", str(pred), "--gt", str(tmp_path / "nope.npz")], capsys)
    assert "nope.npz: no such file" in err
    with pytest.raises(SystemExit) as exc:
        main(["score", "--pred", str(pred), "--gt", str(pred), "--protocol", "bogus"])
    assert exc.value.code == 2


def test_plot_pck_writes_png(tmp_path, capsys):
    pred, gt = write_pair(tmp_path)
    figure = tmp_path / "pck.png"
    assert main(["plot-pck", "--gt", str(gt), "--pred", str(pred), "--pred", str(pred),
                 "--label", "a", "--label", "b", "--out", str(figure)]) == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    err = run_bad(["plot-pck", "--gt", str(gt), "--pred", str(pred), "--label", "a",
                   "--label", "b", "--out", str(figure)], capsys)
    assert "2 --label for 1 --pred" in err


def test_module_entry_point_and_no_dir_net_import(tmp_path):
    pred, gt = write_pair(tmp_path)
    code = ("import sys, runpy; sys.argv = ['eval', 'score', '--pred', sys.argv[1], '--gt', "
            "sys.argv[2], '--protocol', 'moon']\n"
            "try:\n    runpy.run_module('eval', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "bad = [m for m in sys.modules if m.split('.')[0] == 'dir_net']\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code, str(pred), str(gt)], cwd=REPO,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert "mpjpe" in done.stdout


# -- reliability: zero rows, degenerate ground truth, file modes ----------------------------------


def test_zero_row_files_are_one_line_errors(tmp_path, capsys):
    pred, gt = write_pair(tmp_path)
    empty = tmp_path / "empty.npz"
    save_npz(empty, {"ids": np.zeros(0, np.int64), "joints": np.zeros((0, 2, 21, 3))})
    for args, named in ((["--pred", str(empty), "--gt", str(gt)], empty),
                        (["--pred", str(pred), "--gt", str(empty)], empty)):
        err = run_bad(["score", *args], capsys)
        assert str(named) in err and "no rows" in err
        err = run_bad(["score", *args, "--drop-invalid"], capsys)
        assert str(named) in err and "no rows" in err


def test_zero_length_reference_bone_in_the_ground_truth_is_warned(tmp_path, capsys):
    def collapse(d):
        joints = d["joints"].copy()
        joints[1, 0, 9] = joints[1, 0, 0]  # id 101, right hand: middle MCP on the wrist
        return joints

    pred, gt = write_pair(tmp_path, gt__joints=collapse)
    assert main(["score", "--pred", str(pred), "--gt", str(gt), "--protocol", "mcp_scaled"]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "zero-length" in line]
    assert len(warning) == 1 and "mcp_scaled" in warning[0] and "1 ground-truth hand" in warning[0]
    assert "101" in warning[0] and warning[0].startswith("eval: warning:")
    assert main(["score", "--pred", str(pred), "--gt", str(gt), "--protocol", "mcp"]) == 0
    assert "zero-length" not in capsys.readouterr().err  # unscaled protocols are unaffected


def test_outputs_get_the_usual_file_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        pred, gt = write_pair(tmp_path)
        out, figure = tmp_path / "scores.json", tmp_path / "pck.png"
        assert main(["score", "--pred", str(pred), "--gt", str(gt), "--protocol", "mcp",
                     "--json", str(out)]) == 0
        assert main(["plot-pck", "--gt", str(gt), "--pred", str(pred), "--out", str(figure)]) == 0
        for path in (pred, gt, out, figure):
            assert path.stat().st_mode & 0o777 == 0o644, path  # not mkstemp's private 0600
    finally:
        os.umask(umask)

"""Validation of the interchange arrays: clear errors naming the source, field and fix."""

import re

import numpy as np
import pytest

from eval import Evaluator, InputError, load_npz, match_rows, save_npz
from eval.io import nonfinite_rows, validate


def hands(num_rows: int = 3) -> np.ndarray:
    joints = np.zeros((num_rows, 2, 21, 3))
    joints[..., 0] = 10.0 * np.arange(21)
    joints[..., 2] = 500.0
    return joints


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hand_type", np.array([0, 3, 2]), "must be 0 (right), 1 (left) or 2"),
        ("ids", np.array([1, 1, 2]), "'ids' has duplicates, e.g. 1"),
        ("ids", np.array([1.0, 2.0, 3.0]), "'ids' must hold integers"),
        ("joint_valid", np.full((3, 2, 21), 2), "'joint_valid' must hold booleans or 0/1"),
        ("verts", np.zeros((3, 2, 5)), "'verts' has shape (3, 2, 5)"),
        ("faces", np.zeros((2, 4, 3), dtype=np.int64) + 7, "'faces' indexes vertices outside"),
    ],
)
def test_bad_ground_truth_fields(field, value, message):
    raw = {"ids": np.arange(3), "joints": hands(), "verts": hands()[:, :, :5], field: value}
    with pytest.raises(InputError, match=r"gt\.npz: .*" + re.escape(message)):
        validate(raw, "gt", "gt.npz")


def test_probabilities_and_metres_in_predictions():
    with pytest.raises(InputError, match="apply the sigmoid"):
        validate({"joints": hands(), "hand_prob": np.full((3, 2), 3.0)}, "pred", "p")
    with pytest.raises(InputError, match="'verts' .* looks like metres"):
        validate({"joints": hands(), "verts": hands()[:, :, :5] / 1000.0}, "pred", "p")


def test_metres_check_ignores_invalid_ground_truth_joints():
    joints = hands()
    joints[:, 1] = 0.0  # an absent hand written as zeros
    valid = np.ones((3, 2, 21), dtype=bool)
    valid[:, 1] = False
    out = validate({"joints": joints, "joint_valid": valid}, "gt", "g")
    assert out["joint_valid"].dtype == bool


def test_npz_round_trip_and_nonfinite_rows(tmp_path):
    joints = hands()
    joints[2, 0, 0, 0] = np.inf
    path = tmp_path / "p.npz"
    save_npz(path, {"ids": np.array([5, 6, 7]), "joints": joints})
    assert not list(tmp_path.glob(".p.npz*"))  # no temporary file left behind
    with pytest.raises(InputError, match=r"p\.npz: field 'joints' has NaN/inf in 1 rows \(ids 7\)"):
        load_npz(path, "pred")
    loaded = load_npz(path, "pred", check_finite=False)
    np.testing.assert_array_equal(nonfinite_rows(loaded), [False, False, True])
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable .npz"):
        load_npz(tmp_path / "broken.npz", "pred")


def test_match_rows_reorders_by_id():
    gt = {"ids": np.array([3, 1, 2]), "joints": hands()}
    pred_joints = hands() + np.arange(3)[:, None, None, None]
    pred = {"ids": np.array([1, 2, 3, 9]), "joints": np.concatenate([pred_joints, hands(1)])}
    matched, notes = match_rows(pred, gt, "p", "g")
    np.testing.assert_array_equal(matched["ids"], [3, 1, 2])
    np.testing.assert_array_equal(matched["joints"][:, 0, 0, 0], [2.0, 0.0, 1.0])
    assert notes == ["p: ignored 1 predictions whose ids are not in g"]


class FakeTensor:
    """Duck-typed CPU tensor: detach().cpu().numpy()."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def detach(self) -> "FakeTensor":
        return self

    def cpu(self) -> "FakeTensor":
        return self

    def numpy(self) -> np.ndarray:
        return self.array


def test_evaluator_accepts_tensor_like_batches():
    pred_joints = hands(2)
    pred_joints[:, 0, 3] += [0.0, 3.0, 4.0]
    evaluator = Evaluator("mcp")
    evaluator.update({"joints": FakeTensor(pred_joints)}, {"joints": FakeTensor(hands(2))})
    assert evaluator.compute()["mcp"]["mpjpe"] == pytest.approx(5.0 / 42)


def test_zero_rows_are_rejected_naming_the_source(tmp_path):
    empty = {"ids": np.zeros(0, np.int64), "joints": np.zeros((0, 2, 21, 3))}
    with pytest.raises(InputError, match=r"my batch: no rows"):
        validate(empty, "pred", "my batch")
    path = tmp_path / "empty.npz"
    save_npz(path, empty)
    with pytest.raises(InputError, match=re.escape(str(path)) + ": no rows"):
        load_npz(path, "gt")
    with pytest.raises(InputError, match="gt batch: no rows"):
        Evaluator(["mcp"]).update({"ids": np.arange(3), "joints": hands()}, empty, "pred batch", "gt batch")
    assert not nonfinite_rows(empty).any()  # the row helpers work on zero rows


def test_save_npz_and_write_json_use_the_usual_mode(tmp_path):
    import os

    from eval.io import write_json

    umask = os.umask(0o027)
    try:
        save_npz(tmp_path / "a.npz", {"ids": np.arange(2)})
        write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(umask)
    for name in ("a.npz", "a.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640, name


def test_dirnet_eval_outputs_share_one_mode(tmp_path):
    """`dirnet eval` writes predictions.npz, groundtruth_*.npz and pck.png through eval's writers
    and the metrics files through dir_net's: all with the same (umask) mode."""
    import os

    from dir_net.engine.evaluation import write_outputs

    rows = {"ids": np.arange(3), "joints": hands()}
    gt = {**rows, "joint_valid": np.ones((3, 2, 21), bool), "hand_type": np.full(3, 2)}
    evaluator = Evaluator(["mcp"], iv=False)
    evaluator.update(rows, gt)
    meta = {"run": "r", "checkpoint": "c.pt", "step": 1, "split": "test", "samples": 3}
    umask = os.umask(0o022)
    try:
        files = write_outputs(tmp_path, rows, {"mano": gt}, evaluator.compute(), evaluator.pck_curves(),
                              meta, {"mcp": ("mano", 3)})
    finally:
        os.umask(umask)
    assert {"predictions.npz", "groundtruth_mano.npz", "pck.png", "metrics.json"} <= set(files)
    assert {name: path.stat().st_mode & 0o777 for name, path in files.items()} == dict.fromkeys(files, 0o644)

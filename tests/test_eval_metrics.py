"""Hand-computed cases for every metric and protocol of the eval toolkit, plus invariances."""

import numpy as np
import pytest

from eval import PROTOCOLS, Evaluator, InputError, Protocol, evaluate, pck_curve, score
from eval.metrics import auc, average_precision

Z0 = 500.0  # mm, hands in front of the camera


def line_hand(offset=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(21, 3) mm: joint j at (10 j, 0, 0) + offset, so |J_j - J_9| = 10 |j - 9| mm."""
    joints = np.zeros((21, 3))
    joints[:, 0] = 10.0 * np.arange(21)
    return joints + np.asarray(offset) + [0.0, 0.0, Z0]


def two_line_hands(num_rows: int) -> np.ndarray:
    """(N, 2, 21, 3): right hand at y = 0, left at y = 50 mm (left root - right root = (0,50,0))."""
    pair = np.stack([line_hand(), line_hand((0.0, 50.0, 0.0))])
    return np.repeat(pair[None], num_rows, axis=0)


def gt_pred(num_rows: int = 1, **gt_extra):
    gt = {"ids": np.arange(num_rows), "joints": two_line_hands(num_rows), **gt_extra}
    pred = {"ids": np.arange(num_rows), "joints": gt["joints"].copy()}
    return gt, pred


def random_case(rng: np.random.Generator, num_rows: int = 12, num_verts: int = 30):
    """Plausible random hands (mm) with verts, 2D verts, validity, hand types and scores."""
    hand_type = rng.integers(0, 3, num_rows)
    joints = rng.normal(scale=30.0, size=(num_rows, 2, 21, 3)) + [0.0, 0.0, Z0]
    joints[:, 1, :, 0] += 80.0
    valid = rng.random((num_rows, 2, 21)) > 0.2
    valid[hand_type == 0, 1] = False
    valid[hand_type == 1, 0] = False
    gt = {
        "ids": rng.permutation(1000)[:num_rows], "joints": joints, "joint_valid": valid,
        "hand_type": hand_type,
        "verts": joints[:, :, :1] + rng.normal(scale=30.0, size=(num_rows, 2, num_verts, 3)),
        "verts_2d": rng.random((num_rows, 2, num_verts, 2)) * 256,
    }
    pred = {
        "ids": gt["ids"].copy(),
        "joints": joints + rng.normal(scale=8.0, size=joints.shape),
        "verts": gt["verts"] + rng.normal(scale=8.0, size=gt["verts"].shape),
        "verts_2d": gt["verts_2d"] + rng.normal(scale=3.0, size=gt["verts_2d"].shape),
        "hand_prob": rng.random((num_rows, 2)),
    }
    return gt, pred


# --- MPJPE per protocol -------------------------------------------------------------------


def test_single_joint_offset_all_protocols():
    gt, pred = gt_pred(2, hand_type=np.array([2, 2]))
    pred["joints"][0, 0, 5] += [3.0, 4.0, 0.0]  # 5 mm on right joint 5 of row 0
    # moon: joint (right, 5) mean 5/2 over rows, 0 elsewhere, mean over 42 joints
    assert score(pred, gt, "moon")["mpjpe"] == pytest.approx(2.5 / 42)
    # per-sample: right hand 5 / (2 rows x 21), left 0, mean of the two hands; J0, J9 unchanged
    for name in ("wrist_scaled", "mcp_scaled", "mcp"):
        assert score(pred, gt, name)["mpjpe"] == pytest.approx(5.0 / 84)


def test_prediction_scaled_about_wrist():
    gt, pred = gt_pred(1)
    right = pred["joints"][0, 0]
    pred["joints"][0, 0] = right[0] + 2.0 * (right - right[0])  # right hand twice as big
    assert score(pred, gt, "wrist_scaled")["mpjpe"] == pytest.approx(0.0, abs=1e-9)
    assert score(pred, gt, "mcp_scaled")["mpjpe"] == pytest.approx(0.0, abs=1e-9)
    # mcp, no scale: error |J_j - J_9| = 10 |j - 9|; sum_j |j - 9| = 45 + 66 = 111
    assert score(pred, gt, "mcp")["mpjpe"] == pytest.approx(1110.0 / 21 / 2)
    # moon: error |J_j - J_0| = 10 j; per joint, mean over 42 joints: 10 * 210 / 42
    assert score(pred, gt, "moon")["mpjpe"] == pytest.approx(2100.0 / 42)


def test_moon_subsets_and_masking():
    gt, pred = gt_pred(2, hand_type=np.array([0, 2]))
    valid = np.ones((2, 2, 21), dtype=bool)
    valid[0, 1] = False  # the absent left hand of the single-hand frame
    gt["joint_valid"] = valid
    gt["joints"][0, 1] = 0.0  # garbage where nothing is annotated
    pred["joints"][0, 0, 3] += [0.0, 0.0, 4.0]
    pred["joints"][1, 1, 7] += [0.0, 8.0, 0.0]
    pred["joints"][0, 1] += 100.0  # the absent hand's prediction is never looked at
    out = score(pred, gt, "moon")
    assert out["mpjpe_single"] == pytest.approx(4.0 / 21)  # only the right hand's joints count
    assert out["mpjpe_interacting"] == pytest.approx(8.0 / 42)
    # all frames: right j3 (4 + 0) / 2 = 2, left j7 8 / 1 = 8
    assert out["mpjpe_all"] == pytest.approx(10.0 / 42)
    assert out["mpjpe"] == out["mpjpe_all"]
    assert out["mrrpe"] == pytest.approx(0.0)  # interacting row only, whose roots are exact


def test_moon_hand_with_invalid_root_is_excluded():
    gt, pred = gt_pred(1, hand_type=np.array([2]))
    valid = np.ones((1, 2, 21), dtype=bool)
    valid[0, 0, 0] = False  # right wrist not annotated: the whole right hand drops out
    gt["joint_valid"] = valid
    pred["joints"][0, 0, 4] += [0.0, 0.0, 30.0]
    pred["joints"][0, 1, 4] += [0.0, 0.0, 6.0]
    out = score(pred, gt, "moon")
    assert out["mpjpe"] == pytest.approx(6.0 / 21)
    assert "mrrpe" not in out  # needs both roots valid
    # protocols without masking count the right hand and the invalid root anyway
    assert score(pred, gt, "wrist_scaled")["mpjpe"] == pytest.approx((30.0 + 6.0) / 42)


def test_per_joint_and_per_sample_averaging_differ_on_unbalanced_masks():
    gt, pred = gt_pred(2, hand_type=np.array([2, 2]))
    valid = np.ones((2, 2, 21), dtype=bool)
    valid[1, 0, 6:] = False  # row 1 right hand: only joints 0-5 annotated
    gt["joint_valid"] = valid
    pred["joints"][1, 0, 5] += [6.0, 0.0, 0.0]
    per_joint = score(pred, gt, "moon")["mpjpe"]
    per_sample = score(pred, gt, Protocol("moon_per_sample", root=0, scale=False, masking=True,
                                          averaging="per_sample"))["mpjpe"]
    assert per_joint == pytest.approx((6.0 / 2) / 42)  # joint (right, 5): (0 + 6) / 2 rows
    assert per_sample == pytest.approx((6.0 / 27) / 2)  # right: 6 / (21 + 6) joints; left: 0
    assert per_sample > per_joint


# --- MRRPE, MPVPE, MIAA ---------------------------------------------------------------------


def test_mrrpe_is_error_of_right_to_left_root_vector():
    gt, pred = gt_pred(1, hand_type=np.array([2]))
    pred["joints"][0, 0] += [10.0, -20.0, 30.0]  # shift the right hand only
    for name in PROTOCOLS:
        out = score(pred, gt, name)
        assert out["mrrpe"] == pytest.approx(np.sqrt(1400.0))
        assert out["mpjpe"] == pytest.approx(0.0, abs=1e-9)
    pred["joints"][0, 1, 9] += [0.0, 0.0, 5.0]  # the left middle MCP moves: the MCP root moves
    assert score(pred, gt, "mcp")["mrrpe"] == pytest.approx(np.linalg.norm([-10, 20, -25]))
    assert score(pred, gt, "moon")["mrrpe"] == pytest.approx(np.sqrt(1400.0))


def test_mrrpe_only_on_interacting_frames():
    gt, pred = gt_pred(2, hand_type=np.array([0, 2]))
    pred["joints"][0, 1] += [0.0, 0.0, 100.0]  # the absent hand of row 0 does not count
    pred["joints"][1, 1] += [0.0, 3.0, 4.0]
    assert score(pred, gt, "wrist_scaled")["mrrpe"] == pytest.approx(5.0)


def test_mpvpe_uses_the_protocol_alignment():
    gt, pred = gt_pred(1)
    verts = np.zeros((1, 2, 4, 3))
    verts[0, :, :, 0] = [[0, 20, 40, 60]] * 2
    gt["verts"] = gt["joints"][:, :, :1] + verts
    pred["verts"] = gt["verts"].copy()
    pred["verts"][0, 1, 2] += [0.0, 0.0, 2.0]
    for name in PROTOCOLS:  # left: 2 mm on 1 of 4 verts; right 0; mean of hands
        assert score(pred, gt, name)["mpvpe"] == pytest.approx(0.25)
    # scaling the right hand (joints and verts) about its wrist: only scaled protocols undo it
    wrist = pred["joints"][0, 0, 0]
    pred["joints"][0, 0] = wrist + 2.0 * (pred["joints"][0, 0] - wrist)
    pred["verts"][0, 0] = wrist + 2.0 * (pred["verts"][0, 0] - wrist)
    assert score(pred, gt, "wrist_scaled")["mpvpe"] == pytest.approx(0.25)
    assert score(pred, gt, "mcp_scaled")["mpvpe"] == pytest.approx(0.25)
    # moon, no scale: right verts at x = 0, 20, 40, 60 from the wrist are off by that much
    assert score(pred, gt, "moon")["mpvpe"] == pytest.approx((120.0 / 4 + 0.5) / 2)


def test_miaa_mean_2d_vertex_distance():
    gt, pred = gt_pred(1)
    gt["verts_2d"] = np.full((1, 2, 5, 2), 100.0)
    pred["verts_2d"] = gt["verts_2d"].copy()
    pred["verts_2d"][0, 1] += [3.0, 4.0]
    pred["joints"] += [7.0, 0.0, 0.0]  # a 3D translation does not touch MIAA
    for name in PROTOCOLS:
        assert score(pred, gt, name)["miaa"] == pytest.approx(2.5)


# --- PCK / AUC ------------------------------------------------------------------------------


def test_pck_curve_and_auc_by_hand():
    gt, pred = gt_pred(1)
    pred["joints"][0, :, 1:] += [0.0, 0.0, 10.0]  # every joint but the wrists off by 10 mm
    curve = pck_curve(pred, gt, "moon")
    assert curve.thresholds_mm[0] == 0 and curve.thresholds_mm[-1] == 50
    np.testing.assert_allclose(curve.pck[:10], 1.0 / 21)  # only the wrist (error 0)
    np.testing.assert_allclose(curve.pck[10:], 1.0)
    # trapezoids: 0-9 at 1/21, 9-10 from 1/21 to 1, 10-50 at 1; normalised by 50 mm
    expected = (9.0 / 21 + (1.0 / 21 + 1.0) / 2 + 40.0) / 50.0
    assert score(pred, gt, "moon")["auc"] == pytest.approx(expected)
    assert auc(curve.thresholds_mm, curve.pck) == pytest.approx(expected)


# --- handedness -----------------------------------------------------------------------------


def test_handedness_accuracy():
    gt, pred = gt_pred(4, hand_type=np.array([0, 1, 2, 2]))
    pred["hand_prob"] = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.4], [0.6, 0.6]])
    out = score(pred, gt, "moon")
    assert out["handedness_acc"] == pytest.approx(0.75)  # row 2 misses the left hand


def test_average_precision_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([1, 0, 1, 0, 1])
    # precision at each recall step of 1/3: 1/1, 2/3, 3/5
    assert average_precision(scores, labels) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # tied scores are one threshold: (R, P) = (1/2, 1) then (1, 2/3)
    tied = average_precision(np.array([0.9, 0.5, 0.5]), np.array([1, 0, 1]))
    assert tied == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert average_precision(np.array([0.3, 0.2]), np.array([0, 0])) is None


def test_ap_h_is_mean_over_the_two_hand_classes():
    right = np.array([1, 0, 1, 0, 1])
    left = np.array([1, 1, 0, 1, 1])
    hand_type = np.where(right & left, 2, np.where(right, 0, 1))
    gt, pred = gt_pred(5, hand_type=hand_type)
    pred["hand_prob"] = np.stack(
        [[0.9, 0.8, 0.7, 0.6, 0.5], [0.3, 0.9, 0.8, 0.4, 0.2]], axis=1
    )
    # left sorted: 0.9 (1), 0.8 (0), 0.4 (1), 0.3 (1), 0.2 (1) -> P 1, 2/3, 3/4, 4/5
    ap_left = (1 + 2 / 3 + 3 / 4 + 4 / 5) / 4
    ap_right = (1 + 2 / 3 + 3 / 5) / 3
    assert score(pred, gt, "moon")["ap_h"] == pytest.approx((ap_left + ap_right) / 2)


# --- absent metrics, invariances ------------------------------------------------------------


def test_metrics_the_inputs_cannot_support_are_absent():
    gt, pred = gt_pred(1)
    out = score(pred, gt, "moon")
    assert set(out) == {"mpjpe", "mpjpe_all", "mrrpe", "auc"}
    assert set(score(pred, gt, "mcp")) == {"mpjpe", "mrrpe", "auc"}


def test_aligned_metrics_ignore_hand_translation():
    """3D metrics are root-aligned: moving a whole predicted hand changes only MRRPE. MIAA is
    measured in the image, unaligned: moving that hand's projected vertices changes it."""
    rng = np.random.default_rng(1)
    gt, pred = random_case(rng)
    base = evaluate(pred, gt, iv=False).compute()
    moved = {k: v.copy() for k, v in pred.items()}
    moved["joints"][:, 0] += [40.0, -15.0, 25.0]
    moved["verts"][:, 0] += [40.0, -15.0, 25.0]
    moved["verts_2d"][:, 0] += [40.0, -15.0]  # px
    after = evaluate(moved, gt, iv=False).compute()
    for name in PROTOCOLS:
        for metric in ("mpjpe", "mpvpe", "auc"):
            assert after[name][metric] == pytest.approx(base[name][metric])
        assert after[name]["mrrpe"] != pytest.approx(base[name]["mrrpe"])
        assert after[name]["miaa"] > base[name]["miaa"] + 10.0


def test_scaled_protocols_ignore_uniform_scale():
    rng = np.random.default_rng(2)
    gt, pred = random_case(rng)
    base = evaluate(pred, gt, iv=False).compute()
    big = {k: v.copy() for k, v in pred.items()}
    big["joints"] *= 1.7
    big["verts"] *= 1.7
    after = evaluate(big, gt, iv=False).compute()
    for name in ("wrist_scaled", "mcp_scaled"):
        for metric in ("mpjpe", "mpvpe", "auc"):
            assert after[name][metric] == pytest.approx(base[name][metric])
    assert after["mcp"]["mpjpe"] != pytest.approx(base["mcp"]["mpjpe"])


def swap_hands(arrays: dict) -> dict:
    out = {}
    for key, value in arrays.items():
        if key == "hand_type":
            out[key] = np.choose(value, [1, 0, 2])
        elif key in ("ids",):
            out[key] = value
        else:
            out[key] = value[:, ::-1].copy()
    return out


def assert_same_results(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for name, metrics in expected.items():
        assert got[name].keys() == metrics.keys(), name
        for metric, value in metrics.items():
            assert got[name][metric] == pytest.approx(value), (name, metric)


def test_swapping_hands_in_both_files_changes_nothing():
    rng = np.random.default_rng(3)
    gt, pred = random_case(rng)
    base = evaluate(pred, gt, iv=False).compute()
    assert_same_results(evaluate(swap_hands(pred), swap_hands(gt), iv=False).compute(), base)


def test_row_order_does_not_matter():
    rng = np.random.default_rng(4)
    gt, pred = random_case(rng)
    base = evaluate(pred, gt, iv=False).compute()
    order = rng.permutation(len(gt["ids"]))
    shuffled = {k: v[order] for k, v in pred.items()}
    assert_same_results(evaluate(shuffled, gt, iv=False).compute(), base)
    # extra predictions for ids not in the ground truth are ignored
    extra = {k: np.concatenate([v, v[:2]]) for k, v in pred.items()}
    extra["ids"][-2:] = [5000, 5001]
    assert_same_results(evaluate(extra, gt, iv=False).compute(), base)


def test_streaming_batches_equal_one_pass():
    rng = np.random.default_rng(5)
    gt, pred = random_case(rng, num_rows=10)
    whole = evaluate(pred, gt, iv=False).compute()
    evaluator = Evaluator(iv=False)
    for rows in (slice(0, 3), slice(3, 10)):
        evaluator.update({k: v[rows] for k, v in pred.items()},
                         {k: v[rows] for k, v in gt.items()})
    assert_same_results(evaluator.compute(), whole)


def test_streaming_rejects_misaligned_ids_and_changing_fields():
    rng = np.random.default_rng(6)
    gt, pred = random_case(rng, num_rows=4)
    evaluator = Evaluator("moon", iv=False)
    with pytest.raises(InputError, match="ids differ"):
        evaluator.update({**pred, "ids": pred["ids"][::-1]}, gt)
    evaluator.update(pred, gt)
    with pytest.raises(InputError, match="differ from the first batch"):
        evaluator.update({k: v for k, v in pred.items() if k != "verts"}, gt)


def test_degenerate_prediction_under_scaled_protocol_is_an_error():
    gt, pred = gt_pred(1)
    pred["joints"][0, 0, 9] = pred["joints"][0, 0, 0]
    with pytest.raises(InputError, match="wrist and middle MCP coincide"):
        score(pred, gt, "wrist_scaled")
    assert "mpjpe" in score(pred, gt, "mcp")


def test_verts_valid_excludes_hands_without_a_ground_truth_mesh():
    """MPVPE counts only hands with verts_valid; joints metrics still count every hand."""
    from eval import score

    joints = np.zeros((1, 2, 21, 3))
    joints[..., 0] = np.arange(21) * 10.0  # a 10 mm-spaced chain, in mm
    joints[:, 1] += 200.0
    verts = np.repeat(joints[:, :, :1], 4, axis=2) + np.arange(4)[None, None, :, None] * 5.0
    pred = {"ids": np.array([7]), "joints": joints.copy(), "verts": verts.copy()}
    pred["verts"][:, 0] += [3.0, 4.0, 0.0]  # right hand: every vertex off by (3, 4, 0) -> 5 mm
    gt = {"ids": np.array([7]), "joints": joints, "verts": verts.copy(), "hand_type": np.array([2])}
    gt["verts"][:, 1] = 0.0  # left hand: no GT mesh, zero-filled
    with_mask = score(pred, {**gt, "verts_valid": np.array([[True, False]])}, "mcp")
    assert with_mask["mpvpe"] == pytest.approx(5.0)
    assert with_mask["mpjpe"] == pytest.approx(0.0)
    without_mask = score(pred, gt, "mcp")
    assert without_mask["mpvpe"] > 50.0  # the zero-filled hand would dominate

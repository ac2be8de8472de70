"""The `epe` protocol (InterNet Table 5 on STB / RHD) on hand-computed cases, and the streaming
Evaluator against the literal per-sample re-statement of the official evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from eval import PROTOCOLS, score
from eval.epe import official_epe

RIGHT, LEFT = 0, 1


def _hands(n: int, seed: int = 0) -> np.ndarray:
    """(n, 2, 21, 3) mm: distinct joints around 500 mm depth."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-80, 80, (n, 2, 21, 3)) + np.array([0.0, 0.0, 500.0])


def _epe(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, hand_type: list[int]) -> float:
    rows = np.arange(len(gt), dtype=np.int64)
    return score({"ids": rows, "joints": pred},
                 {"ids": rows, "joints": gt, "joint_valid": valid, "hand_type": np.asarray(hand_type)},
                 "epe", iv=False)["mpjpe"]


def test_protocol_is_registered_with_the_official_rules() -> None:
    p = PROTOCOLS["epe"]
    assert (p.root, p.scale, p.masking, p.averaging, p.root_required) == (0, False, True, "per_joint_pooled", False)
    assert p.required_joints() == ()


def test_one_joint_off_counts_one_21st() -> None:
    gt = _hands(1)
    pred = gt.copy()
    pred[0, LEFT, 5] += [0.0, 21.0, 0.0]  # 21 mm on one joint; the root is included at error 0
    valid = np.ones((1, 2, 21), bool)
    assert _epe(pred, gt, valid, [LEFT]) == pytest.approx(1.0)


def test_root_alignment_without_scale() -> None:
    gt = _hands(1)
    pred = gt.copy()
    pred[0, RIGHT, 0] += [0.0, 0.0, 10.0]  # a root 10 mm off moves every other joint 10 mm after alignment
    valid = np.ones((1, 2, 21), bool)
    assert _epe(pred, gt, valid, [RIGHT]) == pytest.approx(20 * 10.0 / 21)
    pred = gt.copy()
    pred[0, RIGHT] = gt[0, RIGHT] + [30.0, -20.0, 100.0]  # a translated hand has no error
    assert _epe(pred, gt, valid, [RIGHT]) == pytest.approx(0.0, abs=1e-9)
    pred[0, RIGHT] = gt[0, RIGHT, :1] + 2.0 * (gt[0, RIGHT] - gt[0, RIGHT, :1])  # twice the size: not rescaled
    expected = np.linalg.norm(gt[0, RIGHT] - gt[0, RIGHT, :1], axis=-1).sum() / 21
    assert _epe(pred, gt, valid, [RIGHT]) == pytest.approx(expected)


def test_the_gt_hand_type_picks_the_scored_hand() -> None:
    gt = _hands(1)
    pred = gt.copy()
    pred[0, RIGHT] += np.random.default_rng(1).normal(0, 50, (21, 3))  # garbage in the other hand
    valid = np.ones((1, 2, 21), bool)
    assert _epe(pred, gt, valid, [LEFT]) == pytest.approx(0.0, abs=1e-9)


def test_per_joint_means_pool_both_hands() -> None:
    # joint 1: 3 mm on a right hand, 9 mm and 0 mm on two left hands -> (3 + 9 + 0) / 3 = 4 mm for
    # joint 1 and 0 elsewhere: EPE 4 / 21. A per-(hand, joint) mean would give (3 + 4.5) / 42.
    gt = _hands(3)
    pred = gt.copy()
    pred[0, RIGHT, 1] += [3.0, 0.0, 0.0]
    pred[1, LEFT, 1] += [0.0, 9.0, 0.0]
    valid = np.ones((3, 2, 21), bool)
    assert _epe(pred, gt, valid, [RIGHT, LEFT, LEFT]) == pytest.approx(4.0 / 21)


def test_invalid_joints_are_left_out_and_an_invalid_root_still_aligns() -> None:
    gt = _hands(2)
    pred = gt.copy()
    pred[0, LEFT, 3] += [0.0, 0.0, 20.0]
    pred[1, LEFT, 7] += [0.0, 0.0, 500.0]  # invalid joint: never counted
    valid = np.ones((2, 2, 21), bool)
    valid[:, LEFT, 0] = False  # root invalid in every sample: subtracted, but not one of the means
    valid[1, LEFT, 7] = False
    # joint 3: (20 + 0) / 2 = 10; 20 joints have a mean (the root has none): 10 / 20
    assert _epe(pred, gt, valid, [LEFT, LEFT]) == pytest.approx(10.0 / 20)
    assert score({"joints": pred}, {"joints": gt, "joint_valid": valid, "hand_type": np.array([LEFT, LEFT])},
                 "moon", iv=False).get("mpjpe") is None  # moon drops hands whose root is invalid


def test_evaluator_equals_the_official_loop() -> None:
    rng = np.random.default_rng(7)
    n = 64
    gt = _hands(n, seed=2)
    pred = gt + rng.normal(0, 8, gt.shape)
    valid = rng.random((n, 2, 21)) > 0.2
    hand_type = rng.integers(0, 2, n)
    expected, per_joint = official_epe(pred, gt, valid, hand_type)
    assert per_joint.shape == (21,) and np.isfinite(per_joint).all()
    assert _epe(pred, gt, valid, list(hand_type)) == pytest.approx(expected, rel=1e-9)

"""The `mmpose` protocol (every valid joint pooled, as mmpose's keypoint_epe) beside `moon` (the
official per-joint mean), and MRRPE from a predicted right-to-left wrist vector (`offset`)."""

import numpy as np
import pytest

from eval import PROTOCOLS, score
from eval.io import InputError, validate

Z0 = 500.0  # mm


def line_hands(num_rows: int) -> np.ndarray:
    """(N, 2, 21, 3) mm: joint j at (10 j, 0, Z0), the left hand 50 mm lower."""
    hand = np.zeros((21, 3))
    hand[:, 0] = 10.0 * np.arange(21)
    hand[:, 2] = Z0
    pair = np.stack([hand, hand + [0.0, 50.0, 0.0]])
    return np.repeat(pair[None], num_rows, axis=0)


def unbalanced_case():
    """2 interacting frames; frame 0's right hand has only joints 0-5 annotated, joint 5 is 6 mm off."""
    gt = {"ids": np.arange(2), "joints": line_hands(2), "hand_type": np.array([2, 2]),
          "joint_valid": np.ones((2, 2, 21), bool)}
    gt["joint_valid"][0, 0, 6:] = False
    pred = {"ids": np.arange(2), "joints": gt["joints"].copy()}
    pred["joints"][0, 0, 5, 1] += 6.0
    return gt, pred


def test_pooled_mean_over_every_valid_joint() -> None:
    gt, pred = unbalanced_case()
    # 6 + 21 + 21 + 21 = 69 valid joints (wrists included), one 6 mm error
    assert score(pred, gt, "mmpose")["mpjpe"] == pytest.approx(6.0 / 69)
    # moon: joint 5 of the right hand averages 6 and 0 over its 2 samples, then the mean of 42 joints
    assert score(pred, gt, "moon")["mpjpe"] == pytest.approx(3.0 / 42)
    assert PROTOCOLS["mmpose"].averaging == "pooled" and PROTOCOLS["moon"].averaging == "per_joint"


def test_pooled_subsets_pool_their_own_frames() -> None:
    """single: a right-hand frame with a 4 mm error on 1 of 21 joints; interacting: 2 x 42 joints, one 8 mm."""
    gt = {"ids": np.arange(2), "joints": line_hands(2), "hand_type": np.array([0, 2]),
          "joint_valid": np.ones((2, 2, 21), bool)}
    gt["joint_valid"][0, 1] = False
    pred = {"ids": np.arange(2), "joints": gt["joints"].copy()}
    pred["joints"][0, 0, 3, 0] += 4.0
    pred["joints"][1, 1, 7, 2] += 8.0
    pred["joints"][0, 1] += 1000.0  # the absent hand's prediction never counts
    out = score(pred, gt, "mmpose")
    assert out["mpjpe_single"] == pytest.approx(4.0 / 21)
    assert out["mpjpe_interacting"] == pytest.approx(8.0 / 42)
    assert out["mpjpe_all"] == out["mpjpe"] == pytest.approx(12.0 / 63)


def test_an_invalid_wrist_drops_its_hand_under_both_protocols() -> None:
    gt, pred = unbalanced_case()
    gt["joint_valid"][1, 1, 0] = False  # frame 1 left wrist unannotated
    pred["joints"][1, 1, 3] += 100.0  # that hand's errors do not count
    assert score(pred, gt, "mmpose")["mpjpe"] == pytest.approx(6.0 / 48)
    assert score(pred, gt, "mmpose")["mrrpe"] == pytest.approx(0.0)  # frame 0 only


def test_mrrpe_uses_the_predicted_offset_when_given() -> None:
    """InterNet: each hand at its own depth in `joints`, the left wrist at Z_right + rel in `offset`."""
    gt = {"ids": np.arange(1), "joints": line_hands(1), "hand_type": np.array([2])}
    pred = {"ids": np.arange(1), "joints": gt["joints"].copy()}
    for name in ("moon", "mmpose", "mcp"):
        assert score(pred, gt, name)["mrrpe"] == pytest.approx(0.0)
    pred["offset"] = np.array([[0.0, 50.0, 30.0]])  # the relative depth is 30 mm off
    for name in ("moon", "mmpose"):
        assert score(pred, gt, name)["mrrpe"] == pytest.approx(30.0)
        assert score(pred, gt, name)["mpjpe"] == pytest.approx(0.0)
    # another root: the offset moves the wrists, each hand's root-from-wrist comes from `joints`
    assert score(pred, gt, "mcp")["mrrpe"] == pytest.approx(30.0)


def test_offset_field_is_validated() -> None:
    with pytest.raises(InputError, match="offset"):
        validate({"ids": np.arange(2), "joints": line_hands(2), "offset": np.zeros((2, 2))}, "pred", "p.npz")

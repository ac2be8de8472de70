"""dirnet bench learn pieces that need no training: the mean-hand baseline, the budget-fraction
learning-rate schedule, the JSON summary."""

from __future__ import annotations

import numpy as np
import pytest

from dir_net.bench.learn_train import Budget, lr_factor
from dir_net.bench.mean_hand import fit_mean_hand, score_mean_hand
from dir_net.config import load_config


def rows(joints, hand_type, valid=None):
    out = {"ids": np.arange(len(joints)), "joints": np.asarray(joints, np.float64),
           "hand_type": np.asarray(hand_type)}
    if valid is not None:
        out["joint_valid"] = np.asarray(valid, bool)
    return out


def test_mean_hand_is_the_per_joint_mean_about_each_protocols_root():
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(6, 2, 21, 3)) * 20 + 500.0
    hand = fit_mean_hand(rows(joints, [2] * 6), root=9)
    expected = (joints - joints[:, :, 9:10]).mean(0)
    np.testing.assert_allclose(hand.joints_rel, expected, atol=1e-9)
    np.testing.assert_allclose(hand.offset, (joints[:, 1, 9] - joints[:, 0, 9]).mean(0), atol=1e-9)
    pred = hand.predict(np.array([7, 8]))
    np.testing.assert_allclose(pred["joints"][0, 1, 9], hand.offset, atol=1e-4)  # left root at the offset


def test_mean_hand_counts_only_present_hands_and_annotated_joints():
    joints = np.zeros((3, 2, 21, 3))
    joints[:, :, 5] = [[[10, 0, 0], [0, 0, 0]], [[30, 0, 0], [50, 0, 0]], [[1000, 0, 0], [70, 0, 0]]]
    valid = np.ones((3, 2, 21), bool)
    valid[1, 0, 5] = False  # right joint 5 of frame 1 not annotated
    # frame 0 right hand only (the left hand's numbers are ignored); frame 2 left hand only
    hand = fit_mean_hand(rows(joints, [0, 2, 1], valid), root=0)
    assert hand.joints_rel[0, 5, 0] == pytest.approx(10.0)  # right: frame 0 alone
    assert hand.joints_rel[1, 5, 0] == pytest.approx(60.0)  # left: frames 1 and 2


def test_the_mean_hand_scores_zero_on_identical_hands_and_more_on_varied_ones():
    rng = np.random.default_rng(1)
    one = rng.normal(size=(1, 2, 21, 3)) * 30
    same = np.repeat(one, 4, axis=0)
    exact = score_mean_hand(rows(same, [2] * 4), rows(same, [2] * 4), ["mcp"])["mcp"]["mpjpe"]
    assert exact == pytest.approx(0, abs=1e-4)
    varied = same + rng.normal(size=same.shape) * 10
    assert score_mean_hand(rows(varied, [2] * 4), rows(same, [2] * 4), ["mcp"])["mcp"]["mpjpe"] > 1.0


def test_learning_rate_follows_the_schedule_over_the_budget():
    cosine = load_config(None, ["train.epochs=10", "train.schedule.name=cosine", "train.schedule.warmup_epochs=1",
                                "train.schedule.warmup_factor=0.0"]).train
    assert lr_factor(cosine, 0.0) == pytest.approx(0.0)
    assert lr_factor(cosine, 0.1) == pytest.approx(1.0)
    assert lr_factor(cosine, 0.55) == pytest.approx(0.5)
    assert lr_factor(cosine, 1.0) == pytest.approx(0.0, abs=1e-9)
    steps = load_config(None, ["train.epochs=20", "train.schedule.name=multistep", "train.schedule.milestones=[15,17]",
                               "train.schedule.gamma=0.1"]).train
    assert [round(lr_factor(steps, f), 6) for f in (0.5, 0.76, 0.9)] == [1.0, 0.1, 0.01]
    assert Budget(seconds=100).fraction(50, 10) == pytest.approx(0.5)
    assert Budget(steps=10).fraction(1e6, 4) == pytest.approx(0.4)


@pytest.mark.parametrize("option", ["frames", "test_frames", "cameras"])
def test_bench_learn_refuses_a_non_positive_data_size_before_writing(tmp_path, option):
    from dir_net.bench.learn import LearnOptions, run
    from dir_net.errors import DirNetError

    sizes = {"frames": 2, "test_frames": 2, "cameras": 1, option: 0}  # small: a missed check fails fast
    with pytest.raises(DirNetError, match=f"bench learn: --{option.replace('_', '-')} 0: must be >= 1"):
        run(LearnOptions(workdir=str(tmp_path), steps=1, **sizes), say=lambda _: None)
    assert not any(tmp_path.iterdir())  # nothing generated


def test_bench_learn_names_its_set_by_frames_and_cameras(tmp_path):
    from dir_net.bench.learn import data_root

    assert data_root(tmp_path, 4096, 96, 1).name.startswith("synth_4096x1_test96_")
    assert data_root(tmp_path, 4096, 96, 1) != data_root(tmp_path, 4096, 96, 4)

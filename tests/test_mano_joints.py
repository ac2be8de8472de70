"""Joint orders and conversions in mano.joints."""

import numpy as np
import pytest
import torch

from mano import joints as J


def test_orders_hold_the_same_joints():
    assert len(J.WRIST_FIRST_NAMES) == len(J.INTERHAND_NAMES) == len(J.MANO_NAMES) == 21
    assert set(J.WRIST_FIRST_NAMES) == set(J.INTERHAND_NAMES) == set(J.MANO_NAMES)
    assert J.WRIST_FIRST_NAMES[J.MIDDLE_MCP] == "middle1" and J.MIDDLE_MCP == 9
    assert J.INTERHAND_NAMES[0] == "thumb4" and J.INTERHAND_NAMES[20] == "wrist"
    assert J.INTERHAND_TWO_HAND_NAMES[J.INTERHAND_ROOTS[0]] == "r_wrist"
    assert J.INTERHAND_TWO_HAND_NAMES[J.INTERHAND_ROOTS[1]] == "l_wrist"


def test_known_index_arrays():
    # InterHand2.6M (tips first, wrist last) -> wrist-first, written out by hand.
    expected = [20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16]
    assert J.INTERHAND_TO_WRIST_FIRST.tolist() == expected
    # MANO 16 skeleton joints + 5 tips -> wrist-first (the order DIR / IntagHand use).
    expected_mano = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]
    assert J.MANO_TO_WRIST_FIRST.tolist() == expected_mano
    assert J.MANO_PARENTS.tolist() == [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]


@pytest.mark.parametrize("forward, backward", [
    (J.INTERHAND_TO_WRIST_FIRST, J.WRIST_FIRST_TO_INTERHAND),
    (J.MANO_TO_WRIST_FIRST, J.WRIST_FIRST_TO_MANO),
    (J.MANO_TO_INTERHAND, J.INTERHAND_TO_MANO),
])
def test_conversions_are_inverse(forward, backward):
    x = np.random.default_rng(0).normal(size=(4, 21, 3))
    np.testing.assert_array_equal(x[:, forward][:, backward], x)
    np.testing.assert_array_equal(x[:, backward][:, forward], x)


def test_conversion_maps_names():
    ih = np.array(J.INTERHAND_NAMES)
    assert ih[J.INTERHAND_TO_WRIST_FIRST].tolist() == list(J.WRIST_FIRST_NAMES)
    mano = np.array(J.MANO_NAMES)
    assert mano[J.MANO_TO_INTERHAND].tolist() == list(J.INTERHAND_NAMES)


def test_skeleton_parents_and_bones():
    parents = J.SKELETON_PARENTS
    assert parents[0] == -1 and len(J.BONES) == 20
    for parent, child in J.BONES:
        assert parents[child] == parent and parent < child
    for tip in J.FINGERTIPS:  # each finger is a chain of 4 hanging on the wrist
        chain = [tip]
        while parents[chain[-1]] != -1:
            chain.append(int(parents[chain[-1]]))
        assert len(chain) == 5 and chain[-1] == J.WRIST


def test_two_hand_helpers_roundtrip_numpy_and_torch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 42, 3))
    hands = J.interhand_to_hands(x)
    assert hands.shape == (5, 2, 21, 3)
    # right hand = rows 0-20 reordered; left = rows 21-41
    np.testing.assert_array_equal(hands[:, 0], x[:, :21][:, J.INTERHAND_TO_WRIST_FIRST])
    np.testing.assert_array_equal(hands[:, 1, 0], x[:, 41])  # left wrist = InterHand root 41
    np.testing.assert_array_equal(J.hands_to_interhand(hands), x)
    valid = rng.integers(0, 2, size=(5, 42))
    np.testing.assert_array_equal(J.hands_to_interhand(J.interhand_to_hands(valid, -1), -1), valid)
    t = torch.from_numpy(x)
    assert torch.equal(J.hands_to_interhand(J.interhand_to_hands(t)), t)
    with pytest.raises(ValueError, match="42 joints"):
        J.interhand_to_hands(np.zeros((3, 21, 3)))


def test_tip_sets():
    assert J.tip_vertices("interhand") == (745, 317, 445, 556, 673)
    assert J.tip_vertices((1, 2, 3, 4, 5)) == (1, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="unknown tip vertex set"):
        J.tip_vertices("openpose")

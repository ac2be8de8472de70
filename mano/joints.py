"""Hand joint orders and the index arrays that convert between them.

Every name is `wrist` or `{finger}{k}` with k = 1 (root-most joint: MCP, or CMC for the thumb)
to 4 (fingertip). Conversions are gathers along the joint axis:
`x_wf = x_ih[..., INTERHAND_TO_WRIST_FIRST, :]` and back with `WRIST_FIRST_TO_INTERHAND`.

Orders:
- wrist-first (dir_net, eval, OpenPose): 0 wrist; thumb 1-4, index 5-8, middle 9-12, ring 13-16,
  pinky 17-20, each finger root -> tip. Middle MCP = 9.
- InterHand2.6M: tips first, wrist last: thumb 0-3 (tip -> root), index 4-7, middle 8-11,
  ring 12-15, pinky 16-19, wrist 20. Two-hand arrays: right 0-20, left 21-41 (roots 20 / 41).
- MANO: the 16 skeleton joints in the model's own order (wrist, index1-3, middle1-3, pinky1-3,
  ring1-3, thumb1-3), then the 5 tip vertices (thumb, index, middle, ring, pinky).
"""

from __future__ import annotations

import numpy as np

FINGERS = ("thumb", "index", "middle", "ring", "pinky")

WRIST_FIRST_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}{k}" for finger in FINGERS for k in (1, 2, 3, 4)
)
INTERHAND_NAMES: tuple[str, ...] = tuple(
    f"{finger}{k}" for finger in FINGERS for k in (4, 3, 2, 1)
) + ("wrist",)
INTERHAND_TWO_HAND_NAMES: tuple[str, ...] = tuple(f"r_{n}" for n in INTERHAND_NAMES) + tuple(
    f"l_{n}" for n in INTERHAND_NAMES
)
MANO_SKELETON_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}{k}" for finger in ("index", "middle", "pinky", "ring", "thumb") for k in (1, 2, 3)
)
MANO_NAMES: tuple[str, ...] = MANO_SKELETON_NAMES + tuple(f"{finger}4" for finger in FINGERS)

NUM_JOINTS = 21
NUM_MANO_SKELETON_JOINTS = 16
WRIST = WRIST_FIRST_NAMES.index("wrist")  # 0
MIDDLE_MCP = WRIST_FIRST_NAMES.index("middle1")  # 9
FINGERTIPS = tuple(WRIST_FIRST_NAMES.index(f"{f}4") for f in FINGERS)  # (4, 8, 12, 16, 20)
INTERHAND_ROOTS = (20, 41)  # right wrist, left wrist in two-hand InterHand2.6M arrays
INTERHAND_HANDS = 2


def _gather_index(src: tuple[str, ...], dst: tuple[str, ...]) -> np.ndarray:
    """Indices into `src` that produce the order `dst`."""
    return np.array([src.index(name) for name in dst], dtype=np.int64)


INTERHAND_TO_WRIST_FIRST = _gather_index(INTERHAND_NAMES, WRIST_FIRST_NAMES)
WRIST_FIRST_TO_INTERHAND = _gather_index(WRIST_FIRST_NAMES, INTERHAND_NAMES)
MANO_TO_WRIST_FIRST = _gather_index(MANO_NAMES, WRIST_FIRST_NAMES)
WRIST_FIRST_TO_MANO = _gather_index(WRIST_FIRST_NAMES, MANO_NAMES)
MANO_TO_INTERHAND = _gather_index(MANO_NAMES, INTERHAND_NAMES)
INTERHAND_TO_MANO = _gather_index(INTERHAND_NAMES, MANO_NAMES)


def _parents(names: tuple[str, ...]) -> np.ndarray:
    """Parent index of every joint of an order (-1 for the wrist): finger joint k hangs on k - 1,
    joint 1 on the wrist."""
    def parent(name: str) -> int:
        if name == "wrist":
            return -1
        finger, k = name[:-1], int(name[-1])
        return names.index("wrist" if k == 1 else f"{finger}{k - 1}")

    return np.array([parent(n) for n in names], dtype=np.int64)


# Parent of each wrist-first joint (-1 for the wrist) and the 20 (parent, child) bones.
SKELETON_PARENTS = _parents(WRIST_FIRST_NAMES)
BONES: tuple[tuple[int, int], ...] = tuple(
    (int(p), child) for child, p in enumerate(SKELETON_PARENTS) if p >= 0
)
# Parents of the 16 MANO skeleton joints in the MANO order (the model's kintree_table[0]).
MANO_PARENTS = _parents(MANO_SKELETON_NAMES)

# Fingertip vertex ids of the MANO mesh, ordered thumb, index, middle, ring, pinky.
# "dir": DIR / IntagHand; "interhand": InterHand2.6M's MANO joint regressor; "smplx": smplx's table.
TIP_VERTEX_SETS: dict[str, tuple[int, int, int, int, int]] = {
    "dir": (745, 317, 444, 556, 673),
    "interhand": (745, 317, 445, 556, 673),
    "smplx": (744, 320, 443, 554, 671),
}


# Sets that differ between the hands: (right ids, left ids). "dir_official": what the official DIR
# model (its manopth-derived layer) uses for its 21 joints; the left middle tip is vertex 445.
HAND_TIP_VERTEX_SETS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "dir_official": ((745, 317, 444, 556, 673), (745, 317, 445, 556, 673)),
}


def hand_tip_vertices(tips) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(right ids, left ids): a per-hand set name, a shared set name / 5 ids, or a pair of 5 ids."""
    if isinstance(tips, str) and tips in HAND_TIP_VERTEX_SETS:
        return HAND_TIP_VERTEX_SETS[tips]
    if isinstance(tips, str):
        if tips not in TIP_VERTEX_SETS:
            raise ValueError(f"unknown tip vertex set {tips!r}; choose one of "
                             f"{sorted(TIP_VERTEX_SETS) + sorted(HAND_TIP_VERTEX_SETS)}")
        return TIP_VERTEX_SETS[tips], TIP_VERTEX_SETS[tips]
    items = tuple(tips)
    if len(items) == 2 and all(not isinstance(t, (int, np.integer)) for t in items):
        return tip_vertices(tuple(items[0])), tip_vertices(tuple(items[1]))
    ids = tip_vertices(items)
    return ids, ids


def tip_vertices(tips: str | tuple[int, ...]) -> tuple[int, ...]:
    """The tip vertex ids of a named set, or a given 5-tuple checked for length."""
    if isinstance(tips, str):
        if tips not in TIP_VERTEX_SETS:
            raise ValueError(f"unknown tip vertex set {tips!r}; choose one of {sorted(TIP_VERTEX_SETS)}")
        return TIP_VERTEX_SETS[tips]
    ids = tuple(int(i) for i in tips)
    if len(ids) != 5:
        raise ValueError(f"tips must name a set or give 5 vertex ids (thumb..pinky), got {ids}")
    return ids


def _check_joint_axis(x: np.ndarray, axis: int, size: int, what: str) -> None:
    if x.ndim < -axis or x.shape[axis] != size:
        raise ValueError(f"{what}: expected {size} joints on axis {axis}, got shape {tuple(x.shape)}")


def interhand_to_hands(x, joint_axis: int = -2):
    """(..., 42, C) InterHand2.6M two-hand array -> (..., 2, 21, C) wrist-first, right first.

    Works for numpy arrays and torch tensors; `joint_axis` counts from the end (-2 for (..., 42, C),
    -1 for per-joint flags such as joint_valid (..., 42)).
    """
    if joint_axis >= 0:
        raise ValueError("joint_axis must be negative (counted from the end)")
    _check_joint_axis(x, joint_axis, INTERHAND_HANDS * NUM_JOINTS, "interhand_to_hands")
    shape = tuple(x.shape)
    ax = len(shape) + joint_axis
    split = x.reshape(shape[:ax] + (INTERHAND_HANDS, NUM_JOINTS) + shape[ax + 1:])
    return _take(split, INTERHAND_TO_WRIST_FIRST, ax + 1)


def hands_to_interhand(x, joint_axis: int = -2):
    """(..., 2, 21, C) wrist-first hands (right first) -> (..., 42, C) InterHand2.6M order."""
    if joint_axis >= 0:
        raise ValueError("joint_axis must be negative (counted from the end)")
    _check_joint_axis(x, joint_axis, NUM_JOINTS, "hands_to_interhand")
    _check_joint_axis(x, joint_axis - 1, INTERHAND_HANDS, "hands_to_interhand (hand axis)")
    shape = tuple(x.shape)
    ax = len(shape) + joint_axis
    reordered = _take(x, WRIST_FIRST_TO_INTERHAND, ax)
    return reordered.reshape(shape[: ax - 1] + (INTERHAND_HANDS * NUM_JOINTS,) + shape[ax + 1:])


def _take(x, index: np.ndarray, axis: int):
    """Gather `index` along `axis` for numpy arrays and torch tensors alike."""
    if isinstance(x, np.ndarray):
        return np.take(x, index, axis=axis)
    import torch

    return torch.index_select(x, axis, torch.as_tensor(index, device=x.device))

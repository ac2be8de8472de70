"""Joint orders of STB and RHD and their conversion to the project's wrist-first order.

Names follow `mano.joints`: `{finger}{k}`, k = 1 (MCP; CMC for the thumb) to 4 (tip), plus the
root joint. Orders (the within-hand order of the 21 joints of one annotation):

- `stb` (native STB, inferred for the parsed STB_*.json; docs/STB_RHD.md): 0 palm centre, then
  pinky, ring, middle, index, thumb, each MCP -> tip.
- `rhd` (native RHD, inferred for the parsed RHD_*.json): 0 wrist, then thumb, index, middle,
  ring, pinky, each tip -> MCP.
- `wrist_first` (the project's order): 0 wrist, thumb .. pinky, each MCP -> tip.

Slot 0 of a converted hand is the hand's root. For STB it holds the palm centre (`stb_root: palm`,
what the official evaluation aligns on) or a wrist estimated as `2 palm - middle MCP`
(`stb_root: wrist`; the palm centre taken as the midpoint of wrist and middle MCP, inferred).
"""

from __future__ import annotations

import numpy as np

from dir_net.errors import ConfigError
from mano.joints import FINGERS, MIDDLE_MCP, NUM_JOINTS, WRIST_FIRST_NAMES

PALM = "palm"
STB_NAMES: tuple[str, ...] = (PALM,) + tuple(
    f"{finger}{k}" for finger in ("pinky", "ring", "middle", "index", "thumb") for k in (1, 2, 3, 4)
)
RHD_NAMES: tuple[str, ...] = ("wrist",) + tuple(f"{finger}{k}" for finger in FINGERS for k in (4, 3, 2, 1))
JOINT_ORDERS: dict[str, tuple[str, ...]] = {"stb": STB_NAMES, "rhd": RHD_NAMES, "wrist_first": WRIST_FIRST_NAMES}
DEFAULT_ORDER = {"stb": "stb", "rhd": "rhd"}  # dataset -> the order its parsed json is assumed to use
STB_ROOTS = ("palm", "wrist")


def _root_name(names: tuple[str, ...]) -> str:
    return PALM if PALM in names else "wrist"


def to_wrist_first_index(order: str) -> np.ndarray:
    """(21,) indices into a hand in `order` giving the wrist-first order (the root into slot 0)."""
    names = JOINT_ORDERS[order]
    root = _root_name(names)
    return np.array([names.index(root if n == "wrist" else n) for n in WRIST_FIRST_NAMES], np.int64)


def from_wrist_first_index(order: str) -> np.ndarray:
    """(21,) indices into a wrist-first hand giving `order` (slot 0 goes to the order's root)."""
    names = JOINT_ORDERS[order]
    root = _root_name(names)
    return np.array([WRIST_FIRST_NAMES.index("wrist" if n == root else n) for n in names], np.int64)


def resolve_order(dataset: str, order: str) -> str:
    """The joint order of `dataset`'s json: `auto` -> the dataset's native order."""
    if order == "auto":
        return DEFAULT_ORDER[dataset]
    if order not in JOINT_ORDERS:
        raise ConfigError(f"key 'data.stb_rhd.joint_order' must be auto or one of {list(JOINT_ORDERS)}, got {order!r}")
    return order


def check_stb_root(stb_root: str) -> str:
    if stb_root not in STB_ROOTS:
        raise ConfigError(f"key 'data.stb_rhd.stb_root' must be one of {list(STB_ROOTS)}, got {stb_root!r}")
    return stb_root


def hand_to_wrist_first(joints: np.ndarray, order: str, stb_root: str = "palm") -> np.ndarray:
    """(..., 21, C) joints of one hand in `order` -> (..., 21, C) wrist-first.

    For an order whose root is the palm centre, stb_root='wrist' replaces slot 0 by the estimated
    wrist 2 palm - middle MCP (C = 3 or 2; works for camera mm and pixels alike)."""
    if joints.shape[-2] != NUM_JOINTS:
        raise ValueError(f"expected {NUM_JOINTS} joints on axis -2, got shape {joints.shape}")
    out = np.take(joints, to_wrist_first_index(order), axis=-2)
    if stb_root == "wrist" and PALM in JOINT_ORDERS[order]:
        out = out.copy()
        out[..., 0, :] = 2.0 * out[..., 0, :] - out[..., MIDDLE_MCP, :]
    return out


def flags_to_wrist_first(valid: np.ndarray, order: str, stb_root: str = "palm") -> np.ndarray:
    """(..., 21) per-joint flags in `order` -> wrist-first; an estimated wrist needs palm and middle MCP."""
    out = np.take(valid, to_wrist_first_index(order), axis=-1)
    if stb_root == "wrist" and PALM in JOINT_ORDERS[order]:
        out = out.copy()
        out[..., 0] = out[..., 0] * out[..., MIDDLE_MCP]
    return out


def wrist_first_to_hand(joints: np.ndarray, order: str) -> np.ndarray:
    """(..., 21, C) wrist-first -> (..., 21, C) in `order` (slot 0 becomes the order's root as is)."""
    return np.take(joints, from_wrist_first_index(order), axis=-2)

"""Stand-alone MANO hand model tools: joint orders, a chumpy-free .pkl -> .npz converter, a
two-hand layer over smplx.MANO and a synthetic MANO-format hand used when MANO is not available.

`mano.joints` (numpy only) is imported eagerly; the torch layer is imported on first use of
`load_hands`, `TwoHands`, `OneHand` or `HandsOutput`.
"""

from __future__ import annotations

from typing import Any

from . import joints
from .joints import TIP_VERTEX_SETS

_LAYER_NAMES = ("load_hands", "TwoHands", "OneHand", "HandsOutput")

__all__ = ["joints", "TIP_VERTEX_SETS", *_LAYER_NAMES]


def __getattr__(name: str) -> Any:
    if name in _LAYER_NAMES:
        from . import layer

        return getattr(layer, name)
    raise AttributeError(f"module 'mano' has no attribute {name!r}")

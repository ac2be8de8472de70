"""Stand-alone evaluation toolkit for two-hand 3D pose and mesh reconstruction.

Depends on numpy only (matplotlib for `eval.plots`). Units: millimetres, pixels; hand axis
0 = right, 1 = left; joints in the wrist-first order. See docs/EVALUATION.md.
"""

from eval.evaluator import METRIC_NAMES, Evaluator, PckCurve, evaluate, pck_curve, score
from eval.io import InputError, load_npz, match_rows, save_npz
from eval.keypoints2d import KEYPOINT_PROTOCOLS, Keypoints2DEvaluator, evaluate_keypoints2d
from eval.protocols import PROTOCOLS, Protocol, get_protocol

__all__ = [
    "KEYPOINT_PROTOCOLS", "Keypoints2DEvaluator", "METRIC_NAMES", "PROTOCOLS", "Evaluator", "InputError",
    "PckCurve", "Protocol", "evaluate", "evaluate_keypoints2d", "get_protocol", "load_npz", "match_rows",
    "pck_curve", "save_npz", "score",
]

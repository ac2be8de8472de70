"""2D hand keypoint evaluation: protocol `interhand2d` (the mmpose InterHand2D numbers).

One row per hand crop (top-down, GT boxes): a frame's two hands are two rows with the same
annotation id and `hands` 0 (right) / 1 (left). Interchange (.npz, original-image pixels):

| field | shape | file | meaning |
| ids | (N,) int | both | annotation ids; (id, hand) pairs are unique |
| hands | (N,) int | both | 0 right, 1 left |
| keypoints | (N, 21, 2) float | both | px in the original image, wrist-first |
| keypoint_valid | (N, 21) bool or 0/1 | gt | annotated joints (only these count) |
| bbox_size | (N,) float > 0 | gt | longest side of the tight box around the valid GT joints, px |

Metrics (as mmpose computes them):
- pck: share of valid joints with error < pck_ratio x bbox_size (0.2), averaged per joint (the
  mean over the 21 joints of each joint's rate over the rows where it is valid);
- auc: the mean of the per-joint-averaged PCK at absolute thresholds i x 30 / 20 px, i = 0..19,
  i.e. mmpose's 20-step area over 0-30 px (a left Riemann sum, a little under the trapezoid area);
- epe: mean error in px over every valid joint of every row (pooled).
Errors are compared with "<" as mmpose does. With annotation id lists (`aid_human_annot_*.txt`,
`aid_machine_annot_*.txt`) the metrics are also reported for the H, M and H+M subsets under the
names `interhand2d_h`, `interhand2d_m` and `interhand2d_hm`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from eval.io import Arrays, InputError, write_json
from mano.joints import NUM_JOINTS, WRIST

KEYPOINT_METRICS = ("pck", "auc", "epe")
UNITS_2D = {"pck": "", "auc": "", "epe": "px"}
SUBSET_SUFFIX = {"H": "_h", "M": "_m", "H+M": "_hm"}
MMPOSE_MIN_VALID = 12  # mmpose keeps a hand with a valid root and more than 11 valid joints
_FIELDS = {"pred": ("ids", "hands", "keypoints"),
           "gt": ("ids", "hands", "keypoints", "keypoint_valid", "bbox_size")}
_ROW_SHAPES = {"ids": (), "hands": (), "keypoints": (NUM_JOINTS, 2), "keypoint_valid": (NUM_JOINTS,),
               "bbox_size": ()}


@dataclass(frozen=True)
class Keypoints2DProtocol:
    name: str
    pck_ratio: float = 0.2  # PCK threshold as a fraction of bbox_size
    auc_max_px: float = 30.0
    auc_steps: int = 20
    reported_by: str = ""

    def auc_thresholds(self) -> np.ndarray:
        """(T,) px: 0, max/T, ..., max (T - 1)/T."""
        return np.arange(self.auc_steps) * (self.auc_max_px / self.auc_steps)


KEYPOINT_PROTOCOLS: dict[str, Keypoints2DProtocol] = {
    "interhand2d": Keypoints2DProtocol(
        "interhand2d", reported_by="mmpose InterHand2D (SimpleBaseline2D ResNet-50, PCK@0.2 / AUC / EPE)"),
}


# --- input -------------------------------------------------------------------------------------

def validate_keypoints(raw: Mapping[str, object], role: str, source: str) -> Arrays:
    """Check fields, shapes, dtypes and values of a 2D prediction ("pred") or GT ("gt") set."""
    if role not in _FIELDS:
        raise ValueError(f"role must be 'pred' or 'gt', got {role!r}")
    missing = [f for f in _FIELDS[role] if f not in raw]
    if missing:
        raise InputError(f"{source}: missing field(s) {missing}; a 2D {role} file needs {list(_FIELDS[role])}")
    arrays = {f: np.asarray(raw[f].detach().cpu().numpy() if hasattr(raw[f], "detach") else raw[f])
              for f in _FIELDS[role]}
    rows = arrays["ids"].shape[0] if arrays["ids"].ndim == 1 else -1
    if rows == 0:
        raise InputError(f"{source}: no rows (field 'ids' has shape (0,)); write at least one hand")
    for field, array in arrays.items():
        expected = (rows,) + _ROW_SHAPES[field]
        if array.shape != expected:
            raise InputError(f"{source}: field '{field}' has shape {array.shape}; expected "
                             f"(N{''.join(f', {d}' for d in expected[1:])}) with N = {rows} rows like 'ids'")
        arrays[field] = _convert(field, array, source)
    _check_values(arrays, source)
    return arrays


def _convert(field: str, array: np.ndarray, source: str) -> np.ndarray:
    if field in ("ids", "hands"):
        if not np.issubdtype(array.dtype, np.integer):
            raise InputError(f"{source}: field '{field}' must hold integers, got {array.dtype}")
        return array.astype(np.int64)
    if field == "keypoint_valid":
        if array.dtype != np.bool_ and not np.isin(array, (0, 1)).all():
            raise InputError(f"{source}: field 'keypoint_valid' must hold booleans or 0/1")
        return array.astype(bool)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(f"{source}: field '{field}' must hold real numbers, got {array.dtype}")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(1)
    if bad.any():
        raise InputError(f"{source}: field '{field}' has NaN/inf in {int(bad.sum())} rows; write finite "
                         "values (zeros for unannotated joints, marked in keypoint_valid)")
    return array


def _check_values(arrays: Arrays, source: str) -> None:
    if not np.isin(arrays["hands"], (0, 1)).all():
        raise InputError(f"{source}: field 'hands' must be 0 (right) or 1 (left)")
    keys = row_keys(arrays)
    if len(np.unique(keys)) != len(keys):
        raise InputError(f"{source}: (ids, hands) pairs repeat; each hand of an annotation needs one row")
    if "bbox_size" in arrays and (arrays["bbox_size"] <= 0).any():
        raise InputError(f"{source}: field 'bbox_size' must be positive (longest side of the joint box, px)")


def row_keys(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N,) int64 key of each (id, hand) row."""
    return arrays["ids"] * 2 + arrays["hands"]


def load_keypoints_npz(path: str | Path, role: str) -> Arrays:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None
    return validate_keypoints(raw, role, str(path))


def match_keypoint_rows(pred: Arrays, gt: Arrays, pred_source: str, gt_source: str) -> tuple[Arrays, list[str]]:
    """Reorder prediction rows to the GT (id, hand) rows; every GT row needs a prediction."""
    pred_keys, gt_keys = row_keys(pred), row_keys(gt)
    order = np.argsort(pred_keys)
    where = np.minimum(np.searchsorted(pred_keys[order], gt_keys), max(len(order) - 1, 0))
    found = pred_keys[order][where] == gt_keys if len(order) else np.zeros(len(gt_keys), bool)
    if not found.all():
        lost = gt_keys[~found][:5]
        shown = ", ".join(f"{k // 2}/{'right' if k % 2 == 0 else 'left'}" for k in lost.tolist())
        raise InputError(f"{pred_source}: no prediction for {int((~found).sum())} of {len(gt_keys)} "
                         f"ground-truth hands in {gt_source}, e.g. {shown}")
    extra = len(pred_keys) - len(gt_keys)
    notes = [f"{pred_source}: ignored {extra} predictions not in {gt_source}"] if extra else []
    return {k: v[order[where]] for k, v in pred.items()}, notes


def mmpose_dropped(gt: Arrays) -> np.ndarray:
    """(N,) bool: ground-truth hands mmpose's InterHand2D loader leaves out: the root (wrist) is
    not annotated (mmpose then marks every joint invalid) or at most 11 joints are annotated."""
    valid = gt["keypoint_valid"]  # (N, 21) wrist-first
    return ~valid[:, WRIST] | (valid.sum(axis=1) < MMPOSE_MIN_VALID)


def read_ids(path: str | Path) -> np.ndarray:
    """Annotation ids, one per line ('#' comments) -> sorted unique int64."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: id list not found")
    ids = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                ids.append(int(text))
            except ValueError:
                raise InputError(f"{path}:{n}: expected an annotation id (integer), got {text!r}") from None
    return np.unique(np.asarray(ids, np.int64))


# --- metrics -----------------------------------------------------------------------------------

class _Stats:
    """Per-joint hit counts (PCK, every AUC threshold), valid counts, pooled error sum."""

    def __init__(self, protocol: Keypoints2DProtocol) -> None:
        self.protocol = protocol
        self.thresholds = protocol.auc_thresholds()
        self.pck_hits = np.zeros(NUM_JOINTS, np.int64)
        self.auc_hits = np.zeros((len(self.thresholds), NUM_JOINTS), np.int64)
        self.count = np.zeros(NUM_JOINTS, np.int64)
        self.error_sum = 0.0

    def add(self, errors: np.ndarray, valid: np.ndarray, bbox_size: np.ndarray) -> None:
        """errors (N, 21) px, valid (N, 21) bool, bbox_size (N,) px."""
        self.count += valid.sum(0)
        self.pck_hits += (valid & (errors < self.protocol.pck_ratio * bbox_size[:, None])).sum(0)
        self.auc_hits += (valid & (errors[None] < self.thresholds[:, None, None])).sum(1)
        self.error_sum += float(errors[valid].sum())

    def compute(self) -> dict[str, float]:
        seen = self.count > 0
        if not seen.any():
            return {}
        pck_curve = (self.auc_hits[:, seen] / self.count[seen]).mean(1)  # (T,)
        return {
            "pck": float(np.mean(self.pck_hits[seen] / self.count[seen])),
            "auc": float(pck_curve.mean()),
            "epe": self.error_sum / float(self.count.sum()),
        }


class Keypoints2DEvaluator:
    """Streaming evaluation of row-matched 2D batches under one protocol (and H / M / H+M)."""

    def __init__(self, protocol: str | Keypoints2DProtocol = "interhand2d",
                 human_ids: np.ndarray | None = None, machine_ids: np.ndarray | None = None) -> None:
        self.protocol = get_keypoint_protocol(protocol)
        self.subsets: dict[str, np.ndarray] = {}
        if human_ids is not None:
            self.subsets["H"] = np.asarray(human_ids, np.int64)
        if machine_ids is not None:
            self.subsets["M"] = np.asarray(machine_ids, np.int64)
        if len(self.subsets) == 2:
            self.subsets["H+M"] = np.union1d(self.subsets["H"], self.subsets["M"])
        self._stats = {name: _Stats(self.protocol) for name in ["all", *self.subsets]}

    def update(self, pred: Mapping[str, object], gt: Mapping[str, object],
               pred_source: str = "prediction batch", gt_source: str = "ground-truth batch") -> None:
        pred_arr = validate_keypoints(pred, "pred", pred_source)
        gt_arr = validate_keypoints(gt, "gt", gt_source)
        if not np.array_equal(row_keys(pred_arr), row_keys(gt_arr)):
            raise InputError(f"{pred_source}: (ids, hands) differ from {gt_source} row by row; "
                             "match rows first (eval.keypoints2d.match_keypoint_rows)")
        errors = np.linalg.norm(pred_arr["keypoints"] - gt_arr["keypoints"], axis=-1)  # (N, 21) px
        valid, size = gt_arr["keypoint_valid"], gt_arr["bbox_size"]
        self._stats["all"].add(errors, valid, size)
        for name, ids in self.subsets.items():
            rows = np.isin(gt_arr["ids"], ids)
            self._stats[name].add(errors[rows], valid[rows], size[rows])

    def compute(self) -> dict[str, dict[str, float]]:
        """{protocol name (+ subset suffix): {metric: value}}; subsets without rows are absent."""
        out = {}
        for name, stats in self._stats.items():
            values = stats.compute()
            if values:
                out[self.protocol.name + SUBSET_SUFFIX.get(name, "")] = values
        return out


def get_keypoint_protocol(protocol: str | Keypoints2DProtocol) -> Keypoints2DProtocol:
    if isinstance(protocol, Keypoints2DProtocol):
        return protocol
    if protocol not in KEYPOINT_PROTOCOLS:
        raise ValueError(f"unknown 2D protocol {protocol!r}; choose one of {', '.join(KEYPOINT_PROTOCOLS)}")
    return KEYPOINT_PROTOCOLS[protocol]


def evaluate_keypoints2d(pred: Mapping[str, object], gt: Mapping[str, object],
                         protocol: str | Keypoints2DProtocol = "interhand2d", *,
                         human_ids: np.ndarray | None = None, machine_ids: np.ndarray | None = None,
                         pred_source: str = "predictions", gt_source: str = "ground truth"
                         ) -> dict[str, dict[str, float]]:
    """Match rows by (id, hand), then score; returns {name: {metric: value}}."""
    pred_arr = validate_keypoints(pred, "pred", pred_source)
    gt_arr = validate_keypoints(gt, "gt", gt_source)
    pred_arr, _ = match_keypoint_rows(pred_arr, gt_arr, pred_source, gt_source)
    evaluator = Keypoints2DEvaluator(protocol, human_ids, machine_ids)
    evaluator.update(pred_arr, gt_arr, pred_source, gt_source)
    return evaluator.compute()


def format_keypoint_table(results: Mapping[str, Mapping[str, float]]) -> str:
    names = list(results)
    header = ["metric", "unit", *names]
    rows = [[m, UNITS_2D[m], *(_fmt(m, results[n].get(m)) for n in names)] for m in KEYPOINT_METRICS]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if UNITS_2D[metric] == "" else f"{value:.2f}"


# --- command line ------------------------------------------------------------------------------

def add_score2d_parser(subparsers: argparse._SubParsersAction,
                       guard: Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]
                       ) -> None:
    """`score2d`: score 2D keypoint files (protocol interhand2d); `guard` maps InputError to exit 2."""
    p = subparsers.add_parser("score2d", help="score 2D keypoint predictions (PCK@0.2, AUC 0-30 px, EPE)")
    p.add_argument("--pred", required=True, help="2D predictions .npz (ids, hands, keypoints px)")
    p.add_argument("--gt", required=True, help="2D ground truth .npz (+ keypoint_valid, bbox_size)")
    p.add_argument("--protocol", default="interhand2d", choices=list(KEYPOINT_PROTOCOLS))
    p.add_argument("--human-ids", help="aid_human_annot_{split}.txt: also report the H subset")
    p.add_argument("--machine-ids", help="aid_machine_annot_{split}.txt: also report M (and H+M with both)")
    p.add_argument("--json", help="also write {name: {metric: value}} to this file")
    p.add_argument("--mmpose-rules", action="store_true",
                   help="leave out ground-truth hands mmpose drops (root not annotated, or <= 11 "
                        "annotated joints); without it such hands are scored and a warning counts them")
    p.set_defaults(func=guard(run_score2d))


def run_score2d(args: argparse.Namespace) -> int:
    pred = load_keypoints_npz(args.pred, "pred")
    gt = _mmpose_rows(load_keypoints_npz(args.gt, "gt"), args.gt, args.mmpose_rules)
    human = read_ids(args.human_ids) if args.human_ids else None
    machine = read_ids(args.machine_ids) if args.machine_ids else None
    for note in match_keypoint_rows(pred, gt, args.pred, args.gt)[1]:
        print(f"eval: note: {note}", file=sys.stderr)
    results = evaluate_keypoints2d(pred, gt, args.protocol, human_ids=human, machine_ids=machine,
                                   pred_source=args.pred, gt_source=args.gt)
    print(format_keypoint_table(results))
    if args.json:
        write_json(args.json, results)
    return 0


def _mmpose_rows(gt: Arrays, source: str, apply: bool) -> Arrays:
    """GT hands mmpose would drop: left out with a note when `apply`, else counted in a warning."""
    dropped = mmpose_dropped(gt)
    if not dropped.any():
        return gt
    what = (f"{int(dropped.sum())} of {len(dropped)} ground-truth hands in {source} (root not annotated "
            f"or <= {MMPOSE_MIN_VALID - 1} annotated joints)")
    if not apply:
        print(f"eval: warning: {what} are scored here but mmpose leaves them out, so the scores differ "
              "from mmpose's; pass --mmpose-rules to apply its rules", file=sys.stderr)
        return gt
    if dropped.all():
        raise InputError(f"{source}: every ground-truth hand is left out by --mmpose-rules; nothing to score")
    print(f"eval: note: dropped {what}, as mmpose does", file=sys.stderr)
    return {k: v[~dropped] for k, v in gt.items()}

"""Predictions files (docs/EVALUATION.md interchange format) read for rendering, and their
placement in the camera frame of the image.

Rows are looked up by annotation id. Millimetres in the file, metres here. A prediction may be
absolute (camera frame) or root-relative (right wrist at the origin, as DIR writes it); `place`
moves a root-relative one into the camera frame:

- `camera`:  the joints already are camera-frame coordinates; used as they are;
- `fit2d`:   one translation for both hands, chosen so that the joints project onto the file's
             `joints_2d` with the evaluation crop's intrinsics (linear least squares, reweighted
             to the reprojection error); the predicted relative 3D of the hands is kept;
- `gt-root`: the wrist of the first hand present in both is put on the ground-truth wrist;
- `auto`:    `camera` for absolute rows, else `fit2d` when `joints_2d` exists, else `gt-root`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dir_net.errors import DirNetError

log = logging.getLogger(__name__)

MM_TO_M = 1e-3
PLACEMENTS = ("auto", "camera", "fit2d", "gt-root")
_ORIGIN_TOL_M = 1e-3  # a right wrist closer than this to the origin marks a root-relative row
_MIN_DEPTH_M = 0.01  # placed points must lie at least this far in front of the camera


@dataclass
class PredictedHands:
    """One row of a predictions file, metres."""

    ann_id: int
    joints: np.ndarray  # (2, 21, 3) m
    verts: np.ndarray | None  # (2, V, 3) m
    joints_2d: np.ndarray | None  # (2, 21, 2) px in the evaluation crop
    hand_prob: np.ndarray | None  # (2,)

    def present(self, fallback: np.ndarray) -> np.ndarray:
        """(2,) bool: hand_prob > 0.5, or `fallback` (the annotated hands) without hand_prob."""
        if self.hand_prob is not None:
            return self.hand_prob > 0.5
        return np.asarray(fallback, bool)

    def is_absolute(self) -> bool:
        """Camera-frame coordinates: the right wrist is off the origin and every joint in front."""
        return bool(np.linalg.norm(self.joints[0, 0]) > _ORIGIN_TOL_M and (self.joints[..., 2] > 0).all())


class PredictionFile:
    """A predictions .npz validated with eval.io (fields, shapes, units); rows by annotation id."""

    def __init__(self, path: str | Path) -> None:
        from eval.io import InputError, load_npz

        self.path = Path(path)
        try:
            self.arrays = load_npz(self.path, "pred", check_finite=False)
        except InputError as exc:
            raise DirNetError(str(exc)) from None
        self.ids = self.arrays["ids"].astype(np.int64)
        self._row = {int(i): r for r, i in enumerate(self.ids)}
        self.crop = self._read_crop()

    def _read_crop(self) -> dict[str, Any]:
        """{dotted config key: value} of the crop the predictions were made on (the file's `crop`
        field, written by `dirnet eval`; dir_net.engine.inference.crop_convention), or {} for a
        file without it."""
        with np.load(self.path, allow_pickle=False) as npz:
            if "crop" not in npz.files:
                return {}
            text = str(npz["crop"])
        try:
            crop = json.loads(text)
        except json.JSONDecodeError:
            crop = None
        if not isinstance(crop, dict):
            raise DirNetError(f"{self.path}: field 'crop' is not a JSON object of config keys ({text[:60]!r}); "
                              "remove the field or re-run `dirnet eval`")
        return crop

    @property
    def has_verts(self) -> bool:
        return "verts" in self.arrays

    @property
    def faces(self) -> np.ndarray | None:
        """(2, F, 3) int64 from the file's `faces` field, or None."""
        faces = self.arrays.get("faces")
        return None if faces is None else np.asarray(faces, np.int64)

    def check_ids(self, ids: Sequence[int]) -> None:
        missing = [i for i in ids if int(i) not in self._row]
        if missing:
            raise DirNetError(
                f"{self.path}: field 'ids' has no row for annotation id(s) {_few(missing)}; "
                f"the file holds {len(self.ids)} ids, e.g. {_few(self.ids.tolist())}")

    def row(self, ann_id: int) -> PredictedHands:
        self.check_ids([ann_id])
        r = self._row[int(ann_id)]
        hands = PredictedHands(int(ann_id), self._field("joints", r, MM_TO_M), self._field("verts", r, MM_TO_M),
                               self._field("joints_2d", r), self._field("hand_prob", r))
        for name in ("joints", "verts", "joints_2d", "hand_prob"):
            value = getattr(hands, name)
            if value is not None and not np.isfinite(value).all():
                raise DirNetError(f"{self.path}: field '{name}' holds NaN/inf for annotation id {ann_id}")
        return hands

    def _field(self, name: str, row: int, scale: float = 1.0) -> np.ndarray | None:
        if name not in self.arrays:
            return None
        return np.asarray(self.arrays[name][row], np.float64) * scale

    def default_ids(self, limit: int) -> list[int]:
        """`limit` ids spread evenly over the file (all when it holds fewer)."""
        n = len(self.ids)
        if limit <= 0 or limit >= n:
            return [int(i) for i in self.ids]
        picks = np.unique(np.linspace(0, n - 1, limit).round().astype(int))
        return [int(self.ids[i]) for i in picks]


def fit_translation(points: np.ndarray, uv: np.ndarray, K: np.ndarray, iterations: int = 3) -> np.ndarray | None:
    """Translation t (3,) so that `K (points + t)` projects onto `uv`, or None if ill-posed.

    points (N, 3) metres, uv (N, 2) px. Each point gives two equations linear in t,
    `fx tx + (cx - u) tz = (u - cx) Z - fx X` (and the same in y); rows are reweighted by the
    placed depth so the solution minimises the reprojection error.
    """
    P = np.asarray(points, np.float64).reshape(-1, 3)
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    if len(P) < 2:
        return None
    (fx, _, cx), (_, fy, cy) = K[0], K[1]
    du, dv = uv[:, 0] - cx, uv[:, 1] - cy
    zeros, ones = np.zeros(len(P)), np.ones(len(P))
    A = np.concatenate([np.stack([fx * ones, zeros, -du], 1), np.stack([zeros, fy * ones, -dv], 1)])
    b = np.concatenate([du * P[:, 2] - fx * P[:, 0], dv * P[:, 2] - fy * P[:, 1]])
    weights = np.ones(len(P))
    t = None
    for _ in range(iterations):
        w = np.concatenate([weights, weights])[:, None]
        t, *_ = np.linalg.lstsq(A * w, b * w[:, 0], rcond=None)
        depth = P[:, 2] + t[2]
        if (depth < _MIN_DEPTH_M).any():
            return None
        weights = 1.0 / depth
    return t


def place(pred: PredictedHands, present: np.ndarray, mode: str, K_crop: np.ndarray,
          gt_joints: np.ndarray, gt_valid: np.ndarray) -> tuple[np.ndarray, str]:
    """Translation (3,) metres that puts the prediction into the camera frame, and the mode used.

    present (2,) predicted hands; K_crop (3, 3) of the crop `joints_2d` refers to; gt_joints
    (2, 21, 3) m camera frame with gt_valid (2, 21).
    """
    if mode not in PLACEMENTS:
        raise DirNetError(f"--place must be one of {PLACEMENTS}, got {mode!r}")
    if not np.any(present):
        return np.zeros(3), "none"
    if mode == "auto":
        mode = "camera" if pred.is_absolute() else ("fit2d" if pred.joints_2d is not None else "gt-root")
    if mode == "camera":
        return np.zeros(3), mode
    if mode == "fit2d":
        if pred.joints_2d is None:
            raise DirNetError(f"annotation id {pred.ann_id}: --place fit2d needs the field 'joints_2d' "
                              "in the predictions file; use --place gt-root")
        t = fit_translation(pred.joints[present], pred.joints_2d[present], K_crop)
        if t is not None:
            return t, mode
        log.warning("annotation id %d: no translation puts the joints in front of the camera along "
                    "joints_2d; placing it at the ground-truth wrist", pred.ann_id)
    return _gt_root_translation(pred, present, gt_joints, gt_valid), "gt-root"


def _gt_root_translation(pred: PredictedHands, present: np.ndarray, gt_joints: np.ndarray,
                         gt_valid: np.ndarray) -> np.ndarray:
    for h in range(2):
        if present[h] and gt_valid[h, 0]:
            return gt_joints[h, 0] - pred.joints[h, 0]
    raise DirNetError(f"annotation id {pred.ann_id}: the prediction is root-relative and no predicted hand "
                      "has an annotated wrist to place it at; pass --place camera or add 'joints_2d'")


def _few(values: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(int(v)) for v in list(values)[:limit])
    return shown + (", ..." if len(values) > limit else "")

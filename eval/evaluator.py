"""Streaming evaluation: add batches of row-matched predictions and ground truth, then compute.

Only sufficient statistics are kept (sums and counts per hand and joint/vertex, PCK histograms,
handedness scores), so memory does not grow with the number of vertices times samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from eval import metrics
from eval.io import Arrays, InputError, check_pair, match_rows, select_rows, validate
from eval.protocols import PROTOCOLS, Protocol, get_protocol
from eval.volume import ClosedTopology, close_topology, interpenetration_volume
from mano.joints import MIDDLE_MCP, NUM_JOINTS, WRIST

log = logging.getLogger("eval")

METRIC_NAMES = (
    "mpjpe", "mpjpe_single", "mpjpe_interacting", "mpjpe_all", "mpvpe", "mrrpe", "miaa", "auc",
    "handedness_acc", "ap_h", "iv",
)
_CHUNK_ROWS = 1024  # bounds temporaries: 1024 x 2 x 778 x 3 float64 = 38 MB
ZERO_BONE_MM = 1e-6  # a ground-truth reference bone shorter than this cannot give a scale


@dataclass(frozen=True)
class PckCurve:
    thresholds_mm: np.ndarray  # (T,)
    pck: np.ndarray  # (T,) fraction of counted joints with error <= threshold


class _SumCount:
    """Per-(hand, point) sums of errors and counts of counted entries."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None  # (2, K)
        self.count: np.ndarray | None = None  # (2, K)

    def add(self, errors: np.ndarray, mask: np.ndarray) -> None:
        """errors, mask: (N, 2, K)."""
        total = np.where(mask, errors, 0.0).sum(axis=0)
        count = mask.sum(axis=0)
        if self.total is None:
            self.total, self.count = total, count
        else:
            self.total, self.count = self.total + total, self.count + count

    def value(self, averaging: metrics.Averaging) -> float | None:
        if self.total is None:
            return None
        return metrics.average(self.total, self.count, averaging)


class _PckHistogram:
    """For each (hand, joint), counts of counted errors per threshold bin."""

    def __init__(self, thresholds_mm: np.ndarray) -> None:
        self.thresholds = thresholds_mm
        self.bins = np.zeros((2, NUM_JOINTS, len(thresholds_mm) + 1), dtype=np.int64)

    def add(self, errors: np.ndarray, mask: np.ndarray) -> None:
        """errors, mask: (N, 2, 21); bin b = number of thresholds below the error."""
        bins = np.searchsorted(self.thresholds, errors, side="left")  # (N, 2, 21) in 0..T
        slot = np.arange(2 * NUM_JOINTS).reshape(2, NUM_JOINTS) * self.bins.shape[2] + bins
        self.bins += np.bincount(slot[mask], minlength=self.bins.size).reshape(self.bins.shape)

    def curve(self, averaging: metrics.Averaging) -> np.ndarray | None:
        """(T,) PCK: error <= threshold t  <=>  bin <= index of t."""
        count = self.bins.sum(axis=2)
        below = np.cumsum(self.bins, axis=2)[:, :, : len(self.thresholds)]
        values = [metrics.average(below[:, :, t], count, averaging)
                  for t in range(len(self.thresholds))]
        return None if values[0] is None else np.array(values)


class _ProtocolState:
    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.joints = {"all": _SumCount(), "single": _SumCount(), "interacting": _SumCount()}
        self.verts = _SumCount()
        self.miaa = _SumCount()
        self.pck = _PckHistogram(metrics.PCK_THRESHOLDS_MM)
        self.mrrpe_sum = 0.0
        self.mrrpe_count = 0
        self.zero_bone_hands = 0  # counted GT hands with a zero-length reference bone (scaled protocols)
        self.zero_bone_ids: list[int] = []  # the first few of their ids (row numbers without ids)
        self.zero_bone_label = "ids"

    def update(self, pred: Arrays, gt: Arrays, present: np.ndarray) -> None:
        p = self.protocol
        valid = gt.get("joint_valid")
        hands = metrics.counted_hands(p, present, valid)  # (N, 2)
        mask = metrics.joint_mask(p, hands, valid)  # (N, 2, 21)
        if p.scale:
            self._note_zero_bones(gt, hands)
        scale = metrics.hand_scale(pred["joints"], gt["joints"], hands) if p.scale else None
        pred_rel = metrics.root_relative(pred["joints"], pred["joints"], p.root, scale)
        gt_rel = metrics.root_relative(gt["joints"], gt["joints"], p.root)
        errors = metrics.point_errors(pred_rel, gt_rel)  # (N, 2, 21) mm
        self.joints["all"].add(errors, mask)
        if "hand_type" in gt:
            interacting = (gt["hand_type"] == 2)[:, None, None]
            self.joints["single"].add(errors, mask & ~interacting)
            self.joints["interacting"].add(errors, mask & interacting)
        self.pck.add(errors, mask)
        both = hands.all(axis=1)
        rr = metrics.relative_root_errors(pred["joints"], gt["joints"], p.root, pred.get("offset"))
        self.mrrpe_sum += float(rr[both].sum())
        self.mrrpe_count += int(both.sum())
        mesh_hands = hands & gt["verts_valid"] if "verts_valid" in gt else hands  # (N, 2)
        if "verts" in pred and "verts" in gt:
            pred_v = metrics.root_relative(pred["verts"], pred["joints"], p.root, scale)
            gt_v = metrics.root_relative(gt["verts"], gt["joints"], p.root)
            vert_err = metrics.point_errors(pred_v, gt_v)
            self.verts.add(vert_err, np.broadcast_to(mesh_hands[:, :, None], vert_err.shape))
        if "verts_2d" in pred and "verts_2d" in gt:
            err_2d = metrics.point_errors(pred["verts_2d"], gt["verts_2d"])  # (N, 2, V) px
            self.miaa.add(err_2d, np.broadcast_to(mesh_hands[:, :, None], err_2d.shape))

    def _note_zero_bones(self, gt: Arrays, hands: np.ndarray) -> None:
        """Count counted GT hands whose wrist and middle MCP coincide: scaling the prediction to
        that bone shrinks it to a point, so their error is the GT hand's size."""
        joints = gt["joints"]  # (N, 2, 21, 3) mm
        bone = np.linalg.norm(joints[:, :, MIDDLE_MCP] - joints[:, :, WRIST], axis=-1)  # (N, 2) mm
        zero = hands & (bone < ZERO_BONE_MM)
        if zero.any():
            self.zero_bone_hands += int(zero.sum())
            rows = np.flatnonzero(zero.any(axis=1))
            found = gt["ids"][rows] if "ids" in gt else rows
            self.zero_bone_label = "ids" if "ids" in gt else "rows"
            self.zero_bone_ids += found[: max(0, 5 - len(self.zero_bone_ids))].tolist()

    def warnings(self) -> list[str]:
        if not self.zero_bone_hands:
            return []
        return [f"protocol {self.protocol.name}: {self.zero_bone_hands} ground-truth hand(s) have a "
                f"zero-length reference bone (wrist = middle MCP), e.g. {self.zero_bone_label} "
                f"{', '.join(map(str, self.zero_bone_ids))}; the scaled protocol shrinks their "
                "prediction to a point; fix those ground-truth joints or leave the rows out"]

    def compute(self) -> dict[str, float | None]:
        avg = self.protocol.averaging
        out = {
            "mpjpe": self.joints["all"].value(avg),
            "mpvpe": self.verts.value(avg),
            "mrrpe": self.mrrpe_sum / self.mrrpe_count if self.mrrpe_count else None,
            "miaa": self.miaa.value(avg),
        }
        curve = self.pck.curve(avg)
        out["auc"] = None if curve is None else metrics.auc(self.pck.thresholds, curve)
        if self.protocol.subsets:
            out["mpjpe_all"] = out["mpjpe"]
            out["mpjpe_single"] = self.joints["single"].value(avg)
            out["mpjpe_interacting"] = self.joints["interacting"].value(avg)
        return out


class Evaluator:
    """Accumulate row-matched batches under several protocols; `compute()` at the end.

    Batches are dicts with the interchange fields (numpy arrays or CPU tensors, millimetres):
    `pred` needs 'joints' and may have 'verts', 'verts_2d', 'joints_2d', 'hand_prob', 'offset', 'faces';
    `gt` needs 'joints' and may have those (no 'hand_prob') plus 'joint_valid', 'hand_type' and
    'verts_valid' (N, 2): hands with a ground-truth mesh (MPVPE and MIAA count only those).
    Rows correspond by position; when both carry 'ids' they must be equal. Every batch must
    carry the same fields.
    """

    def __init__(self, protocols: Iterable[str | Protocol] | str = tuple(PROTOCOLS),
                 iv: bool = True) -> None:
        names = [protocols] if isinstance(protocols, (str, Protocol)) else list(protocols)
        self.protocols = [get_protocol(p) for p in names]
        self.iv = iv
        self.reset()

    def reset(self) -> None:
        self._states = {p.name: _ProtocolState(p) for p in self.protocols}
        self._fields: tuple[frozenset[str], frozenset[str]] | None = None
        self._correct = 0
        self._frames = 0
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._iv_sum = 0.0
        self._iv_count = 0
        self._topologies: dict[bytes, ClosedTopology] = {}

    def update(self, pred: Mapping[str, object], gt: Mapping[str, object],
               pred_source: str = "prediction batch", gt_source: str = "ground-truth batch"
               ) -> None:
        """Validate one batch pair and add it to the running statistics."""
        self._add(validate(pred, "pred", pred_source), validate(gt, "gt", gt_source),
                  pred_source, gt_source)

    def _add(self, pred_arr: Arrays, gt_arr: Arrays, pred_source: str, gt_source: str) -> None:
        check_pair(pred_arr, gt_arr, pred_source, gt_source)
        fields = (frozenset(pred_arr), frozenset(gt_arr))
        if self._fields is None:
            self._fields = fields
        elif fields != self._fields:
            raise InputError(
                f"{pred_source}: batch fields {sorted(fields[0])} / {sorted(fields[1])} differ "
                f"from the first batch's {sorted(self._fields[0])} / {sorted(self._fields[1])}"
            )
        present = metrics.hand_presence(gt_arr.get("hand_type"), len(gt_arr["joints"]))
        for state in self._states.values():
            try:
                state.update(pred_arr, gt_arr, present)
            except ValueError as exc:
                raise InputError(f"{pred_source}: {exc}") from None
        if "hand_prob" in pred_arr and "hand_type" in gt_arr:
            self._correct += int(metrics.handedness_correct(pred_arr["hand_prob"], present).sum())
            self._frames += len(present)
            self._scores.append(pred_arr["hand_prob"])
            self._labels.append(present)
        faces = pred_arr.get("faces", gt_arr.get("faces"))
        if self.iv and faces is not None and "verts" in pred_arr:
            self._add_iv(pred_arr["verts"], faces, present.all(axis=1))

    def _add_iv(self, verts: np.ndarray, faces: np.ndarray, interacting: np.ndarray) -> None:
        """Interpenetration volume of the predicted meshes on interacting frames."""
        topo_right, topo_left = (self._topology(f) for f in faces)
        for row in np.flatnonzero(interacting):
            self._iv_sum += interpenetration_volume(
                verts[row, 0], topo_right, verts[row, 1], topo_left
            )
            self._iv_count += 1

    def _topology(self, faces: np.ndarray) -> ClosedTopology:
        key = faces.tobytes() + bytes(str(faces.shape), "ascii")
        if key not in self._topologies:
            self._topologies[key] = close_topology(faces)
        return self._topologies[key]

    def compute(self) -> dict[str, dict[str, float]]:
        """protocol name -> metric name -> value; metrics the inputs cannot support are absent."""
        shared: dict[str, float | None] = {}
        if self._frames:
            scores = np.concatenate(self._scores)
            labels = np.concatenate(self._labels)
            shared["handedness_acc"] = self._correct / self._frames
            per_class = [metrics.average_precision(scores[:, h], labels[:, h]) for h in (0, 1)]
            defined = [ap for ap in per_class if ap is not None]
            shared["ap_h"] = float(np.mean(defined)) if defined else None
        if self._iv_count:
            shared["iv"] = self._iv_sum / self._iv_count
        results = {}
        for message in self.warnings():
            log.warning(message)
        for name, state in self._states.items():
            values = {**state.compute(), **shared}
            results[name] = {k: float(values[k]) for k in METRIC_NAMES
                             if values.get(k) is not None}
        return results

    def warnings(self) -> list[str]:
        """One line per problem of the data seen so far (also logged by `compute()` on logger 'eval')."""
        return [m for state in self._states.values() for m in state.warnings()]

    def pck_curves(self) -> dict[str, PckCurve]:
        """protocol name -> PCK curve over 0-50 mm (protocols with counted joints only)."""
        curves = {}
        for name, state in self._states.items():
            pck = state.pck.curve(state.protocol.averaging)
            if pck is not None:
                curves[name] = PckCurve(state.pck.thresholds.copy(), pck)
        return curves


def evaluate(pred: Mapping[str, object], gt: Mapping[str, object],
             protocols: Sequence[str | Protocol] | str = tuple(PROTOCOLS), *, iv: bool = True,
             pred_source: str = "predictions", gt_source: str = "ground truth") -> Evaluator:
    """Match rows by id (when both have 'ids'), evaluate in chunks; returns the Evaluator."""
    pred_arr = validate(pred, "pred", pred_source)
    gt_arr = validate(gt, "gt", gt_source)
    if len(gt_arr["joints"]) == 0:
        raise InputError(f"{gt_source}: no rows to evaluate")
    if "ids" in pred_arr and "ids" in gt_arr:
        pred_arr, _ = match_rows(pred_arr, gt_arr, pred_source, gt_source)
    evaluator = Evaluator(protocols, iv=iv)
    for start in range(0, len(gt_arr["joints"]), _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        evaluator._add(select_rows(pred_arr, rows), select_rows(gt_arr, rows),
                       pred_source, gt_source)
    return evaluator


def score(pred: Mapping[str, object], gt: Mapping[str, object], protocol: str | Protocol,
          *, iv: bool = True) -> dict[str, float]:
    """Metrics of one protocol: metric name -> value (mm, px, cm^3 or fraction)."""
    proto = get_protocol(protocol)
    return evaluate(pred, gt, [proto], iv=iv).compute()[proto.name]


def pck_curve(pred: Mapping[str, object], gt: Mapping[str, object], protocol: str | Protocol
              ) -> PckCurve | None:
    """PCK curve over 0-50 mm of one protocol (None when no joint counts)."""
    proto = get_protocol(protocol)
    return evaluate(pred, gt, [proto], iv=False).pck_curves().get(proto.name)

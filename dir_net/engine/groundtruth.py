"""The ground truth each evaluation protocol is defined on (docs/EVALUATION.md, "Evaluating a checkpoint").

Protocols fall into ground-truth families; each family's rows are built from the batch and every
protocol is scored only on its own family's rows:

- `mano` (the unmasked protocols: wrist_scaled, mcp_scaled, mcp; DIR / IntagHand): joints
  regressed from the NeuralAnnot MANO mesh (the dir pipeline's `joints_3d`, with
  data.dir.joints_from_mano) on interacting frames whose two hands both have a fit (`mano_valid`);
  no `joint_valid` (every joint exists); the GT meshes (`verts`, `verts_2d`) come along.
- `annot` (the masked protocols: moon, the official InterNet's; mmpose): the annotated joint_3d.json joints with
  `joint_valid` (the dir pipeline's `joints_3d_annot` / `joint_valid_annot`; `joints_3d` /
  `joint_valid` of pipelines without MANO), on every frame (single-hand and interacting).
- `hand2d` (2D keypoint protocols): the per-hand rows of the model's `eval_rows`.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from dir_net.errors import ConfigError

log = logging.getLogger(__name__)

Rows = dict[str, np.ndarray]
M_TO_MM = 1000.0

MANO, ANNOT, HAND2D = "mano", "annot", "hand2d"
DESCRIPTIONS = {
    MANO: "joints regressed from the NeuralAnnot MANO meshes, interacting frames with both MANO fits, no masking",
    ANNOT: "annotated joint_3d.json joints with joint_valid, every frame",
    HAND2D: "annotated 2D keypoints per hand (keypoint_valid)",
}
# `eval run` with an `annot` protocol selects every frame (the data.* keys relaxed to these values).
_ANNOT_FRAMES = {"hand_types": "all", "require_mano": False}


def family_of(protocol: str) -> str:
    """The ground-truth family of a protocol: masked 3D protocols use the annotated joints
    (moon), unmasked ones the MANO-regressed joints, 2D keypoint protocols per-hand rows."""
    from eval.keypoints2d import KEYPOINT_PROTOCOLS
    from eval.protocols import get_protocol

    if protocol in KEYPOINT_PROTOCOLS:
        return HAND2D
    return ANNOT if get_protocol(protocol).masking else MANO


def group_protocols(protocols: Iterable[str]) -> dict[str, list[str]]:
    """family -> its protocols, both in the order given."""
    groups: dict[str, list[str]] = {}
    for protocol in protocols:
        groups.setdefault(family_of(protocol), []).append(protocol)
    return groups


def check_ground_truth(cfg: Any, protocols: list[str]) -> None:
    """ConfigError, before any work, when the data pipeline cannot give a protocol's ground truth."""
    groups = group_protocols(protocols)
    pipeline = cfg.data.pipeline
    three_d = groups.get(MANO, []) + groups.get(ANNOT, [])
    if three_d and pipeline == "hand2d":
        raise ConfigError(f"key 'evaluation.protocols': {three_d} score 3D joints, which the hand2d pipeline "
                          "(model.name=simple_baseline2d) does not give; use [interhand2d]")
    mano = groups.get(MANO, [])
    if mano and pipeline != "dir":
        raise ConfigError(f"key 'evaluation.protocols': {mano} are scored on joints regressed from the "
                          f"NeuralAnnot MANO meshes, which only the dir pipeline gives (data.pipeline is "
                          f"{pipeline!r}); use evaluation.protocols=[moon]")
    if mano and not cfg.data.dir.joints_from_mano:
        raise ConfigError(f"key 'data.dir.joints_from_mano' is false, so the dir pipeline gives no "
                          f"MANO-regressed joints, the ground truth of {mano}; set it to true or use "
                          "evaluation.protocols=[moon]")


def select_frames(cfg: Any, protocols: list[str]) -> Any:
    """The config `eval run` builds its dataset from: with an `annot` protocol (moon is defined on
    every frame) data.hand_types / data.require_mano are relaxed to all / false (the `mano` rows
    are picked per batch); otherwise `cfg` unchanged."""
    if ANNOT not in group_protocols(protocols):
        return cfg
    changed = {key: value for key, value in _ANNOT_FRAMES.items() if cfg.data.get(key) != value}
    if not changed:
        return cfg
    log.info("protocol(s) %s are defined on every frame: evaluating with %s", group_protocols(protocols)[ANNOT],
             ", ".join(f"data.{k}={v}" for k, v in changed.items()))
    cfg = copy.deepcopy(cfg)
    for key, value in changed.items():
        cfg.data[key] = value
    return cfg


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy() if t.is_floating_point() else t.detach().cpu().numpy()


def mano_rows(batch: Mapping[str, torch.Tensor]) -> Rows:
    """`mano` ground truth (millimetres): interacting frames with both MANO fits only."""
    keep = (_numpy(batch["hand_type"]) == 2) & (_numpy(batch["mano_valid"]) > 0.5).all(axis=1)  # (B,)
    rows: Rows = {
        "ids": _numpy(batch["id"]).astype(np.int64),
        "joints": _numpy(batch["joints_3d"]) * M_TO_MM,
        "hand_type": _numpy(batch["hand_type"]).astype(np.int64),
        "joints_2d": _numpy(batch["joints_2d"]),
    }
    if "verts_3d" in batch:
        rows["verts"] = _numpy(batch["verts_3d"]) * M_TO_MM
    if "verts_2d" in batch:
        rows["verts_2d"] = _numpy(batch["verts_2d"])
    return {k: v[keep] for k, v in rows.items()}


def annot_rows(batch: Mapping[str, torch.Tensor]) -> Rows:
    """`annot` ground truth (millimetres): annotated joints with joint_valid, every frame."""
    own = "joints_3d_annot" not in batch  # pipelines without MANO: joints_3d are the annotated joints
    rows: Rows = {
        "ids": _numpy(batch["id"]).astype(np.int64),
        "joints": _numpy(batch["joints_3d" if own else "joints_3d_annot"]) * M_TO_MM,
        "joint_valid": _numpy(batch["joint_valid" if own else "joint_valid_annot"]) > 0.5,
        "hand_type": _numpy(batch["hand_type"]).astype(np.int64),
    }
    if own:
        rows["joints_2d"] = _numpy(batch["joints_2d"])  # projections of these very joints
    return rows


ROW_BUILDERS = {MANO: mano_rows, ANNOT: annot_rows}


def rows_for(pred: Rows, gt: Rows) -> Rows:
    """The prediction rows of the annotations in `gt` (a subset of the same batch, same order)."""
    if len(pred["ids"]) == len(gt["ids"]):
        return pred
    keep = np.isin(pred["ids"], gt["ids"])
    return {k: v if k == "faces" else v[keep] for k, v in pred.items()}


class ProtocolEvaluator:
    """Scores each protocol on its own ground truth: one streaming evaluator per family.

    `update(pred_rows, {family: gt_rows})`; `compute()` -> {protocol: {metric: value}} in the
    order of `protocols` (2D keypoint subsets H / M / H+M after their protocol);
    `ground_truth()` -> {protocol: (family, rows scored)}.
    """

    def __init__(self, protocols: list[str], iv: bool = False,
                 subset_ids: Mapping[str, np.ndarray] | None = None) -> None:
        self.protocols = list(protocols)
        self.groups = group_protocols(self.protocols)
        self.human_machine = dict(subset_ids or {})  # "human" / "machine" -> annotation ids
        self.evaluators = {family: self._make(family, names, iv) for family, names in self.groups.items()}
        self.rows = dict.fromkeys(self.groups, 0)
        self.subsets = self._subsets()
        self.subset_rows = dict.fromkeys(self.subsets, 0)

    def _subsets(self) -> dict[str, np.ndarray]:
        """2D result name -> annotation ids of the H / M / H+M subsets (as eval.keypoints2d names them)."""
        if HAND2D not in self.groups:
            return {}
        from eval.keypoints2d import SUBSET_SUFFIX

        ids = {"H": self.human_machine.get("human"), "M": self.human_machine.get("machine")}
        if ids["H"] is not None and ids["M"] is not None:
            ids["H+M"] = np.union1d(ids["H"], ids["M"])
        base = self.groups[HAND2D][0]
        return {base + SUBSET_SUFFIX[name]: v for name, v in ids.items() if v is not None}

    def _make(self, family: str, names: list[str], iv: bool) -> Any:
        if family == HAND2D:
            from eval.keypoints2d import Keypoints2DEvaluator

            return Keypoints2DEvaluator(names[0], self.human_machine.get("human"), self.human_machine.get("machine"))
        from eval import Evaluator

        return Evaluator(names, iv=iv)

    def update(self, pred: Rows, gt_by_family: Mapping[str, Rows], pred_source: str = "predictions",
               gt_source: str = "ground truth") -> None:
        for family, gt in gt_by_family.items():
            if not len(gt["ids"]):
                continue
            self.evaluators[family].update(rows_for(pred, gt), gt, pred_source, f"{gt_source} ({family} ground truth)")
            self.rows[family] += len(gt["ids"])
            if family == HAND2D:
                for name, ids in self.subsets.items():
                    self.subset_rows[name] += int(np.isin(gt["ids"], ids).sum())

    def compute(self) -> dict[str, dict[str, float]]:
        merged: dict[str, dict[str, float]] = {}
        for evaluator in self.evaluators.values():
            merged.update(evaluator.compute())
        order = [*self.protocols, *(name for name in merged if name not in self.protocols)]
        return {name: merged.get(name, {}) for name in order}

    def pck_curves(self) -> dict[str, Any]:
        curves: dict[str, Any] = {}
        for evaluator in self.evaluators.values():
            curves.update(evaluator.pck_curves() if hasattr(evaluator, "pck_curves") else {})
        return curves

    def ground_truth(self) -> dict[str, tuple[str, int]]:
        """protocol (and 2D subset) name -> (ground-truth family, rows scored)."""
        out = {p: (family_of(p), self.rows[family_of(p)]) for p in self.protocols}
        out.update({name: (HAND2D, count) for name, count in self.subset_rows.items()})
        return out

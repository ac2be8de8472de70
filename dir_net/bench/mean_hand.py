"""The mean-hand baseline: predict, for every test frame, the average hand of the training split.

For each protocol the "mean hand" is the per-joint mean over the training split of the
ground-truth joints relative to that protocol's root joint (wrist for wrist_scaled and moon,
middle MCP for mcp_scaled and mcp), the same for the mesh vertices (MPVPE), the mean right->left
root vector (MRRPE) and the per-vertex mean of the 2D vertices in crop pixels (MIAA). Means are
taken over the rows each protocol is scored on (its ground-truth family, dir_net.engine.groundtruth):
the `mano` family (interacting frames with both MANO fits) for the DIR protocols and the `annot`
family (every frame, masked by joint_valid and hand presence) for moon.

A model that does not beat this has not learned anything about the image beyond the average pose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from eval import evaluate
from eval.protocols import get_protocol

Rows = dict[str, np.ndarray]


def _present(rows: Rows) -> np.ndarray:
    """(N, 2) bool: the hand is present (hand_type 0 right, 1 left, 2 both)."""
    hand_type = rows["hand_type"]
    return np.stack([hand_type != 1, hand_type != 0], axis=1)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """values (N, ...); mask broadcastable to values[..., 0] -> mean over N where mask (0 where never)."""
    weight = np.broadcast_to(mask, values.shape[:-1]).astype(np.float64)[..., None]
    return (values * weight).sum(0) / np.maximum(weight.sum(0), 1.0)


@dataclass
class MeanHand:
    """The training split's average hand under one root joint (millimetres, crop pixels)."""

    root: int
    joints_rel: np.ndarray  # (2, 21, 3) mm, each hand about its own root joint
    offset: np.ndarray  # (3,) mm, left root - right root
    verts_rel: np.ndarray | None = None  # (2, V, 3) mm, about the same root joint
    verts_2d: np.ndarray | None = None  # (2, V, 2) crop px
    joints_2d: np.ndarray | None = None  # (2, 21, 2) crop px

    def predict(self, ids: np.ndarray) -> Rows:
        """Prediction rows (interchange format) of the mean hand for every id."""
        n = len(ids)
        shift = np.stack([np.zeros(3), self.offset])[:, None]  # (2, 1, 3): left hand at the offset
        rows: Rows = {"ids": np.asarray(ids, np.int64),
                      "joints": np.broadcast_to(self.joints_rel + shift, (n, 2, 21, 3)).astype(np.float32)}
        if self.verts_rel is not None:
            rows["verts"] = np.broadcast_to(self.verts_rel + shift, (n,) + self.verts_rel.shape).astype(np.float32)
        if self.verts_2d is not None:
            rows["verts_2d"] = np.broadcast_to(self.verts_2d, (n,) + self.verts_2d.shape).astype(np.float32)
        if self.joints_2d is not None:
            rows["joints_2d"] = np.broadcast_to(self.joints_2d, (n, 2, 21, 2)).astype(np.float32)
        return rows


def fit_mean_hand(train_rows: Rows, root: int) -> MeanHand:
    """The mean hand of ground-truth rows (one family's `groundtruth.*_rows`, concatenated) under
    root joint `root`; joints count where the hand is present and, with `joint_valid`, where the
    joint and the root are annotated."""
    joints = train_rows["joints"].astype(np.float64)  # (N, 2, 21, 3) mm
    present = _present(train_rows)  # (N, 2)
    valid = train_rows.get("joint_valid")
    valid = np.ones(joints.shape[:3], bool) if valid is None else valid.astype(bool)  # (N, 2, 21)
    root_ok = present & valid[:, :, root]  # (N, 2)
    rel = joints - joints[:, :, root:root + 1]
    joints_rel = _masked_mean(rel, root_ok[:, :, None] & valid)
    both = root_ok.all(axis=1)
    offset = _masked_mean(joints[:, 1, root] - joints[:, 0, root], both)
    hand = MeanHand(root, joints_rel, offset)
    if "verts" in train_rows:
        verts = train_rows["verts"].astype(np.float64)
        hand.verts_rel = _masked_mean(verts - joints[:, :, root:root + 1], root_ok[:, :, None])
    if "verts_2d" in train_rows:
        hand.verts_2d = _masked_mean(train_rows["verts_2d"].astype(np.float64), present[:, :, None])
    if "joints_2d" in train_rows:
        hand.joints_2d = _masked_mean(train_rows["joints_2d"].astype(np.float64), present[:, :, None] & valid)
    return hand


def score_mean_hand(train_rows: Rows, test_rows: Rows, protocols: list[str]) -> dict[str, dict[str, float]]:
    """{protocol: metrics} of the mean hand of `train_rows` on `test_rows` (one ground-truth family),
    each protocol with the mean hand of its own root joint."""
    results = {}
    for protocol in protocols:
        hand = fit_mean_hand(train_rows, get_protocol(protocol).root)
        gt = {k: v for k, v in test_rows.items() if k != "joints_2d"}
        results[protocol] = evaluate(hand.predict(test_rows["ids"]), gt, [protocol], iv=False).compute()[protocol]
    return results


def concat_rows(parts: list[Mapping[str, np.ndarray]]) -> Rows:
    """Row dicts of several batches -> one (empty parts are skipped)."""
    parts = [p for p in parts if len(p["ids"])]
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

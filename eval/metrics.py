"""Metric maths on numpy arrays (millimetres, pixels); no file handling, no state."""

from __future__ import annotations

import numpy as np

from eval.protocols import Averaging, Protocol
from mano.joints import MIDDLE_MCP, NUM_JOINTS, WRIST

PCK_THRESHOLDS_MM = np.linspace(0.0, 50.0, 51)  # (T,) PCK curve thresholds, 1 mm apart


def hand_presence(hand_type: np.ndarray | None, num_rows: int) -> np.ndarray:
    """(N, 2) bool: [right present, left present]; every hand when hand_type is unknown."""
    if hand_type is None:
        return np.ones((num_rows, 2), dtype=bool)
    return np.stack([hand_type != 1, hand_type != 0], axis=1)


def counted_hands(protocol: Protocol, present: np.ndarray, joint_valid: np.ndarray | None
                  ) -> np.ndarray:
    """(N, 2) bool: hands whose errors count under the protocol."""
    if not protocol.masking or joint_valid is None:
        return present
    required = joint_valid[:, :, list(protocol.required_joints())].all(axis=2)
    return present & required


def joint_mask(protocol: Protocol, hands: np.ndarray, joint_valid: np.ndarray | None
               ) -> np.ndarray:
    """(N, 2, 21) bool: joints whose errors count under the protocol."""
    mask = np.repeat(hands[:, :, None], NUM_JOINTS, axis=2)
    if protocol.masking and joint_valid is not None:
        mask &= joint_valid
    return mask


def hand_scale(pred_joints: np.ndarray, gt_joints: np.ndarray, hands: np.ndarray) -> np.ndarray:
    """(N, 2) factors |J9-J0|gt / |J9-J0|pred that bring each predicted hand to GT size.

    Hands not counted get factor 1; a counted hand with a zero-length predicted bone is an error.
    """
    pred_len = np.linalg.norm(pred_joints[:, :, MIDDLE_MCP] - pred_joints[:, :, WRIST], axis=-1)
    gt_len = np.linalg.norm(gt_joints[:, :, MIDDLE_MCP] - gt_joints[:, :, WRIST], axis=-1)
    degenerate = hands & (pred_len < 1e-6)
    if degenerate.any():
        rows = np.unique(np.nonzero(degenerate)[0])
        raise ValueError(
            f"predicted wrist and middle MCP coincide in {len(rows)} rows (first row {rows[0]}); "
            "scaled protocols cannot rescale such hands"
        )
    safe_pred = np.where(hands, pred_len, 1.0)
    return np.where(hands, gt_len / safe_pred, 1.0)


def root_relative(points: np.ndarray, joints: np.ndarray, root: int,
                  scale: np.ndarray | None = None) -> np.ndarray:
    """(N, 2, K, 3) points minus each hand's root joint, optionally scaled about it."""
    relative = points - joints[:, :, root : root + 1]
    return relative if scale is None else relative * scale[:, :, None, None]


def point_errors(pred_points: np.ndarray, gt_points: np.ndarray) -> np.ndarray:
    """(N, 2, K) Euclidean distances."""
    return np.linalg.norm(pred_points - gt_points, axis=-1)


def relative_root_errors(pred_joints: np.ndarray, gt_joints: np.ndarray, root: int,
                         pred_offset: np.ndarray | None = None) -> np.ndarray:
    """(N,) error (mm) of the right-root -> left-root vector.

    pred_offset (N, 3), when given, is the predicted left-wrist minus right-wrist vector that
    replaces the one of `pred_joints` (InterNet places each hand at its own depth for MPJPE but
    the left wrist at Z_right + relative depth for MRRPE); each hand's root-from-wrist vector
    still comes from `pred_joints`.
    """
    pred_vec = pred_joints[:, 1, root] - pred_joints[:, 0, root]
    if pred_offset is not None:
        wrist_vec = pred_joints[:, 1, WRIST] - pred_joints[:, 0, WRIST]
        pred_vec = pred_vec - wrist_vec + pred_offset
    gt_vec = gt_joints[:, 1, root] - gt_joints[:, 0, root]
    return np.linalg.norm(pred_vec - gt_vec, axis=-1)


def average(total: np.ndarray, count: np.ndarray, averaging: Averaging) -> float | None:
    """Reduce per-(hand, point) sums and counts (2, K) to one number; None if nothing counted.

    per_joint:  mean over points (with a count) of total / count.
    per_sample: for each hand with a count, sum(total) / sum(count); then the mean over hands.
    pooled:     sum(total) / sum(count) over every hand and point (mmpose's keypoint_epe).
    per_joint_pooled: for each point, sum over hands of total / of count; then the mean over
                points with a count (STB / RHD official: right and left hands treated alike).
    """
    if averaging == "per_joint_pooled":
        point_total, point_count = total.sum(axis=0), count.sum(axis=0)
        seen = point_count > 0
        return float(np.mean(point_total[seen] / point_count[seen])) if seen.any() else None
    if averaging == "pooled":
        counted = count.sum()
        return float(total.sum() / counted) if counted > 0 else None
    if averaging == "per_joint":
        seen = count > 0
        if not seen.any():
            return None
        return float(np.mean(total[seen] / count[seen]))
    hand_count = count.sum(axis=1)
    seen = hand_count > 0
    if not seen.any():
        return None
    return float(np.mean(total.sum(axis=1)[seen] / hand_count[seen]))


def auc(thresholds: np.ndarray, pck: np.ndarray) -> float:
    """Area under a PCK curve, normalised by the threshold range (trapezoid rule), in [0, 1]."""
    widths = np.diff(thresholds)
    area = float(np.sum(widths * (pck[1:] + pck[:-1]) / 2.0))
    return area / float(thresholds[-1] - thresholds[0])


def handedness_correct(hand_prob: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(N,) bool: both sigmoids thresholded at 0.5 give the ground-truth presence pattern."""
    return ((hand_prob > 0.5) == present).all(axis=1)


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the precision-recall curve (step-wise, no interpolation).

    AP = sum_k (R_k - R_{k-1}) P_k over the distinct score thresholds, high to low; tied scores
    form one threshold. None when there are no positive labels.
    """
    labels = labels.astype(bool)
    num_pos = int(labels.sum())
    if num_pos == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_pos = np.cumsum(labels)[last_of_tie]
    predicted_pos = last_of_tie + 1
    precision = true_pos / predicted_pos
    recall = true_pos / num_pos
    recall_steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_steps * precision))

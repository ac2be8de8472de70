"""The EPE of the InterNet paper's Table 5 (STB 7.95 mm, RHD 20.89 mm): protocol `epe`.

What the official STB / RHD `evaluate` computes (facts: /work/shared/REFERENCE_STB_RHD.md sec. 4):
- each hand (block of 21) has its own root (joint 0) subtracted, in prediction and ground truth,
  whatever the root's valid flag; no scale, no Procrustes;
- the GT hand type picks the one hand scored per sample (the other block is ignored);
- for each joint index j (right and left hands pooled), the 3D distance in mm over the samples
  whose annotated joint_valid[j] is 1; the per-joint means are averaged over the 21 joints, the
  root included at error 0 (so everything-valid EPE is 20/21 of the non-root mean).

`eval.PROTOCOLS["epe"]` is that protocol for the streaming `Evaluator` (masking with
root_required=False, averaging "per_joint_pooled"). `official_epe` below is a literal
per-sample re-statement kept as the reference the tests compare the Evaluator with.
"""

from __future__ import annotations

import numpy as np

from mano.joints import NUM_JOINTS, WRIST

PROTOCOL = "epe"


def official_epe(pred_joints: np.ndarray, gt_joints: np.ndarray, joint_valid: np.ndarray,
                 hand_type: np.ndarray) -> tuple[float, np.ndarray]:
    """(EPE mm, per-joint means (21,) mm; NaN for a joint never valid).

    pred_joints, gt_joints: (N, 2, 21, 3) mm, hand axis 0 right / 1 left, root in slot 0;
    joint_valid (N, 2, 21); hand_type (N,) 0 right / 1 left (the hand scored).
    """
    per_joint: list[list[float]] = [[] for _ in range(NUM_JOINTS)]
    for n in range(len(gt_joints)):
        h = int(hand_type[n])
        if h not in (0, 1):
            raise ValueError(f"row {n}: hand_type must be 0 (right) or 1 (left) for the epe protocol, got {h}")
        pred = pred_joints[n, h] - pred_joints[n, h, WRIST]
        gt = gt_joints[n, h] - gt_joints[n, h, WRIST]
        for j in range(NUM_JOINTS):
            if joint_valid[n, h, j]:
                per_joint[j].append(float(np.linalg.norm(pred[j] - gt[j])))
    means = np.array([np.mean(v) if v else np.nan for v in per_joint])
    seen = ~np.isnan(means)
    return (float(means[seen].mean()) if seen.any() else float("nan")), means

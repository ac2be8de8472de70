"""Scoring batches of a run with eval.Evaluator when some hands have no ground-truth mesh.

InterHand2.6M frames without a NeuralAnnot fit have joints but no mesh; the dataset fills their
`verts_3d` with zeros. The interchange format has no per-hand mesh validity, so mesh metrics
(MPVPE, MIAA) are scored by a second Evaluator on the rows whose present hands all have a GT
mesh (`verts_valid`), and every other metric on all rows.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

MESH_FIELDS = ("verts", "verts_2d")
MESH_METRICS = ("mpvpe", "miaa")


class RunEvaluator:
    """Like eval.Evaluator (update / compute / pck_curves) with mesh metrics on valid meshes only."""

    def __init__(self, protocols: Iterable[str], iv: bool = False) -> None:
        from eval import Evaluator

        protocols = list(protocols)
        self._joints = Evaluator(protocols, iv=iv)  # IV needs predicted meshes only: all rows
        self._meshes = Evaluator(protocols, iv=False)
        self.mesh_rows = 0

    def update(self, pred: Mapping[str, np.ndarray], gt: Mapping[str, np.ndarray],
               pred_source: str = "predictions", gt_source: str = "ground truth") -> None:
        gt_joints = {k: v for k, v in gt.items() if k not in MESH_FIELDS and k != "verts_valid"}
        self._joints.update(pred, gt_joints, pred_source, gt_source)
        if not any(f in gt for f in MESH_FIELDS):
            return
        rows = mesh_rows(gt)
        if rows.any():
            gt_mesh = {k: v for k, v in gt.items() if k != "verts_valid"}
            self._meshes.update(_select(pred, rows), _select(gt_mesh, rows), pred_source, gt_source)
            self.mesh_rows += int(rows.sum())

    def compute(self) -> dict[str, dict[str, float]]:
        """protocol -> metric -> value, in eval.METRIC_NAMES order."""
        from eval import METRIC_NAMES

        results = self._joints.compute()
        meshes = self._meshes.compute() if self.mesh_rows else {}
        merged = {}
        for protocol, values in results.items():
            values = {k: v for k, v in values.items() if k not in MESH_METRICS}
            values.update({k: v for k, v in meshes.get(protocol, {}).items() if k in MESH_METRICS})
            merged[protocol] = {k: values[k] for k in METRIC_NAMES if k in values}
        return merged

    def pck_curves(self):
        return self._joints.pck_curves()


def make_evaluator(protocols: list[str], iv: bool = False) -> Any:
    """RunEvaluator for 3D protocols, eval's Keypoints2DEvaluator for a 2D keypoint protocol."""
    from dir_net.engine.inference import is_keypoints2d

    if is_keypoints2d(protocols):
        from eval.keypoints2d import Keypoints2DEvaluator

        return Keypoints2DEvaluator(protocols[0])
    return RunEvaluator(protocols, iv=iv)


def mesh_rows(gt: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N,) bool: every hand present in the row (by hand_type) has a ground-truth mesh."""
    num = len(gt["joints"])
    valid = gt.get("verts_valid")
    if valid is None:
        return np.ones(num, dtype=bool)
    hand_type = gt.get("hand_type")
    present = (np.ones((num, 2), dtype=bool) if hand_type is None
               else np.stack([hand_type != 1, hand_type != 0], axis=1))
    return (valid | ~present).all(axis=1)


def _select(arrays: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: (v if k == "faces" else v[rows]) for k, v in arrays.items()}

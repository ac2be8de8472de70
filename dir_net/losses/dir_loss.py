"""DIR training objective (paper Sec. 3.3 and supplement B; weights in `loss.dir`).

Every stage, both hands: smooth L1 on 2D joints and vertices (weak-perspective uv in [-1, 1]) and
on root-relative 3D joints and vertices (/ 0.15 m), edge-length and normal consistency of the
meshes, smooth L1 on the right->left offset (/ 0.15 m). Pixel-wise: weighted CE + Lovasz-softmax
on the segmentation, smooth L1 on the dense-correspondence map. Masks: joint_valid for joints,
mano_valid for meshes, both wrists for the offset and for root-relative targets, aux_valid for maps.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from dir_net.losses.terms import (
    edge_length_loss,
    normal_consistency_loss,
    resize_dense,
    resize_labels,
    segmentation_losses,
    smooth_l1,
)
from dir_net.structures import Prediction, StageOutput

STAGE_TERMS = ("joints_2d", "verts_2d", "joints_3d", "verts_3d", "edge", "normal", "offset")
AUX_TERMS = ("seg_ce", "seg_lovasz", "dense")


def crop_px_to_uv(points: Tensor, image_hw: tuple[int, int]) -> Tensor:
    """Crop pixels (..., 2) -> [-1, 1] (u / W * 2 - 1, v / H * 2 - 1)."""
    size = points.new_tensor([image_hw[1], image_hw[0]])
    return points / size * 2 - 1


class DirLoss(nn.Module):
    """Callable (prediction, batch) -> {term/sI: per-stage value, term: sum over stages, ...,
    "total": weighted sum}. Reported terms are unweighted; `total` applies `loss.dir` weights."""

    def __init__(self, cfg: Mapping[str, Any], faces: Tensor) -> None:
        super().__init__()
        self.weights = {name: float(cfg[name]) for name in STAGE_TERMS + AUX_TERMS}
        self.delta = float(cfg["huber_delta"])
        self.unit = float(cfg["coord_unit"])
        self.register_buffer("faces", torch.as_tensor(faces, dtype=torch.long), persistent=False)
        self.register_buffer(
            "class_weights", torch.tensor(cfg["seg_class_weights"], dtype=torch.float32), persistent=False
        )

    def forward(self, pred: Prediction, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        targets = self.targets(batch)
        out: dict[str, Tensor] = {}
        for i, stage in enumerate(pred.stages):
            for name, value in self.stage_terms(stage, targets).items():
                out[f"{name}/s{i}"] = value
                out[name] = out[name] + value if name in out else value
        if "seg" in pred.aux:
            out.update(self.aux_terms(pred.aux, batch))
        total = sum(self.weights[name] * out[name] for name in STAGE_TERMS + AUX_TERMS if name in out)
        out["total"] = total
        return out

    def targets(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Ground truth in the model's units, shared by all stages."""
        image_hw = tuple(batch["image"].shape[-2:])
        joints = batch["joints_3d"]  # (B, 2, 21, 3) m, camera frame
        valid = batch["joint_valid"]  # (B, 2, 21)
        wrist_ok = valid[:, :, :1]  # (B, 2, 1)
        wrist = joints[:, :, :1]
        return {
            "joints_uv": crop_px_to_uv(batch["joints_2d"], image_hw),
            "verts_uv": crop_px_to_uv(batch["verts_2d"], image_hw),
            "joints_rel": joints - wrist,
            "verts_rel": batch["verts_3d"] - wrist,
            "offset": joints[:, 1, 0] - joints[:, 0, 0],
            "joint_valid": valid,
            "rel_valid": valid * wrist_ok,
            "mano_valid": batch["mano_valid"],
            "mesh_valid": batch["mano_valid"] * wrist_ok[..., 0],
            "offset_valid": wrist_ok[:, 0, 0] * wrist_ok[:, 1, 0],
        }

    def stage_terms(self, stage: StageOutput, t: Mapping[str, Tensor]) -> dict[str, Tensor]:
        d, u = self.delta, self.unit
        mesh_valid = t["mesh_valid"]  # (B, 2)
        return {
            "joints_2d": smooth_l1(stage.joints_uv, t["joints_uv"], t["joint_valid"], d),
            "verts_2d": smooth_l1(stage.verts_uv, t["verts_uv"], t["mano_valid"][:, :, None], d),
            "joints_3d": smooth_l1(stage.joints / u, t["joints_rel"] / u, t["rel_valid"], d),
            "verts_3d": smooth_l1(stage.vertices / u, t["verts_rel"] / u, mesh_valid[:, :, None], d),
            "edge": edge_length_loss(stage.vertices / u, t["verts_rel"] / u, self.faces, mesh_valid),
            "normal": normal_consistency_loss(stage.vertices, t["verts_rel"], self.faces, mesh_valid),
            "offset": smooth_l1(stage.offset / u, t["offset"] / u, t["offset_valid"], d),
        }

    def aux_terms(self, aux: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        size = tuple(aux["seg"].shape[-2:])
        valid = batch["aux_valid"]  # (B,)
        ce, lovasz = segmentation_losses(aux["seg"], resize_labels(batch["seg"], size), valid, self.class_weights)
        dense_target = resize_dense(batch["dense"], size)
        dense = smooth_l1(aux["dense"], dense_target, valid[:, None, None, None], self.delta)
        return {"seg_ce": ce, "seg_lovasz": lovasz, "dense": dense}

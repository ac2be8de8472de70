"""DIR training objective as the official training computes it (docs/DIR_LOSSES.md; weights in
`loss.dir`), with one deliberate difference: 3D joint, vertex and offset targets are centred on each
hand's wrist (the predictions' root), where the official code centres the targets on the middle MCP.

Every stage, each hand separately and the two hands summed: Huber (delta 0.01) on the 2D joints
and vertices (weak-perspective uv in [-1, 1]) and on the root-relative 3D joints and vertices in
units of 0.15 m; edge-length and normal consistency of the meshes. Every stage, once: Huber on the
right->left wrist offset (units of 0.15 m). Once, on the final maps: weighted cross-entropy and
Lovasz-softmax on the segmentation, Huber on the dense-correspondence map.
Masks (all ones in the official data): joint_valid for joints, mano_valid for meshes, both wrists
for root-relative targets and the offset, aux_valid for the maps.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from dir_net.losses.terms import (
    hand_sum,
    huber,
    image_mean,
    lovasz_softmax,
    mesh_errors,
    mesh_targets,
    resize_dense,
    resize_labels,
    weighted_cross_entropy,
)
from dir_net.structures import Prediction, StageOutput

STAGE_TERMS = ("joints_2d", "verts_2d", "joints_3d", "verts_3d", "edge", "normal", "offset")
AUX_TERMS = ("seg_ce", "seg_lovasz", "dense")


def crop_px_to_uv(points: Tensor, image_hw: tuple[int, int]) -> Tensor:
    """Crop pixels (..., 2) -> [-1, 1] (u / W * 2 - 1, v / H * 2 - 1)."""
    size = points.new_tensor([image_hw[1], image_hw[0]])
    return points / size * 2 - 1


class DirLoss(nn.Module):
    """Callable (prediction, batch) -> {term/sI: weighted value of stage I, term: weighted sum over
    stages, seg_ce / seg_lovasz / dense: weighted map terms, "total": sum of the terms}.

    Every reported value already carries its `loss.dir` weight (like the official training log), so
    `total` is the plain sum of the STAGE_TERMS and AUX_TERMS entries.
    """

    def __init__(self, cfg: Mapping[str, Any], faces: Tensor) -> None:
        super().__init__()
        self.weights = {name: float(cfg[name]) for name in STAGE_TERMS + AUX_TERMS}
        self.delta = float(cfg["huber_delta"])
        self.unit = float(cfg["coord_unit"])
        self.lovasz_on_softmax = bool(cfg["seg_lovasz_softmax"])
        self.register_buffer("faces", torch.as_tensor(faces, dtype=torch.long), persistent=False)
        self.register_buffer(
            "class_weights", torch.tensor(cfg["seg_class_weights"], dtype=torch.float32), persistent=False
        )

    def forward(self, pred: Prediction, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        targets = self.targets(batch)
        out: dict[str, Tensor] = {}
        for i, stage in enumerate(pred.stages):
            for name, value in self.stage_terms(stage, targets).items():
                weighted = self.weights[name] * value
                out[f"{name}/s{i}"] = weighted
                out[name] = out[name] + weighted if name in out else weighted
        if "seg" in pred.aux:
            out.update({name: self.weights[name] * value for name, value in self.aux_terms(pred.aux, batch).items()})
        out["total"] = sum(out[name] for name in STAGE_TERMS + AUX_TERMS if name in out)
        return out

    def targets(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Ground truth in the loss units (uv in [-1, 1]; 3D in units of coord_unit), shared by all
        stages, and the masks."""
        image_hw = tuple(batch["image"].shape[-2:])
        joints = batch["joints_3d"]  # (B, 2, 21, 3) m, camera frame
        valid = batch["joint_valid"]  # (B, 2, 21)
        wrist_ok = valid[:, :, 0]  # (B, 2)
        wrist = joints[:, :, :1]  # (B, 2, 1, 3) m
        verts_rel = (batch["verts_3d"] - wrist) / self.unit  # (B, 2, V, 3) units, about each wrist
        edge_lengths, face_normals = mesh_targets(verts_rel, self.faces)  # (B, 2, F, 3) each
        return {
            "joints_uv": crop_px_to_uv(batch["joints_2d"], image_hw),  # (B, 2, 21, 2)
            "verts_uv": crop_px_to_uv(batch["verts_2d"], image_hw),  # (B, 2, V, 2)
            "joints_rel": (joints - wrist) / self.unit,  # (B, 2, 21, 3) units, about each wrist
            "verts_rel": verts_rel,
            "edge_lengths": edge_lengths,
            "face_normals": face_normals,
            "offset": (joints[:, 1, 0] - joints[:, 0, 0]) / self.unit,  # (B, 3) left wrist - right wrist
            "joint_valid": valid,
            "rel_valid": valid * wrist_ok[:, :, None],  # (B, 2, 21)
            "mano_valid": batch["mano_valid"],  # (B, 2)
            "mesh_valid": batch["mano_valid"] * wrist_ok,  # (B, 2)
            "offset_valid": wrist_ok[:, 0] * wrist_ok[:, 1],  # (B,)
        }

    def stage_terms(self, stage: StageOutput, t: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Unweighted terms of one stage (per-hand terms summed over the two hands)."""
        d, u = self.delta, self.unit
        verts = stage.vertices.float() / u  # (B, 2, V, 3) units
        edge, normal = mesh_errors(verts, self.faces, t["edge_lengths"], t["face_normals"])
        return {
            "joints_2d": hand_sum(huber(stage.joints_uv, t["joints_uv"], d), t["joint_valid"]),
            "verts_2d": hand_sum(huber(stage.verts_uv, t["verts_uv"], d), t["mano_valid"]),
            "joints_3d": hand_sum(huber(stage.joints.float() / u, t["joints_rel"], d), t["rel_valid"]),
            "verts_3d": hand_sum(huber(verts, t["verts_rel"], d), t["mesh_valid"]),
            "edge": hand_sum(edge, t["mesh_valid"]),
            "normal": hand_sum(normal, t["mesh_valid"]),
            "offset": image_mean(huber(stage.offset.float() / u, t["offset"], d), t["offset_valid"]),
        }

    def aux_terms(self, aux: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Unweighted map terms on the images with aux_valid; targets resized to the map size."""
        logits = aux["seg"].float()  # (B, 3, h, w)
        size = tuple(logits.shape[-2:])
        valid = batch["aux_valid"]  # (B,)
        keep = valid > 0
        labels = resize_labels(batch["seg"], size)[keep]  # (N, h, w)
        kept = logits[keep]
        scores = kept.softmax(dim=1) if self.lovasz_on_softmax else kept
        flat = scores.permute(0, 2, 3, 1).reshape(-1, scores.shape[1])  # (N h w, 3)
        dense_target = resize_dense(batch["dense"], size)  # (B, 3, h, w) in [0, 1]
        return {
            "seg_ce": weighted_cross_entropy(kept, labels, self.class_weights),
            "seg_lovasz": lovasz_softmax(flat, labels.reshape(-1)),
            "dense": image_mean(huber(aux["dense"], dense_target, self.delta), valid),
        }

"""SimpleBaseline2D (Xiao et al., ECCV 2018) for 2D hand keypoints, one hand per sample.

ResNet-50 -> c4 -> DeconvHead (3 x deconv 256, shared code with InterNet) -> 21 heatmaps at S/4.
Targets are Gaussians (sigma 2 cells, peak 1) made on the device from `keypoints_2d`; the loss is
the heatmap MSE masked by `keypoint_valid`. At evaluation the heatmaps of the crop and of its
mirror image (mirrored back) are averaged (flip test; a hand has no left/right joint pairs, so no
channel swap); the heatmap pixel convention makes the mirror exact (dir_net.models.heatmap).
Decoding: argmax moved a quarter cell towards the higher neighbour.

Conventions (config model.simple_baseline2d; converted mmpose checkpoints set mmpose's):
`heatmap_px` centered | scaled (cell i = crop px 4 i), `flip_shift` (mmpose shifts the
mirrored-back map one cell right), `offset_border` per_axis | mmpose (no quarter offset unless both
coordinates are in 2..62), `nonpositive_peak` keep | invalid (mmpose: cell (-1, -1)).

Batches come from the `hand2d` pipeline (dir_net/data/pipeline_hand2d.py): keypoints_2d (B, 21, 2)
crop px, keypoint_valid (B, 21), hand (B,) 0 right / 1 left, crop_to_image (B, 2, 3), and for
evaluation keypoints_image (B, 21, 2) and bbox_size (B,) in original-image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dir_net.models.backbone import build_backbone
from dir_net.models.base import HandModel
from dir_net.models.heatmap import (
    DeconvHead,
    apply_affine,
    crop_to_heatmap,
    gaussian_heatmaps,
    flip_back,
    heatmap_to_crop,
    masked_mse,
    quarter_offset_argmax,
)
from dir_net.structures import Prediction
from mano.joints import NUM_JOINTS

ENCODER_STRIDE = 32


@dataclass
class SimpleBaseline2DOutput:
    heatmaps: Tensor  # (B, 21, H, W); flip-test averaged in eval mode when enabled

    def detach(self) -> "SimpleBaseline2DOutput":
        return SimpleBaseline2DOutput(self.heatmaps.detach())


class SimpleBaseline2D(HandModel):
    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        scfg = cfg["model"]["simple_baseline2d"]
        self.sigma = float(scfg["sigma"])
        self.flip_test = bool(scfg["flip_test"])
        self.flip_shift = bool(scfg["flip_shift"])
        self.cell_convention = str(scfg["heatmap_px"])
        self.offset_border = str(scfg["offset_border"])
        self.nonpositive_invalid = scfg["nonpositive_peak"] == "invalid"
        self.backbone = build_backbone(cfg["model"]["backbone"])
        layers = int(scfg["deconv_layers"])
        self.head = DeconvHead(self.backbone.channels["c4"], NUM_JOINTS, layers, int(scfg["deconv_channels"]))
        self.stride = ENCODER_STRIDE / 2**layers  # crop px per heatmap cell

    def heatmaps(self, images: Tensor) -> Tensor:
        return self.head(self.backbone(images)["c4"])

    def forward(self, images: Tensor) -> SimpleBaseline2DOutput:
        maps = self.heatmaps(images)
        if self.flip_test and not self.training:
            mirrored = self.heatmaps(torch.flip(images, dims=[-1]))
            maps = 0.5 * (maps + flip_back(mirrored, self.flip_shift))
        return SimpleBaseline2DOutput(maps)

    def targets(self, keypoints_2d: Tensor, size_hw: tuple[int, int]) -> Tensor:
        """(B, 21, 2) crop px -> (B, 21, H, W) Gaussian heatmaps (peak 1), built on the device."""
        xy = crop_to_heatmap(keypoints_2d.float(), self.stride, self.cell_convention)
        return gaussian_heatmaps(xy[..., [1, 0]], size_hw, self.sigma)

    def losses(self, output: SimpleBaseline2DOutput, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        target = self.targets(batch["keypoints_2d"], tuple(output.heatmaps.shape[-2:]))
        heatmap = masked_mse(output.heatmaps, target, batch["keypoint_valid"].float())
        return {"heatmap": heatmap, "total": heatmap}

    def keypoints(self, output: SimpleBaseline2DOutput) -> Tensor:
        """(B, 21, 2) crop px of the heatmap peaks."""
        return heatmap_to_crop(self.keypoint_cells(output), self.stride, self.cell_convention)

    def keypoint_cells(self, output: SimpleBaseline2DOutput) -> Tensor:
        """(B, 21, 2) heatmap cells (x, y) of the peaks, quarter offset included."""
        yx = quarter_offset_argmax(output.heatmaps, 2, self.offset_border, self.nonpositive_invalid)
        return yx[..., [1, 0]]

    @torch.no_grad()
    def predict(self, output: SimpleBaseline2DOutput, batch: Mapping[str, Tensor]) -> Prediction:
        """2D only: the sample's hand goes to its slot of `joints_2d` (B, 2, 21, 2) crop px (the
        other slot is zero) and `hand_prob` is that slot's one-hot (the hand identity comes with
        the box, it is not predicted). There is no 3D: `joints` and `offset` are zeros."""
        kp = self.keypoints(output)
        slot = F.one_hot(batch["hand"].long(), 2).to(kp.dtype)  # (B, 2)
        b = kp.shape[0]
        return Prediction(
            joints=kp.new_zeros(b, 2, NUM_JOINTS, 3),
            offset=kp.new_zeros(b, 3),
            joints_2d=slot[:, :, None, None] * kp[:, None],
            hand_prob=slot,
        )

    @torch.no_grad()
    def eval_rows(self, output: SimpleBaseline2DOutput, batch: Mapping[str, Tensor]
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(prediction rows, ground-truth rows) of eval.keypoints2d, in original-image pixels."""
        kp_image = apply_affine(self.keypoints(output), batch["crop_to_image"].float())
        ids = batch["id"].cpu().numpy().astype(np.int64)
        hands = batch["hand"].cpu().numpy().astype(np.int64)
        pred = {"ids": ids, "hands": hands, "keypoints": kp_image.float().cpu().numpy()}
        gt = {
            "ids": ids, "hands": hands,
            "keypoints": batch["keypoints_image"].float().cpu().numpy(),
            "keypoint_valid": batch["keypoint_valid"].cpu().numpy() > 0.5,
            "bbox_size": batch["bbox_size"].float().cpu().numpy(),
        }
        return pred, gt

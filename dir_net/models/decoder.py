"""DIR decoder: T refinement stages alternating 3D joint-space interaction and 2D map refinement.

Stage t (1-based) works at 1/16 of the input for t = 1 and at 1/8 afterwards (32x32 / 16x16 for
a 256 input). Its encoder skip is c3, c2, c1 for t = 1, 2, 3 (c1 is 1/4 and is downsampled), as
the paper's F_{N-t-2}. One stage:
  1. fuse the previous map (resized) with the skip: residual block -> `width` channels;
  2. sample joint features at the previous stage's detached 2D joints (bilinear), FC -> joint dim,
     plus an FC embedding of the previous 3D joints (both hands in the right wrist's frame via the
     offset, / 0.15 m);
  3. GCN within each hand, transformer across the 42 joints (each optional for ablations);
  4. FC to `plane_dim` per joint; regress residual updates of both hands' parameters (from the
     previous parameters + 21 x plane_dim features) and of the offset;
  5. project the joint features onto the map at the new (detached) 2D joints (MFP or an ablation
     variant), concatenate with the fused map and refine with `refine_blocks` residual modules.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dir_net.models.gcn import SkeletonGCN
from dir_net.models.heads import OFFSET_UNIT, HandLinear
from dir_net.models.mfp import build_projection
from dir_net.models.transformer import JointTransformer
from dir_net.structures import StageOutput

NUM_JOINTS = 21
SKIPS = ("c3", "c2", "c1")  # encoder skip of stage 1, 2, 3


class ResidualBlock(nn.Module):
    """Stacked-hourglass residual module: pre-activation BN-ReLU-conv 1x1 / 3x3 / 1x1 (bottleneck
    at out/2), plus a 1x1 projection on the shortcut when the channel count changes."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = out_ch // 2
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True), nn.Conv2d(in_ch, mid, 1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, out_ch, 1),
        )
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class ParamRegressor(nn.Module):
    """Residual update of both hands' parameters and of the offset from the joint features.

    Per hand: [previous params (D), joint features (21 * F)] -> hidden -> delta params (D).
    Offset: [both hands' joint features, previous offset / 0.15] -> hidden -> delta (units of 0.15 m).
    The last layers start near zero so a fresh stage starts close to the identity update.
    """

    def __init__(self, feat_dim: int, param_dim: int, hidden: int) -> None:
        super().__init__()
        joint_in = NUM_JOINTS * feat_dim
        self.hand = nn.Sequential(HandLinear(param_dim + joint_in, hidden), nn.ReLU(inplace=True),
                                  HandLinear(hidden, param_dim))
        self.offset = nn.Sequential(nn.Linear(2 * joint_in + 3, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 3))
        for last in (self.hand[-1], self.offset[-1]):
            nn.init.normal_(last.weight, std=1e-3)
            nn.init.zeros_(last.bias)

    def forward(self, joint_feat: Tensor, params: Tensor, offset: Tensor) -> tuple[Tensor, Tensor]:
        """joint_feat (B, 2, 21, F), params (B, 2, D), offset (B, 3) m -> new params, new offset."""
        flat = joint_feat.flatten(2)  # (B, 2, 21 F)
        new_params = params + self.hand(torch.cat([params, flat], dim=-1))
        delta = self.offset(torch.cat([flat.flatten(1), offset / OFFSET_UNIT], dim=-1))
        return new_params, offset + delta * OFFSET_UNIT


class RefinementStage(nn.Module):
    """One decoder stage (see the module docstring)."""

    def __init__(self, in_ch: int, skip_ch: int, cfg: Mapping, param_dim: int,
                 parents: Sequence[int], bones: Sequence[tuple[int, int]], radius: float) -> None:
        super().__init__()
        width, joint_dim, plane_dim = cfg["width"], cfg["joint_dim"], cfg["plane_dim"]
        self.radius = radius
        self.fuse = ResidualBlock(in_ch + skip_ch, width)
        self.visual = nn.Linear(width, joint_dim)
        self.coord = nn.Linear(3, joint_dim)
        self.gcn = SkeletonGCN(joint_dim, cfg["gcn_layers"], parents) if cfg["gcn"] else None
        self.transformer = (
            JointTransformer(joint_dim, cfg["tf_layers"], cfg["tf_heads"], cfg["tf_mlp_ratio"])
            if cfg["transformer"] else None
        )
        self.reduce = nn.Linear(joint_dim, plane_dim)
        self.regressor = ParamRegressor(plane_dim, param_dim, cfg["regressor_hidden"])
        self.projection = build_projection(cfg["projection"], plane_dim, width, bones)
        refine_in = width if self.projection is None else 2 * width  # [fused map, projected features]
        self.refine = nn.Sequential(
            ResidualBlock(refine_in, width), *(ResidualBlock(width, width) for _ in range(cfg["refine_blocks"] - 1))
        )

    def forward(self, prev_map: Tensor, skip: Tensor, size: tuple[int, int], prev: StageOutput,
                params: Tensor, decode: Callable[[Tensor, Tensor], StageOutput]) -> tuple[Tensor, StageOutput, Tensor]:
        """prev_map, skip: (B, C, h, w) any size; prev: previous StageOutput with its packed
        parameters `params` (B, 2, D). Returns the refined map (B, width, *size), this stage's
        output and its packed parameters."""
        fused = self.fuse(torch.cat([resize_map(prev_map, size), resize_map(skip, size)], dim=1))
        feat = self.joint_features(fused, prev)
        new_params, new_offset = self.regressor(feat, params, prev.offset)
        out = decode(new_params, new_offset)
        if self.projection is not None:
            projected = self.projection(feat, out.joints_uv.detach(), size, self.radius)
            fused = torch.cat([fused, projected], dim=1)
        return self.refine(fused), out, new_params

    def joint_features(self, fmap: Tensor, prev: StageOutput) -> Tensor:
        """(B, 2, 21, plane_dim) joint features after intra- and inter-hand interaction."""
        b = fmap.shape[0]
        grid = prev.joints_uv.detach().reshape(b, 2 * NUM_JOINTS, 1, 2)
        sampled = F.grid_sample(fmap, grid, mode="bilinear", align_corners=False)  # (B, C, 42, 1)
        visual = sampled[..., 0].transpose(1, 2).reshape(b, 2, NUM_JOINTS, -1)
        coords = prev.joints.detach().clone()
        coords[:, 1] = coords[:, 1] + prev.offset.detach()[:, None]  # left hand into the right wrist frame
        feat = self.visual(visual) + self.coord(coords / OFFSET_UNIT)
        if self.gcn is not None:
            feat = self.gcn(feat)
        if self.transformer is not None:
            feat = self.transformer(feat)
        return self.reduce(feat)


def resize_map(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear upsampling or area downsampling to `size`; identity when already that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.shape[-2] > size[0]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class Decoder(nn.Module):
    """`stages` refinement stages over the encoder features; returns the final map and outputs."""

    def __init__(self, channels: Mapping[str, int], cfg: Mapping, param_dim: int,
                 parents: Sequence[int], bones: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        width = cfg["width"]
        self.stages = nn.ModuleList()
        for t in range(cfg["stages"]):
            in_ch = channels["c4"] if t == 0 else width
            radius = 1.0 if t == 0 else 2.0  # map pixels: 1 px at 1/16, 2 px at 1/8
            self.stages.append(RefinementStage(in_ch, channels[SKIPS[t]], cfg, param_dim, parents, bones, radius))

    @staticmethod
    def stage_size(t: int, image_hw: tuple[int, int]) -> tuple[int, int]:
        stride = 16 if t == 0 else 8
        return image_hw[0] // stride, image_hw[1] // stride

    def forward(self, feats: Mapping[str, Tensor], image_hw: tuple[int, int], initial: StageOutput,
                params: Tensor, decode: Callable[[Tensor, Tensor], StageOutput]) -> tuple[Tensor, list[StageOutput]]:
        fmap, outputs, prev = feats["c4"], [], initial
        for t, stage in enumerate(self.stages):
            fmap, prev, params = stage(fmap, feats[SKIPS[t]], self.stage_size(t, image_hw), prev, params, decode)
            outputs.append(prev)
        return fmap, outputs

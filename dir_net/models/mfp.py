"""Projecting joint features back onto the 2D feature map (DIR Sec. 3.2.3 and Table 1).

- `mfp` (multi-plane feature projection, the paper's method): one plane per bone and hand; pixels
  within `radius` map pixels of the projected bone segment get the two endpoint joint features
  blended by the position along the bone; 2 hands x 20 bones x C planes.
- `single_plane` (Table 1 "SFP"): the same rasterised features averaged into one C-channel plane,
  so features of different joints and hands mix where bones overlap.
- `multi_plane_heatmap` (Table 1 "MHP"): one Gaussian heatmap per joint (42 planes); positions
  only, no joint features.
Each is followed by conv3x3 -> BN -> ReLU to the decoder width. All are vectorised over batch,
hands, bones and pixels.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PROJECTIONS = ("none", "single_plane", "multi_plane_heatmap", "mfp")


def uv_to_map_pixels(uv: Tensor, height: int, width: int) -> Tensor:
    """[-1, 1] crop coordinates -> map pixel coordinates with pixel i's centre at i (align_corners=False)."""
    scale = uv.new_tensor([width, height])
    return (uv + 1) * 0.5 * scale - 0.5


def pixel_grid(height: int, width: int, like: Tensor) -> Tensor:
    """(H*W, 2) pixel-centre coordinates (x, y), row-major."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=like.dtype, device=like.device),
        torch.arange(width, dtype=like.dtype, device=like.device),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2)


def bone_weights(joints_px: Tensor, bones: Tensor, height: int, width: int, radius: float) -> Tensor:
    """Endpoint blend weights of every pixel near every bone.

    joints_px (B, 2, 21, 2) map pixels; bones (K, 2) long (parent, child).
    Returns (B, 2, K, 2, H*W): weight of the parent (index 0) and child (index 1) feature at each
    pixel, (1 - t, t) with t the pixel's position along the bone, zero farther than `radius`.
    """
    a = joints_px[:, :, bones[:, 0], None, :]  # (B, 2, K, 1, 2)
    b = joints_px[:, :, bones[:, 1], None, :]
    grid = pixel_grid(height, width, joints_px)  # (P, 2)
    ab = b - a
    t = ((grid - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)
    t = t.clamp(0.0, 1.0)  # (B, 2, K, P)
    dist = (grid - (a + t[..., None] * ab)).norm(dim=-1)
    near = (dist <= radius).to(joints_px.dtype)
    return torch.stack([(1 - t) * near, t * near], dim=3)


class _ToWidth(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)
        )


class BoneProjection(nn.Module):
    """`mfp` (one plane per hand and bone) or `single_plane` (all averaged into one plane)."""

    def __init__(self, feat_dim: int, out_ch: int, bones: Sequence[tuple[int, int]], multi_plane: bool) -> None:
        super().__init__()
        self.multi_plane = multi_plane
        self.factorised = True  # False: build the explicit planes (same output; the official code's FLOPs)
        self.register_buffer("bones", torch.tensor(bones, dtype=torch.long), persistent=False)
        planes = 2 * len(bones) * feat_dim if multi_plane else feat_dim
        self.conv = _ToWidth(planes, out_ch)

    def forward(self, joint_feat: Tensor, joints_uv: Tensor, size: tuple[int, int], radius: float) -> Tensor:
        """joint_feat (B, 2, 21, C), joints_uv (B, 2, 21, 2) in [-1, 1] -> (B, out_ch, H, W)."""
        h, w = size
        ends, weights = self._endpoints(joint_feat, joints_uv, h, w, radius)
        if self.multi_plane and self.factorised:
            return self.conv[2](self.conv[1](self._project_planes(ends, weights, h, w)))
        return self.conv(self._planes(ends, weights).reshape(joint_feat.shape[0], -1, h, w))

    def explicit_planes(self, joint_feat: Tensor, joints_uv: Tensor, size: tuple[int, int], radius: float) -> Tensor:
        """The feature planes themselves (B, planes, H, W), what the conv sees in the paper's
        formulation (for tests and figures)."""
        h, w = size
        ends, weights = self._endpoints(joint_feat, joints_uv, h, w, radius)
        return self._planes(ends, weights).reshape(joint_feat.shape[0], -1, h, w)

    def _endpoints(self, joint_feat: Tensor, joints_uv: Tensor, h: int, w: int, radius: float) -> tuple[Tensor, Tensor]:
        """Bone endpoint features (B, 2, K, 2, C) and their blend weights (B, 2, K, 2, P)."""
        weights = bone_weights(uv_to_map_pixels(joints_uv, h, w), self.bones, h, w, radius)
        ends = torch.stack([joint_feat[:, :, self.bones[:, 0]], joint_feat[:, :, self.bones[:, 1]]], dim=3)
        return ends, weights

    def _planes(self, ends: Tensor, weights: Tensor) -> Tensor:
        """MFP: (B, 2, K, C, P) one plane per hand and bone; single plane: (B, C, P) averaged."""
        if self.multi_plane:
            return torch.einsum("bhkec,bhkep->bhkcp", ends, weights)
        total = torch.einsum("bhkec,bhkep->bcp", ends, weights)
        count = (weights.sum(dim=3) > 0).to(weights.dtype).sum(dim=(1, 2))  # bones covering each pixel
        return total / count.clamp_min(1.0)[:, None]

    def _project_planes(self, ends: Tensor, weights: Tensor, h: int, w: int) -> Tensor:
        """conv3x3 of the 2 x K x C feature planes without building them (exact, the conv is linear).

        plane[(h,k,c), p] = sum_e ends[h,k,e,c] * weights[h,k,e,p], so
        conv(planes)[o] = conv(weights, G) with per-sample kernels G[o,(h,k,e)] = sum_c W[o,(h,k,c)] ends[h,k,e,c]:
        a conv over 2 x K x 2 endpoint weight maps instead of 2 x K x C planes (80 vs 2,560 input
        channels; DIR 36.4 -> 21.8 GFLOPs, docs/BENCHMARKS.md). `explicit_planes` is the direct form.
        ends (B, 2, K, 2, C); weights (B, 2, K, 2, P) -> (B, out_ch, H, W) before BN and ReLU.
        """
        conv = self.conv[0]
        b, _, k, _, c = ends.shape
        kernel = conv.weight.view(conv.out_channels, 2, k, c, 3, 3)
        g = torch.einsum("ohkcxy,bhkec->bohkexy", kernel, ends.to(kernel.dtype))
        out = F.conv2d(weights.reshape(1, b * 4 * k, h, w).to(g.dtype),
                       g.reshape(b * conv.out_channels, 4 * k, 3, 3), padding=1, groups=b)
        return out.view(b, conv.out_channels, h, w)


class HeatmapProjection(nn.Module):
    """`multi_plane_heatmap`: a Gaussian (sigma = radius map pixels) per joint and hand, 42 planes."""

    def __init__(self, out_ch: int, joints: int = 21) -> None:
        super().__init__()
        self.conv = _ToWidth(2 * joints, out_ch)

    def forward(self, joint_feat: Tensor, joints_uv: Tensor, size: tuple[int, int], radius: float) -> Tensor:
        h, w = size
        px = uv_to_map_pixels(joints_uv, h, w).flatten(1, 2)  # (B, 42, 2)
        d2 = ((px[:, :, None, :] - pixel_grid(h, w, px)) ** 2).sum(-1)  # (B, 42, P)
        heat = torch.exp(-d2 / (2 * radius**2))
        return self.conv(heat.view(px.shape[0], -1, h, w))


def build_projection(kind: str, feat_dim: int, out_ch: int, bones: Sequence[tuple[int, int]]) -> nn.Module | None:
    if kind == "none":
        return None
    if kind in ("mfp", "single_plane"):
        return BoneProjection(feat_dim, out_ch, bones, multi_plane=kind == "mfp")
    if kind == "multi_plane_heatmap":
        return HeatmapProjection(out_ch)
    raise ValueError(f"unknown projection {kind!r}; expected one of {PROJECTIONS}")

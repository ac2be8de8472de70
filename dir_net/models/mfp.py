"""Projecting joint features back onto the 2D map (DIR Sec. 3.2.3 and Table 1), official semantics.

Coordinates: uv in [-1, 1] of the crop (grid_sample, align_corners False) -> map pixels
q = (uv + 1) / 2 * (W, H); the pixel in row i, column c has its centre at p = (c + 0.5, i + 0.5).

Multi-plane feature projection (`mfp`, the paper's method, official `bone_proj`): for each hand
and each bone b = (parent P_b, child C_b) of the 20 (wrist-first skeleton), with a = q[P_b],
e = q[C_b] and d = (e - a) / |e - a|:
  dist = hypot(max((a - p).d, (p - e).d, 0), (p - a) x d)   (distance to the segment)
  mask = dist < radius                                      (strict; a zero-length bone -> NaN -> False)
  D_a = |p - a + 1e-6|, D_e = |p - e + 1e-6|                 (torch pairwise_distance semantics)
  w_parent = 1 - D_a / (D_a + D_e), w_child = 1 - D_e / (D_a + D_e)
  plane[b, c](p) = mask * (w_parent f[P_b, c] + w_child f[C_b, c])
Planes (B, 20 * C, H, W), channel b * C + c, left hand then right hand (2 x 20 x C in all), then
the projector's `fusion`: Conv3x3 (bias) -> BN -> ReLU -> Conv1x1.

Factorised form (`project_fused`, the default): the Conv3x3 is linear, so
conv(planes)[o] = sum_{h,b,e} conv(W_{h,b,e}, G[o,h,b,e]) with the endpoint weight maps
W_{h,b,e} = mask * w_e and per-sample kernels G[o,h,b,e] = sum_c K[o,(h,b,c)] f_h[end_e(b), c]:
a grouped conv over 2 x 20 x 2 = 80 weight maps instead of 2,560 planes (exact up to float
summation order; docs/BENCHMARKS.md). `explicit_planes` builds the planes themselves.

Table 1 ablations: `single_plane` (SFP) averages the features of every covering bone of both hands
into one C-channel plane; `multi_plane_heatmap` (MHP) gives one Gaussian (sigma = radius map
pixels) per joint and hand, 42 planes, positions only.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PROJECTIONS = ("none", "single_plane", "multi_plane_heatmap", "mfp")
PAIRWISE_EPS = 1e-6


def uv_to_pixels(uv: Tensor, height: int, width: int) -> Tensor:
    """[-1, 1] crop coordinates (..., 2) -> map pixel coordinates with pixel c's centre at c + 0.5."""
    return (uv + 1) / 2 * uv.new_tensor([width, height])


def pixel_centres(height: int, width: int, like: Tensor) -> Tensor:
    """(H*W, 2) pixel centres (x, y) = (c + 0.5, i + 0.5), row-major over (i, c) (official `img_gird`)."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=like.dtype, device=like.device) + 0.5,
                            torch.arange(width, dtype=like.dtype, device=like.device) + 0.5, indexing="ij")
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2)


def bone_weights(joints_px: Tensor, parents: Tensor, children: Tensor, height: int, width: int,
                 radius: float) -> tuple[Tensor, Tensor, Tensor]:
    """Masks and blend weights of every pixel for every bone (module docstring).

    joints_px (B, J, 2) map pixels; parents / children (K,) long.
    Returns mask (B, K, P) bool, w_parent and w_child (B, K, P), zero outside the mask.
    """
    p = pixel_centres(height, width, joints_px)[None, None]  # (1, 1, P, 2)
    a = joints_px[:, parents, None, :]  # (B, K, 1, 2)
    e = joints_px[:, children, None, :]
    ea = e - a
    d = ea / torch.hypot(ea[..., 0], ea[..., 1])[..., None]
    s = ((a - p) * d).sum(-1)
    t = ((p - e) * d).sum(-1)
    h = torch.clamp_min(torch.maximum(s, t), 0.0)
    pa = p - a
    c = pa[..., 0] * d[..., 1] - pa[..., 1] * d[..., 0]
    mask = torch.hypot(h, c) < radius  # (B, K, P); NaN (zero-length bone) -> False
    dist_a = torch.linalg.vector_norm(p - a + PAIRWISE_EPS, dim=-1)
    dist_e = torch.linalg.vector_norm(p - e + PAIRWISE_EPS, dim=-1)
    total = dist_a + dist_e
    zero = torch.zeros((), dtype=joints_px.dtype, device=joints_px.device)
    w_parent = torch.where(mask, 1 - dist_a / total, zero)
    w_child = torch.where(mask, 1 - dist_e / total, zero)
    return mask, w_parent, w_child


def explicit_planes(feat: Tensor, parents: Tensor, children: Tensor, w_parent: Tensor, w_child: Tensor,
                    height: int, width: int) -> Tensor:
    """One hand's planes (B, K * C, H, W), channel k * C + c. feat (B, J, C); weights (B, K, P)."""
    planes = (w_parent[:, :, None] * feat[:, parents, :, None] + w_child[:, :, None] * feat[:, children, :, None])
    return planes.reshape(feat.shape[0], -1, height, width)


def project_fused(conv: nn.Conv2d, ends: Tensor, weights: Tensor, height: int, width: int) -> Tensor:
    """conv(explicit planes of both hands) without building them (module docstring).

    ends (B, 2, K, 2, C): endpoint features per hand (left, right), bone, end (parent, child);
    weights (B, 2, K, 2, P): the matching endpoint weight maps. Returns (B, O, H, W) incl. bias.
    """
    b, hands, k, _, c = ends.shape
    kernel = conv.weight.view(conv.out_channels, hands, k, c, *conv.kernel_size)
    g = torch.einsum("ohkcxy,bhkec->bohkexy", kernel, ends.to(kernel.dtype))
    maps = weights.reshape(1, b * hands * k * 2, height, width).to(g.dtype)
    out = F.conv2d(maps, g.reshape(b * conv.out_channels, hands * k * 2, *conv.kernel_size),
                   padding=conv.padding, groups=b).view(b, conv.out_channels, height, width)
    return out if conv.bias is None else out + conv.bias[:, None, None]


def single_plane(feats: Sequence[Tensor], weights: Sequence[tuple[Tensor, Tensor, Tensor]], parents: Tensor,
                 children: Tensor, height: int, width: int) -> Tensor:
    """SFP: the mean of the covering bones' blended features (both hands) per pixel, (B, C, H, W)."""
    total, count = 0, 0
    for feat, (mask, w_parent, w_child) in zip(feats, weights):
        planes = (w_parent[:, :, None] * feat[:, parents, :, None] + w_child[:, :, None] * feat[:, children, :, None])
        total = total + planes.sum(dim=1)  # (B, C, P)
        count = count + mask.sum(dim=1)  # (B, P)
    plane = total / count.clamp_min(1).to(feats[0].dtype)[:, None]
    return plane.reshape(feats[0].shape[0], -1, height, width)


def joint_heatmaps(joints_px: Tensor, height: int, width: int, sigma: float) -> Tensor:
    """MHP: (B, J, 2) map pixels -> (B, J, H, W) Gaussians exp(-|p - q|^2 / (2 sigma^2))."""
    d2 = (joints_px[:, :, None, :] - pixel_centres(height, width, joints_px)).square().sum(-1)
    return torch.exp(-d2 / (2 * sigma**2)).view(joints_px.shape[0], -1, height, width)

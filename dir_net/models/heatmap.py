"""Heatmap heads and heatmap maths shared by InterNet (3D) and SimpleBaseline2D (2D).

Coordinate conventions:
- crop pixels: pixel centres at integers, the crop spans [-0.5, S - 0.5];
- heatmap cells, two conventions (`CELL_CONVENTIONS`, config `model.*.heatmap_px`):
  `centered` (models trained here): cell i of a map with stride s covers crop pixels
  [s i - 0.5, s (i + 1) - 0.5], so its centre is crop px s (i + 0.5) - 0.5; mirroring the crop
  (u -> S - 1 - u) mirrors the map (x -> W - 1 - x) with no half-cell shift;
  `scaled` (official InterNet, mmpose): cell i is crop px s i (1.5 px less for s = 4); a mirror is
  then off by s - 1 px, which mmpose's flip test compensates by shifting the map one cell;
- depth bins: bin k of `bins` over [-R, R) holds depth (k - bins / 2) * 2R / bins, so depth 0 (the
  root) sits exactly on bin bins / 2 (as in the official InterNet code).

Heatmap tensors are (..., *spatial) with the spatial axes last: (D, H, W) in 3D, (H, W) in 2D.
Coordinates of a heatmap point are given in the same axis order: (z, y, x) or (y, x).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn


class DeconvHead(nn.Module):
    """Upsampler of the Simple Baselines / InterNet kind: `num_deconv` x (ConvTranspose 4x4,
    stride 2, BN, ReLU) then a 1x1 conv to `out_channels`. Each deconv doubles the resolution."""

    def __init__(self, in_channels: int, out_channels: int, num_deconv: int = 3, channels: int = 256,
                 init_std: float = 0.001) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for _ in range(num_deconv):
            layers += [
                nn.ConvTranspose2d(ch, channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
            ch = channels
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(ch, out_channels, 1)
        self.upsampling = 2**num_deconv
        for m in self.modules():  # Gaussian init as the papers (sigma 0.001), BN identity
            if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                nn.init.normal_(m.weight, std=init_std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.final(self.deconv(x))


def mlp(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    """Linear -> ReLU -> Linear (InterNet's root-depth and hand-type heads)."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_features))


# --- coordinate maps ---------------------------------------------------------------------------

CELL_CONVENTIONS = ("centered", "scaled")


def _check_convention(convention: str) -> None:
    if convention not in CELL_CONVENTIONS:
        raise ValueError(f"heatmap cell convention must be one of {CELL_CONVENTIONS}, got {convention!r}")


def crop_to_heatmap(uv: Tensor, stride: float, convention: str = "centered") -> Tensor:
    """Crop pixels -> heatmap cell coordinates (any shape)."""
    _check_convention(convention)
    return (uv + 0.5) / stride - 0.5 if convention == "centered" else uv / stride


def heatmap_to_crop(xy: Tensor, stride: float, convention: str = "centered") -> Tensor:
    """Heatmap cell coordinates -> crop pixels (any shape)."""
    _check_convention(convention)
    return (xy + 0.5) * stride - 0.5 if convention == "centered" else xy * stride


def depth_to_bins(z: Tensor, half_range: float, bins: int) -> Tensor:
    """Depth (same unit as half_range) -> continuous bin coordinate; 0 -> bins / 2."""
    return z * (bins / (2.0 * half_range)) + bins / 2.0


def bins_to_depth(k: Tensor, half_range: float, bins: int) -> Tensor:
    return (k - bins / 2.0) * (2.0 * half_range / bins)


def apply_affine(points: Tensor, affine: Tensor) -> Tensor:
    """points (B, ..., 2) and per-sample affines (B, 2, 3) -> (B, ..., 2)."""
    flat = points.reshape(points.shape[0], -1, 2)
    out = flat @ affine[:, :, :2].transpose(1, 2) + affine[:, None, :, 2]
    return out.reshape(points.shape)


# --- targets and losses ------------------------------------------------------------------------

def gaussian_heatmaps(centers: Tensor, sizes: Sequence[int], sigma: float, peak: float = 1.0) -> Tensor:
    """Separable Gaussian blobs: centers (..., n) in axis order -> (..., *sizes).

    exp(-|p - c|^2 / 2 sigma^2) factorises over the axes, so the target is an outer product of n
    1D profiles built by broadcasting (no loop over joints or voxels).
    """
    n = len(sizes)
    if centers.shape[-1] != n:
        raise ValueError(f"centers have {centers.shape[-1]} coordinates for {n} spatial axes")
    out = None
    for axis, size in enumerate(sizes):
        grid = torch.arange(size, device=centers.device, dtype=centers.dtype)
        profile = torch.exp(-((grid - centers[..., axis, None]) ** 2) / (2.0 * sigma**2))  # (..., size)
        profile = profile.reshape(profile.shape[:-1] + (1,) * axis + (size,) + (1,) * (n - axis - 1))
        out = profile if out is None else out * profile
    return out * peak


def masked_mse(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Mean over every element of (pred - target)^2 x weight; weight (...) broadcasts over the
    trailing spatial axes (e.g. joint validity (B, 2, 21) for (B, 2, 21, D, H, W) maps)."""
    spatial = pred.dim() - weight.dim()
    w = weight.reshape(weight.shape + (1,) * spatial)
    return ((pred.float() - target) ** 2 * w).mean()


# --- decoding ----------------------------------------------------------------------------------

def _unravel(flat_index: Tensor, sizes: Sequence[int]) -> Tensor:
    """Flat indices (...) -> (..., n) integer coordinates in axis order."""
    coords = []
    rest = flat_index
    for size in reversed(sizes):
        coords.append(rest % size)
        rest = torch.div(rest, size, rounding_mode="floor")
    return torch.stack(coords[::-1], dim=-1)


def argmax_nd(heatmaps: Tensor, ndim: int, nonpositive_invalid: bool = False) -> Tensor:
    """(..., *spatial) -> (..., ndim) float coordinates of the maximum, in axis order (ties: the
    first in row-major order). With `nonpositive_invalid` (mmpose) a map whose maximum is <= 0
    gives -1 on every axis."""
    sizes = heatmaps.shape[-ndim:]
    flat = heatmaps.reshape(heatmaps.shape[: -ndim] + (-1,))
    value, index = flat.max(-1)
    coords = _unravel(index, sizes).float()
    if nonpositive_invalid:
        coords = torch.where((value > 0)[..., None], coords, torch.full_like(coords, -1.0))
    return coords


def _window_offsets(radius: int, ndim: int, device: torch.device) -> Tensor:
    """(K, ndim) integer offsets of the cube [-radius, radius]^ndim."""
    r = torch.arange(-radius, radius + 1, device=device)
    return torch.stack(torch.meshgrid(*([r] * ndim), indexing="ij"), dim=-1).reshape(-1, ndim)


def _strides(sizes: Sequence[int], device: torch.device) -> Tensor:
    """Flat-index step of each axis (row-major)."""
    steps = [math.prod(sizes[i + 1:]) for i in range(len(sizes))]
    return torch.tensor(steps, device=device)


def local_soft_argmax(heatmaps: Tensor, ndim: int, radius: int) -> Tensor:
    """Sub-cell peak: the mean position weighted by max(h, 0) over a window around the argmax.

    The window reaches `radius` cells along each axis but is cut symmetrically at the map border,
    so it stays centred on the peak: for a blob peaked within half a cell of the argmax the result
    is never further off than the argmax itself, and it approaches the exact centre as the window
    grows (radius ~ 2 sigma leaves < 0.1 cell). A soft-argmax restricted to the peak, so noise far
    from it cannot pull the estimate; the argmax where the window holds no mass.
    Returns (..., ndim) float coordinates in axis order.
    """
    sizes = tuple(heatmaps.shape[-ndim:])
    flat = heatmaps.reshape(heatmaps.shape[: -ndim] + (-1,)).float()
    peak = _unravel(flat.argmax(-1), sizes)  # (..., n) long
    bounds = torch.tensor(sizes, device=heatmaps.device)
    reach = torch.minimum(peak, bounds - 1 - peak).clamp(max=radius)  # (..., n) symmetric reach
    offsets = _window_offsets(radius, ndim, heatmaps.device)  # (K, n)
    inside = (offsets.abs() <= reach[..., None, :]).all(-1)  # (..., K)
    cells = (peak[..., None, :] + offsets).clamp(min=0).minimum(bounds - 1)  # (..., K, n)
    index = (cells * _strides(sizes, heatmaps.device)).sum(-1)
    weight = flat.gather(-1, index).clamp(min=0) * inside  # (..., K)
    total = weight.sum(-1, keepdim=True)
    mean = (weight[..., None] * cells.float()).sum(-2) / total.clamp(min=1e-12)
    return torch.where(total > 0, mean, peak.float())


OFFSET_BORDERS = ("per_axis", "mmpose")


def quarter_offset_argmax(heatmaps: Tensor, ndim: int, border: str = "per_axis",
                          nonpositive_invalid: bool = False) -> Tensor:
    """Argmax moved a quarter cell towards the higher neighbour along each axis (the Simple
    Baselines decoding). (..., *spatial) -> (..., ndim) float coordinates.

    border `per_axis`: an axis moves when its own coordinate is in 1..size-2; `mmpose`: no axis
    moves unless every coordinate is in 2..size-2. `nonpositive_invalid` (mmpose): a map whose
    maximum is <= 0 gives -1 on every axis, without offset.
    """
    if border not in OFFSET_BORDERS:
        raise ValueError(f"quarter-offset border rule must be one of {OFFSET_BORDERS}, got {border!r}")
    sizes = tuple(heatmaps.shape[-ndim:])
    lead = heatmaps.shape[: -ndim]
    flat = heatmaps.reshape(lead + (-1,)).float()
    value, index = flat.max(-1, keepdim=True)
    peak = _unravel(index[..., 0], sizes)
    coords = peak.float()
    steps = _strides(sizes, heatmaps.device)
    bounds = torch.tensor(sizes, device=heatmaps.device)
    all_inside = ((peak > 1) & (peak < bounds - 1)).all(-1)  # mmpose: every coordinate in 2..size-2
    for axis, size in enumerate(sizes):
        pos = peak[..., axis]
        interior = (pos > 0) & (pos < size - 1) if border == "per_axis" else all_inside
        step = int(steps[axis])
        hi = flat.gather(-1, (index + step).clamp(max=flat.shape[-1] - 1))[..., 0]
        lo = flat.gather(-1, (index - step).clamp(min=0))[..., 0]
        coords[..., axis] += 0.25 * torch.sign(hi - lo) * interior
    if nonpositive_invalid:
        coords = torch.where(value > 0, coords, torch.full_like(coords, -1.0))
    return coords


def flip_back(heatmaps: Tensor, shift: bool = False) -> Tensor:
    """Heatmaps of a mirrored crop mirrored back along x (last axis). With `shift` (mmpose's
    shift_heatmap) columns 1..W-1 then take the values of columns 0..W-2; column 0 keeps its own."""
    back = torch.flip(heatmaps, dims=[-1])
    if shift:
        back = torch.cat([back[..., :1], back[..., :-1]], -1)
    return back


def soft_argmax_1d(logits: Tensor) -> Tensor:
    """(..., K) logits -> (...) expected bin index under softmax (differentiable)."""
    prob = torch.softmax(logits.float(), dim=-1)
    bins = torch.arange(logits.shape[-1], device=logits.device, dtype=prob.dtype)
    return (prob * bins).sum(-1)

"""Loss terms of DIR's official training, with masks (docs/DIR_LOSSES.md).

Reduction rule of the official losses: each term is a mean over the elements of one item (one hand
of one image, or one image) and then a mean over the items of the batch. Masks generalise it: the
item mean runs over its valid elements, the batch mean over the items with any valid element.
With every element valid this is exactly the official reduction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

EDGE_EPS = 1e-12  # added under the square root of every edge length (official EdgeLengthLoss)


def item_means(values: Tensor, mask: Tensor, item_dims: int) -> tuple[Tensor, Tensor]:
    """Mean of `values` over every dim after the first `item_dims`, counting only masked-in elements.

    values (*items, *elements); mask broadcastable to values after right-padding with singleton
    dims (e.g. (B, 2, K) for values (B, 2, K, C)). Returns (means (*items), any_valid (*items) bool).
    """
    mask = mask.to(values.dtype)
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.expand_as(values)
    dims = tuple(range(item_dims, values.dim()))
    count = mask.sum(dim=dims)
    means = (values * mask).sum(dim=dims) / count.clamp_min(1.0)
    return means, count > 0


def batch_mean(means: Tensor, valid: Tensor) -> Tensor:
    """Mean over dim 0 (the batch) of the valid items: (B, *rest) -> (*rest); 0 where none is valid
    (still differentiable)."""
    valid = valid.to(means.dtype)
    return (means * valid).sum(dim=0) / valid.sum(dim=0).clamp_min(1.0)


def hand_sum(values: Tensor, mask: Tensor) -> Tensor:
    """Per-hand official reduction summed over the two hands: values (B, 2, *elements), mask
    (B, 2[, ...]) -> scalar = sum over hands of (mean over images of the per-hand element mean)."""
    means, valid = item_means(values, mask, item_dims=2)  # (B, 2)
    return batch_mean(means, valid).sum()


def image_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Official reduction of a per-image term: values (B, *elements), mask (B[, ...]) -> scalar."""
    means, valid = item_means(values, mask, item_dims=1)  # (B,)
    return batch_mean(means, valid)


def huber(pred: Tensor, target: Tensor, delta: float) -> Tensor:
    """Element-wise Huber loss (torch convention, NOT divided by delta):
    0.5 x^2 for |x| < delta, delta * (|x| - delta / 2) otherwise, x = pred - target."""
    return F.huber_loss(pred.float(), target.float(), reduction="none", delta=delta)


def face_edges(vertices: Tensor, faces: Tensor) -> Tensor:
    """vertices (B, 2, V, 3), faces (2, F, 3) per hand -> edge vectors (B, 2, F, 3 edges, 3):
    v1 - v0, v2 - v1, v0 - v2."""
    hand = torch.arange(2, device=faces.device)[:, None, None]
    corners = vertices[:, hand, faces]  # (B, 2, F, 3 corners, 3)
    return corners.roll(-1, dims=3) - corners


def mesh_targets(target: Tensor, faces: Tensor) -> tuple[Tensor, Tensor]:
    """GT side of the mesh terms, computed once per batch for every stage: (B, 2, V, 3) ->
    edge lengths sqrt(|e|^2 + 1e-12) (B, 2, F, 3) and unit face normals (B, 2, F, 3), the normal of
    each GT face from its two unit edges at corner 0 (scale-free; its sign does not matter)."""
    edges = face_edges(target, faces)
    unit = F.normalize(edges, dim=-1)
    normals = F.normalize(torch.cross(unit[..., 0, :], -unit[..., 2, :], dim=-1), dim=-1)
    return (edges.square().sum(dim=-1) + EDGE_EPS).sqrt(), normals


def mesh_errors(pred: Tensor, faces: Tensor, gt_lengths: Tensor, gt_normals: Tensor) -> tuple[Tensor, Tensor]:
    """Per face edge of the predicted mesh (B, 2, V, 3), against `mesh_targets`, both (B, 2, F, 3):
    edge-length error | |e_pred| - |e_gt| | (units of the vertices) and normal error
    |<e_pred / |e_pred|, n_gt>|."""
    edges = face_edges(pred, faces)
    lengths = (edges.square().sum(dim=-1) + EDGE_EPS).sqrt()
    normal = (F.normalize(edges, dim=-1) * gt_normals[..., None, :]).sum(dim=-1).abs()
    return (lengths - gt_lengths).abs(), normal


def lovasz_grad(sorted_fg: Tensor) -> Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss; sorted_fg (C, P) by descending error."""
    total = sorted_fg.sum(dim=-1, keepdim=True)
    intersection = total - sorted_fg.cumsum(dim=-1)
    union = total + (1 - sorted_fg).cumsum(dim=-1)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=-1)


def lovasz_softmax(scores: Tensor, labels: Tensor) -> Tensor:
    """Lovasz-softmax (Berman et al., CVPR 2018) over a flat set of pixels: scores (P, C) (class
    probabilities, or whatever the caller feeds: DIR's official training feeds raw logits),
    labels (P,) long. Mean over the classes present in `labels`; 0 for an empty pixel set."""
    if labels.numel() == 0:
        return scores.sum() * 0
    fg = F.one_hot(labels, scores.shape[1]).to(scores.dtype).t()  # (C, P)
    errors = (fg - scores.t()).abs()
    errors_sorted, order = errors.sort(dim=-1, descending=True)
    per_class = (errors_sorted * lovasz_grad(fg.gather(1, order))).sum(dim=-1)  # (C,)
    present = fg.sum(dim=-1) > 0
    return per_class[present].mean()


def weighted_cross_entropy(logits: Tensor, target: Tensor, class_weights: Tensor) -> Tensor:
    """torch's CrossEntropyLoss(weight) with mean reduction: sum_i w[y_i] nll_i / sum_i w[y_i];
    logits (N, C, h, w), target (N, h, w) long; 0 for N = 0."""
    if target.numel() == 0:
        return logits.sum() * 0
    return F.cross_entropy(logits, target, weight=class_weights)


def resize_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, A, A) long -> (B, h, w) by nearest neighbour (F.interpolate 'nearest', as official)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()


def resize_dense(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, C, A, A) -> (B, C, h, w) bilinear, align_corners False (as official)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)

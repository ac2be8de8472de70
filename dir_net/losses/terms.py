"""Loss terms with masks: robust regression, mesh smoothness, segmentation (CE + Lovasz-softmax)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` (..., K) over the entries where `mask` (broadcastable to values[..., 0]
    or to values) is non-zero; 0 (still differentiable) when nothing is valid."""
    mask = mask.to(values.dtype)
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.expand_as(values)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def smooth_l1(pred: Tensor, target: Tensor, mask: Tensor, delta: float) -> Tensor:
    """Masked mean of the smooth L1 loss: 0.5 x^2 / delta below delta, |x| - delta / 2 above.

    This is the paper's "smooth L1" (Fast R-CNN) with threshold delta, i.e. torch's
    huber_loss(delta) / delta: L1-scaled, so the loss weights compare with plain L1 terms.
    """
    return masked_mean(F.smooth_l1_loss(pred, target, reduction="none", beta=delta), mask)


def face_edges(vertices: Tensor, faces: Tensor) -> Tensor:
    """vertices (B, 2, V, 3), faces (2, F, 3) per hand -> edge vectors (B, 2, F, 3 edges, 3)."""
    hand = torch.arange(2, device=faces.device)[:, None, None]
    corners = vertices[:, hand, faces]  # (B, 2, F, 3 corners, 3)
    return corners.roll(-1, dims=3) - corners  # v1 - v0, v2 - v1, v0 - v2


def edge_length_loss(pred: Tensor, target: Tensor, faces: Tensor, mask: Tensor) -> Tensor:
    """| |e_pred| - |e_gt| | over every face edge; mask (B, 2)."""
    diff = (face_edges(pred, faces).norm(dim=-1) - face_edges(target, faces).norm(dim=-1)).abs()
    return masked_mean(diff, mask[:, :, None])


def normal_consistency_loss(pred: Tensor, target: Tensor, faces: Tensor, mask: Tensor) -> Tensor:
    """|<e_pred / |e_pred|, n_gt>| over every face edge: predicted edges lie in the GT face planes."""
    gt_edges = face_edges(target, faces)
    normals = F.normalize(torch.cross(gt_edges[..., 0, :], -gt_edges[..., 2, :], dim=-1), dim=-1)
    cos = (F.normalize(face_edges(pred, faces), dim=-1) * normals[..., None, :]).sum(-1).abs()
    return masked_mean(cos, mask[:, :, None])


def lovasz_grad(sorted_fg: Tensor) -> Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss; sorted_fg (C, P) by descending error."""
    total = sorted_fg.sum(dim=-1, keepdim=True)
    intersection = total - sorted_fg.cumsum(dim=-1)
    union = total + (1 - sorted_fg).cumsum(dim=-1)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=-1)


def lovasz_softmax(probs: Tensor, labels: Tensor) -> Tensor:
    """Lovasz-softmax (Berman et al., CVPR 2018) over pixels: probs (P, C), labels (P,) long.

    Averaged over the classes present in `labels`; 0 for an empty pixel set.
    """
    if labels.numel() == 0:
        return probs.sum() * 0
    fg = F.one_hot(labels, probs.shape[1]).to(probs.dtype).t()  # (C, P)
    errors = (fg - probs.t()).abs()
    errors_sorted, order = errors.sort(dim=-1, descending=True)
    per_class = (errors_sorted * lovasz_grad(fg.gather(1, order))).sum(dim=-1)
    present = fg.sum(dim=-1) > 0
    return per_class[present].mean()


def segmentation_losses(logits: Tensor, target: Tensor, valid: Tensor, class_weights: Tensor) -> tuple[Tensor, Tensor]:
    """Weighted cross-entropy and Lovasz-softmax over the pixels of valid images.

    logits (B, C, h, w); target (B, h, w) long; valid (B,) -> (ce, lovasz) scalars.
    """
    keep = valid > 0
    if not bool(keep.any()):
        zero = logits.sum() * 0
        return zero, zero
    logits, target = logits[keep], target[keep]
    ce_pixels = F.cross_entropy(logits, target, weight=class_weights, reduction="sum")
    ce = ce_pixels / class_weights[target].sum()
    probs = logits.softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    return ce, lovasz_softmax(probs, target.reshape(-1))


def resize_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, A, A) long -> (B, h, w) by nearest neighbour."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()


def resize_dense(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, C, A, A) -> (B, C, h, w): area average when shrinking, bilinear when enlarging."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    mode = "area" if maps.shape[-2] > size[0] else "bilinear"
    return F.interpolate(maps, size=size, mode=mode, **({} if mode == "area" else {"align_corners": False}))

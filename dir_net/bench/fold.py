"""Inference-only BatchNorm folding: conv -> BN pairs become one conv (eval-mode statistics).

Folded pairs: consecutive (Conv2d or ConvTranspose2d, BatchNorm2d) children of an nn.Sequential, and sibling
attributes named convN / bnN (the ResNet bottleneck and stem layout), where the conv output
feeds only that BN. Pre-activation blocks (BN -> ReLU -> conv) are left alone: their BN follows
a sum, not a conv. The model must be in eval mode; its outputs are unchanged up to rounding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d)
            and bn.track_running_stats and conv.out_channels == bn.num_features)


def _fuse(conv: nn.Module, bn: nn.BatchNorm2d) -> nn.Module:
    return fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))


def _fold_sequential(seq: nn.Sequential) -> int:
    names = list(seq._modules)
    count = 0
    for a, b in zip(names, names[1:]):
        conv, bn = seq._modules[a], seq._modules[b]
        if _foldable(conv, bn):
            seq._modules[a] = _fuse(conv, bn)
            seq._modules[b] = nn.Identity()
            count += 1
    return count


def _fold_named_pairs(module: nn.Module) -> int:
    count = 0
    for name, child in list(module.named_children()):
        if name.startswith("conv") and hasattr(module, "bn" + name[4:]):
            bn = getattr(module, "bn" + name[4:])
            if _foldable(child, bn):
                setattr(module, name, _fuse(child, bn))
                setattr(module, "bn" + name[4:], nn.Identity())
                count += 1
    return count


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> int:
    """Fold every conv -> BN pair of an eval-mode `model` in place; returns the number folded."""
    if model.training:
        raise ValueError("fold_batchnorm needs an eval-mode model (it bakes in the running statistics)")
    count = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            count += _fold_sequential(module)
        else:
            count += _fold_named_pairs(module)
    return count

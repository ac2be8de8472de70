"""DIR encoder heads: per-hand spatial attention, initial MANO regression, hand offset, aux maps.

Per-hand parameter vector layout (`HandParams`): [root 6D (6) | finger PCA (P) | betas (10) |
weak-perspective camera s, tx, ty (3)], so D = 19 + P (64 for the full 45-component basis).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

ROOT_DIM = 6
BETAS_DIM = 10
CAM_DIM = 3
OFFSET_UNIT = 0.15  # metres: the offset head and 3D coordinate inputs work in units of 15 cm
CAM_SCALE_INIT = 6.0  # weak-perspective scale (uv per metre) of a two-hand crop about 0.33 m wide
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # first two columns of the identity rotation


def param_dim(num_pca: int) -> int:
    return ROOT_DIM + num_pca + BETAS_DIM + CAM_DIM


def split_params(params: Tensor, num_pca: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(B, 2, D) -> root_6d (B,2,6), finger_pca (B,2,P), betas (B,2,10), cam (B,2,3)."""
    return tuple(params.split([ROOT_DIM, num_pca, BETAS_DIM, CAM_DIM], dim=-1))  # type: ignore[return-value]


def params_prior(num_pca: int) -> Tensor:
    """(D,) the neutral parameter vector: identity root, mean pose/shape, camera (s0, 0, 0)."""
    prior = torch.zeros(param_dim(num_pca))
    prior[:ROOT_DIM] = torch.tensor(IDENTITY_6D)
    prior[-CAM_DIM] = CAM_SCALE_INIT
    return prior


class HandLinear(nn.Module):
    """Separate linear maps for the two hands, computed in one batched matmul.

    (B, 2, in) -> (B, 2, out); hand 0 uses weight[0], hand 1 weight[1].
    """

    def __init__(self, in_features: int, out_features: int, hands: int = 2) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(hands, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(hands, out_features))
        bound = 1.0 / math.sqrt(in_features)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.einsum("bhi,hio->bho", x, self.weight) + self.bias


def _attention_branch(in_ch: int, kind: str) -> nn.Sequential:
    """Conv stack producing one attention logit map; `kind` sets its size (see HandAttention)."""
    if kind == "official":
        mid, k = 1024, 3
    elif kind == "light":
        mid, k = 512, 1
    else:
        raise ValueError(f"unknown attention kind {kind!r}")
    mid = max(1, mid * in_ch // 2048)  # proportional for reduced-width test backbones
    return nn.Sequential(
        nn.Conv2d(in_ch, mid, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(mid),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid, 1, 1),
    )


class HandAttention(nn.Module):
    """Per-hand spatial attention pooling of the last encoder map: G = sum(A*F) / sum(A).

    kind "official": conv3x3 C->1024, BN, ReLU, conv1x1 ->1 per hand (what the official code
    builds; 37.8M parameters of its total). "light": conv1x1 C->512, BN, ReLU, conv1x1 ->1 per hand,
    which lands the whole model at the paper's 55.1M. "none": both hands use global average pooling
    (the supplement's "w/o Attn" row). Returns features (B, 2, C) and maps (B, 2, h, w) or None.
    """

    def __init__(self, in_ch: int, kind: str) -> None:
        super().__init__()
        self.kind = kind
        if kind != "none":
            self.right = _attention_branch(in_ch, kind)
            self.left = _attention_branch(in_ch, kind)

    def forward(self, feat: Tensor) -> tuple[Tensor, Tensor | None]:
        if self.kind == "none":
            pooled = feat.mean(dim=(2, 3))
            return torch.stack([pooled, pooled], dim=1), None
        attn = torch.sigmoid(torch.cat([self.right(feat), self.left(feat)], dim=1))  # (B, 2, h, w)
        weighted = torch.einsum("bkhw,bchw->bkc", attn, feat)
        return weighted / attn.sum(dim=(2, 3)).clamp_min(1e-6)[..., None], attn


class InitialRegressor(nn.Module):
    """Global hand features -> per-hand MANO + camera parameters; pooled map -> hand offset (m)."""

    def __init__(self, in_ch: int, num_pca: int) -> None:
        super().__init__()
        self.num_pca = num_pca
        self.params = HandLinear(in_ch, param_dim(num_pca))
        self.offset = nn.Linear(in_ch, 3)
        self.register_buffer("prior", params_prior(num_pca), persistent=False)
        for w in (self.params.weight, self.offset.weight):
            nn.init.normal_(w, std=1e-3)
        nn.init.zeros_(self.offset.bias)

    def forward(self, hand_feat: Tensor, feat: Tensor) -> tuple[Tensor, Tensor]:
        """hand_feat (B, 2, C), feat (B, C, h, w) -> params (B, 2, D), offset (B, 3) metres."""
        params = self.params(hand_feat) + self.prior
        offset = self.offset(feat.mean(dim=(2, 3))) * OFFSET_UNIT
        return params, offset


class AuxHeads(nn.Module):
    """Segmentation logits (0 background, 1 right, 2 left) and dense correspondence in [0, 1]."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.seg = self._head(in_ch, 3)
        self.dense = self._head(in_ch, 3)

    @staticmethod
    def _head(in_ch: int, out_ch: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, out_ch, 1),
        )

    def forward(self, feat: Tensor) -> dict[str, Tensor]:
        return {"seg": self.seg(feat), "dense": torch.sigmoid(self.dense(feat))}

"""Transformer across the 42 joints of both hands (inter-hand interaction; official `interaction`).

x = tokens + spatial_pos_embed; for each block: x = Block(x); x = spatial_norm(x) (the same
LayerNorm, eps 1e-6, after every block); out = head(x) = Linear(LN(x), eps 1e-5) -> out_dim.
Block (pre-norm, LN eps 1e-6): x + proj(MHSA(norm1(x))), then x + fc2(GELU(fc1(norm2(x)))); qkv is
one Linear with bias, channels [q | k | v], each split into heads of consecutive channels; exact
(erf) GELU; no dropout, drop-path or mask.

Blocks are named `STEblocks.1` ... `STEblocks.n` as in the official checkpoint, which builds 4
blocks but never runs block 0; that block is not built here (the converter drops it).
`JointHead` is what remains when the transformer is switched off (Table 1 ablations): the head
alone, so the regressor and the projection still see `out_dim` channels per joint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(c / heads)) v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _init_linear_ln(module: nn.Module) -> None:
    """timm's ViT initialisation (truncated normal 0.02 for Linear, LN (1, 0))."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class JointHead(nn.Module):
    """LN(eps 1e-5) + Linear dim -> out_dim on each token (the transformer's `head`)."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, out_dim))
        _init_linear_ln(self)

    def forward(self, x: Tensor, trace: dict | None = None, prefix: str = "") -> Tensor:
        return self.head(x)


class JointTransformer(JointHead):
    """Tokens (B, 42, dim) -> (B, 42, out_dim); see the module docstring."""

    def __init__(self, dim: int, out_dim: int, layers: int, heads: int, mlp_ratio: float, tokens: int = 42) -> None:
        super().__init__(dim, out_dim)
        self.spatial_pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.STEblocks = nn.ModuleDict({str(i): Block(dim, heads, mlp_ratio) for i in range(1, layers + 1)})
        self.spatial_norm = nn.LayerNorm(dim, eps=1e-6)
        _init_linear_ln(self)
        nn.init.trunc_normal_(self.spatial_pos_embed, std=0.02)

    def forward(self, x: Tensor, trace: dict | None = None, prefix: str = "") -> Tensor:
        x = x + self.spatial_pos_embed
        for name, block in self.STEblocks.items():
            x = self.spatial_norm(block(x))
            if trace is not None:
                trace[f"{prefix}tf_block{name}"] = x
        return self.head(x)

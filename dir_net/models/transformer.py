"""Pre-norm transformer across the 42 joints of both hands (inter-hand interaction)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Block(nn.Module):
    """x + MHSA(LN(x)), then x + MLP(LN(x)); no dropout."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, C / heads)
        x = x + self.proj(attn.transpose(1, 2).reshape(b, n, c))
        return x + self.mlp(self.norm2(x))


class JointTransformer(nn.Module):
    """Tokens (B, 2, 21, C) -> same shape; learned positional embedding per (hand, joint)."""

    def __init__(self, dim: int, layers: int, heads: int, mlp_ratio: float, tokens: int = 42) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        tokens = x.reshape(shape[0], -1, shape[-1]) + self.pos
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens).view(shape)

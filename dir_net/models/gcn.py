"""Semantic graph convolution over the 21-joint hand skeleton (intra-hand interaction).

Dense formulation: with 21 nodes the whole graph is a (21, 21) matrix, and a layer is two
batched matmuls. A torch-geometric MessagePassing version of the same layer (edge-index graph of
B*2 hands, `utils.softmax` over incoming edges) gave identical outputs (max diff 1e-7) but was
slower on CPU, fwd+bwd of one 128-channel layer: 0.77 ms vs 0.43 ms for 4 hands and 13.4 ms vs
5.7 ms for 128 hands (batch 64), because it materialises per-edge messages and index scatters for
what is a tiny dense product. So the dense form is kept.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn


def skeleton_adjacency(parents: Sequence[int]) -> Tensor:
    """(N, N) bool: bones in both directions plus self loops."""
    n = len(parents)
    adj = torch.eye(n, dtype=torch.bool)
    for child, parent in enumerate(parents):
        if parent >= 0:
            adj[parent, child] = adj[child, parent] = True
    return adj


class SemGraphConv(nn.Module):
    """Semantic graph convolution (Zhao et al., CVPR 2019) with per-node modulation.

    out_i = a_ii * (x_i W_self) + sum_{j != i} a_ij * (x_j W_nbr), then scaled per node and channel.
    a = row-softmax of learnable edge logits restricted to the skeleton (self loops included), so
    every bone learns its own weight; `node_scale` (N, C_out) gives each joint its own channel gains.
    """

    def __init__(self, in_dim: int, out_dim: int, adjacency: Tensor) -> None:
        super().__init__()
        n = adjacency.shape[0]
        rows, cols = adjacency.nonzero(as_tuple=True)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.register_buffer("eye", torch.eye(n), persistent=False)
        self.weight = nn.Parameter(torch.empty(2, in_dim, out_dim))  # [self, neighbour]
        self.edge_logits = nn.Parameter(torch.ones(rows.numel()))
        self.node_scale = nn.Parameter(torch.ones(n, out_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        bound = math.sqrt(6.0 / (in_dim + out_dim))
        nn.init.uniform_(self.weight, -bound, bound)

    def adjacency(self) -> Tensor:
        n = self.eye.shape[0]
        logits = self.edge_logits.new_full((n, n), float("-inf"))
        logits = logits.index_put((self.rows, self.cols), self.edge_logits)
        return torch.softmax(logits, dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., N, C_in) -> (..., N, C_out)."""
        adj = self.adjacency()
        h_self = x @ self.weight[0]
        h_nbr = x @ self.weight[1]
        diag = (adj * self.eye).sum(dim=-1, keepdim=True)  # (N, 1)
        out = diag * h_self + (adj * (1 - self.eye)) @ h_nbr
        return out * self.node_scale + self.bias


class SkeletonGCN(nn.Module):
    """`layers` residual semantic graph convolutions, each followed by LayerNorm and ReLU."""

    def __init__(self, dim: int, layers: int, parents: Sequence[int]) -> None:
        super().__init__()
        adjacency = skeleton_adjacency(parents)
        self.convs = nn.ModuleList(SemGraphConv(dim, dim, adjacency) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))

    def forward(self, x: Tensor) -> Tensor:
        """x (B, 2, 21, C): both hands share the weights; they never exchange messages here."""
        for conv, norm in zip(self.convs, self.norms):
            x = x + torch.relu(norm(conv(x)))
        return x

"""Per-hand graph convolution over the 21-joint skeleton (intra-hand interaction; official
`gcn_{left,right}`, a "ResSimplePGCN" of 4 layers without residual connections).

One layer: x <- ReLU(BN1d(PGraphConv(x))), BN over the channels (shared by the joints).
PGraphConv(x), x (B, 21, C_in):
  h0[n] = x[n] W[0, n], h1[n] = x[n] W[1, n]   (a separate C_in x C_out matrix per joint n)
  A0 = row-softmax(e_0 on the diagonal, -9e15 elsewhere)        = the identity (e_0 has no effect)
  A1 = row-softmax(e_1 at the skeleton's neighbour pairs, -9e15 elsewhere)   (no self loops)
  out = A0 h0 + A1 h1 + bias
e_1[k] belongs to the k-th directed neighbour pair (i, j) in row-major order (README of the
reference fixture, section 6.8): 0:(0,1), 1:(0,5), 2:(0,9), ...

Dense formulation: with 21 nodes a layer is a per-joint batched matmul plus a (21, 21) product.
(An earlier torch-geometric MessagePassing version of a skeleton layer gave identical outputs but
was slower on CPU, 0.77 vs 0.43 ms fwd+bwd for 4 hands, because it materialises per-edge
messages for what is a tiny dense product.)
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

NEG_INF = -9e15  # the official masking value (finite: exp underflows to exactly 0)


def neighbour_pairs(bones: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Directed neighbour pairs (i, j) of an undirected bone list, row-major sorted."""
    return sorted({(int(a), int(b)) for a, b in bones} | {(int(b), int(a)) for a, b in bones})


class PGraphConv(nn.Module):
    """Graph convolution with per-joint weights (official `gconv`: W, e_0, e_1, bias)."""

    def __init__(self, in_dim: int, out_dim: int, num_joints: int, bones: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        pairs = neighbour_pairs(bones)
        self.register_buffer("rows", torch.tensor([p[0] for p in pairs]), persistent=False)
        self.register_buffer("cols", torch.tensor([p[1] for p in pairs]), persistent=False)
        self.register_buffer("diag", torch.arange(num_joints), persistent=False)
        self.W = nn.Parameter(torch.empty(2, num_joints, in_dim, out_dim))
        self.e_0 = nn.Parameter(torch.ones(1, num_joints))
        self.e_1 = nn.Parameter(torch.ones(1, len(pairs)))
        self.bias = nn.Parameter(torch.empty(out_dim))
        # Glorot-uniform weights, bias U(+-1/sqrt(out)) (SemGCN's initialisation)
        nn.init.xavier_uniform_(self.W.data, gain=1.414)
        stdv = 1.0 / math.sqrt(out_dim)
        nn.init.uniform_(self.bias, -stdv, stdv)

    def adjacency(self) -> tuple[Tensor, Tensor]:
        """(A0, A1), each (N, N), rows summing to 1."""
        n = self.diag.numel()
        a0 = self.e_0.new_full((n, n), NEG_INF).index_put((self.diag, self.diag), self.e_0[0])
        a1 = self.e_1.new_full((n, n), NEG_INF).index_put((self.rows, self.cols), self.e_1[0])
        return torch.softmax(a0, dim=1), torch.softmax(a1, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, N, C_in) -> (B, N, C_out)."""
        a0, a1 = self.adjacency()
        h0 = torch.einsum("bni,nio->bno", x, self.W[0])
        h1 = torch.einsum("bni,nio->bno", x, self.W[1])
        return a0 @ h0 + a1 @ h1 + self.bias


class GraphConvLayer(nn.Module):
    """x <- ReLU(BN1d(PGraphConv(x))) (official `gconv_layers.i`: `.gconv`, `.bn`)."""

    def __init__(self, in_dim: int, out_dim: int, num_joints: int, bones: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        self.gconv = PGraphConv(in_dim, out_dim, num_joints, bones)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.bn(self.gconv(x).transpose(1, 2)).transpose(1, 2))


class HandGCN(nn.Module):
    """`layers` graph-conv layers for one hand, no skip connections (official `gcn_{hand}`)."""

    def __init__(self, dim: int, layers: int, bones: Sequence[tuple[int, int]], num_joints: int = 21) -> None:
        super().__init__()
        self.gconv_layers = nn.ModuleList(GraphConvLayer(dim, dim, num_joints, bones) for _ in range(layers))

    def forward(self, x: Tensor, trace: dict | None = None, layer0_key: str = "") -> Tensor:
        """x (B, 21, C) -> (B, 21, C); `trace[layer0_key]` receives the first layer's output."""
        for i, layer in enumerate(self.gconv_layers):
            x = layer(x)
            if trace is not None and i == 0:
                trace[layer0_key] = x
        return x

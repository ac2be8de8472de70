"""DIR building blocks shared by the stages: parameter layout, 1D MLPs, the initial regressor
(stage 0, `init_regressor.*` of the official checkpoint) and the map heads (`conv_final`, `seg`,
`dense`).

Per-hand parameter vector (official layout, D = 19 + P, 64 for the full 45-component basis):
[root 6D (6) | finger PCA coefficients (P) | betas (10) | weak-perspective camera s, tx, ty (3)].
The official code processes the hands left first, then right; so does this package internally
(`HANDS`), the output boundary (dir_net.models.dir) converts to the project's right-first order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

ROOT_DIM = 6
BETAS_DIM = 10
CAM_DIM = 3
OFFSET_UNIT = 0.15  # metres: the offset and every 3D coordinate input are in units of 15 cm
CAM_SCALE_INIT = 6.0  # init only: weak-perspective scale (uv per metre) of a two-hand crop ~0.33 m wide
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # first two columns of the identity rotation
HANDS = ("left", "right")  # the official processing / concatenation order
ATTENTION_KINDS = ("official", "paper", "none")


def param_dim(num_pca: int) -> int:
    return ROOT_DIM + num_pca + BETAS_DIM + CAM_DIM


def split_params(params: Tensor, num_pca: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(..., D) -> root_6d (..., 6), finger PCA (..., P), betas (..., 10), cam (..., 3)."""
    return tuple(params.split([ROOT_DIM, num_pca, BETAS_DIM, CAM_DIM], dim=-1))  # type: ignore[return-value]


def params_prior(num_pca: int) -> Tensor:
    """(D,) a neutral parameter vector: identity root, mean pose / shape, camera (s0, 0, 0).
    Used only to initialise biases (a checkpoint overwrites it)."""
    prior = torch.zeros(param_dim(num_pca))
    prior[:ROOT_DIM] = torch.tensor(IDENTITY_6D)
    prior[-CAM_DIM] = CAM_SCALE_INIT
    return prior


def mlp1d(in_dim: int, out_dim: int) -> nn.Sequential:
    """Conv1d(in->out, k=1) -> BN1d -> ReLU -> Conv1d(out->out, k=1) on (B, C, N); keys .0 .1 .3."""
    return nn.Sequential(nn.Conv1d(in_dim, out_dim, 1), nn.BatchNorm1d(out_dim), nn.ReLU(inplace=True),
                         nn.Conv1d(out_dim, out_dim, 1))


def apply_tokens(module: nn.Module, x: Tensor) -> Tensor:
    """A (B, C, N) module applied to tokens (B, N, C) -> (B, N, C')."""
    return module(x.transpose(1, 2)).transpose(1, 2)


def init_conv_fan_out(module: nn.Module) -> None:
    """The official initialisation of 2D convs (normal, std sqrt(2 / (k*k*out))) and BN (1, 0)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def attention_branch(in_ch: int, kind: str) -> nn.Sequential:
    """One hand's attention map A = sigmoid(conv(F)).

    official: Conv3x3 C -> C/2 (bias), BN, ReLU, Conv1x1 -> 1, Sigmoid (keys .0 .1 .3; 37.8M
    parameters for both hands at C = 2048). paper: the DIR paper's eq. (1), A = Sigmoid(Conv(F)),
    one Conv1x1 C -> 1 (key .0; 4,098 parameters for both hands).
    """
    if kind == "official":
        mid = in_ch // 2
        return nn.Sequential(nn.Conv2d(in_ch, mid, 3, padding=1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                             nn.Conv2d(mid, 1, 1), nn.Sigmoid())
    if kind == "paper":
        return nn.Sequential(nn.Conv2d(in_ch, 1, 1), nn.Sigmoid())
    raise ValueError(f"unknown attention kind {kind!r}; expected one of {ATTENTION_KINDS}")


class InitRegressor(nn.Module):
    """Stage 0 on the last encoder map c4 (official `init_regressor`).

    attn_h = attention_h(c4) (B, 1, h, w); pooled_h = sum(c4 * attn_h) / (sum(attn_h) + 1e-8);
    offset = Linear(mean of c4) (B, 3) in units of 0.15 m, right root - left root; params_h =
    Linear_h(pooled_h) (B, D), absolute. attention "none": both hands use the mean of c4.
    """

    def __init__(self, in_ch: int, num_pca: int, attention: str) -> None:
        super().__init__()
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"unknown attention kind {attention!r}; expected one of {ATTENTION_KINDS}")
        self.kind = attention
        if attention != "none":
            self.attention_left = attention_branch(in_ch, attention)
            self.attention_right = attention_branch(in_ch, attention)
        self.offset = nn.Linear(in_ch, 3)
        self.mano_left = nn.Linear(in_ch, param_dim(num_pca))
        self.mano_right = nn.Linear(in_ch, param_dim(num_pca))
        init_conv_fan_out(self)
        prior = params_prior(num_pca)
        for lin in (self.offset, self.mano_left, self.mano_right):
            nn.init.normal_(lin.weight, 0.0, 1e-3)  # official init
        with torch.no_grad():  # init only: start from a neutral hand seen at a plausible scale
            self.mano_left.bias.copy_(prior)
            self.mano_right.bias.copy_(prior)
            self.offset.bias.zero_()

    def forward(self, c4: Tensor, trace: dict | None = None) -> tuple[dict[str, Tensor], Tensor, dict[str, Tensor]]:
        """c4 (B, C, h, w) -> params {hand: (B, D)}, offset (B, 3), attention maps {hand: (B, 1, h, w)}."""
        pooled_global = c4.mean(dim=(2, 3))
        params, maps = {}, {}
        for hand in HANDS:
            if self.kind == "none":
                pooled = pooled_global
            else:
                attn = getattr(self, f"attention_{hand}")(c4)
                pooled = (c4 * attn).sum(dim=(2, 3)) / (attn.sum(dim=(2, 3)) + 1e-8)
                maps[hand] = attn
            params[hand] = getattr(self, f"mano_{hand}")(pooled)
            if trace is not None:
                trace[f"s0/pooled_{hand}"] = pooled
                if hand in maps:
                    trace[f"s0/attn_{hand}"] = maps[hand]
        if trace is not None:
            trace["s0/pooled_global"] = pooled_global
        return params, self.offset(pooled_global), maps


def map_head(in_ch: int, mid: int, out_ch: int, bias: bool = True) -> nn.Sequential:
    """Conv3x3 in->mid (bias as given), BN, ReLU, Conv1x1 mid->out (bias); keys .0 .1 .3."""
    return nn.Sequential(nn.Conv2d(in_ch, mid, 3, padding=1, bias=bias), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                         nn.Conv2d(mid, out_ch, 1))


@dataclass
class HandsEstimate:
    """One stage's hands in the official convention (per-hand dicts keyed "left" / "right").

    params (B, D) raw regressed vectors; offset (B, 3) raw, units of 0.15 m, right root - left
    root; rotmat (B, 3, 3) root rotation (columns X, Y, Z); joints (B, 21, 3) / verts (B, V, 3)
    metres about the hand's own wrist; joint_uv / vert_uv (B, ., 2) in [-1, 1] of the crop.
    """

    params: dict[str, Tensor]
    offset: Tensor
    rotmat: dict[str, Tensor]
    joints: dict[str, Tensor]
    verts: dict[str, Tensor]
    joint_uv: dict[str, Tensor]
    vert_uv: dict[str, Tensor]

"""Optimisers and per-iteration learning-rate schedules from the `train:` config section.

DIR: AdamW + cosine decay with linear warm-up. InterNet: Adam + multi-step decay (epochs 15, 17).
Schedules are functions of the optimiser step, so resuming at any step restores the exact LR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from dir_net.config import Config
from dir_net.errors import ConfigError


def build_optimizer(train_cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    opt = train_cfg.optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    betas = tuple(float(b) for b in opt.betas)
    if opt.name == "adamw":
        return torch.optim.AdamW(params, lr=opt.lr, betas=betas, weight_decay=opt.weight_decay)
    if opt.name == "adam":
        return torch.optim.Adam(params, lr=opt.lr, betas=betas, weight_decay=opt.weight_decay)
    raise ValueError(f"unknown optimizer {opt.name!r}")  # check_engine_config rejects it earlier


def overflow_error(train_cfg: Config) -> ConfigError:
    """The config error for an optimiser step whose scalars overflow float32 ("value cannot be
    converted to type float without overflow"): the learning rate (or weight decay) is absurd."""
    opt = train_cfg.optimizer
    key, value = ("train.optimizer.weight_decay", opt.weight_decay) if opt.lr <= 1 < opt.weight_decay \
        else ("train.optimizer.lr", opt.lr)
    return ConfigError(f"key '{key}' is {value:g}: the optimiser step overflows float32; use a value "
                       "in the usual range (lr ~1e-4..1e-2, weight_decay ~0..0.1)")


@dataclass(frozen=True)
class LrSchedule:
    """LR multiplier as a function of the optimiser step (picklable, so it checkpoints)."""

    name: str  # cosine | multistep | constant
    total_steps: int
    warmup_steps: int
    warmup_factor: float
    min_factor: float
    milestone_steps: tuple[int, ...]
    gamma: float

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            alpha = step / self.warmup_steps
            warm = self.warmup_factor + (1.0 - self.warmup_factor) * alpha
        else:
            warm = 1.0
        return warm * self._decay(step)

    def _decay(self, step: int) -> float:
        if self.name == "cosine":
            span = max(self.total_steps - self.warmup_steps, 1)
            progress = min(max(step - self.warmup_steps, 0) / span, 1.0)
            return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.name == "multistep":
            return self.gamma ** sum(step >= m for m in self.milestone_steps)
        return 1.0


def make_schedule(train_cfg: Config, steps_per_epoch: int) -> LrSchedule:
    sched = train_cfg.schedule
    return LrSchedule(
        name=sched.name,
        total_steps=train_cfg.epochs * steps_per_epoch,
        warmup_steps=round(sched.warmup_epochs * steps_per_epoch),
        warmup_factor=sched.warmup_factor,
        min_factor=sched.min_factor,
        milestone_steps=tuple(round(m * steps_per_epoch) for m in sched.milestones),
        gamma=sched.gamma,
    )


def build_scheduler(train_cfg: Config, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> LambdaLR:
    """A LambdaLR to be stepped once per optimiser step."""
    return LambdaLR(optimizer, make_schedule(train_cfg, steps_per_epoch))

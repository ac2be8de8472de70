"""Run-wide settings: engine config checks, seeding, determinism, mixed precision."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from typing import ContextManager, Iterator

import numpy as np
import torch

from dir_net.config import Config
from dir_net.errors import ConfigError

log = logging.getLogger(__name__)

# Allowed values of the engine's restricted keys (checked before any work starts).
_POSITIVE = (
    "train.epochs", "train.batch_size", "train.grad_accum", "evaluation.batch_size", "train.optimizer.lr",
    "data.image_size", "data.internet.bbox_pad", "data.hand2d.bbox_pad", "model.internet.sigma",
    "model.simple_baseline2d.sigma",
)
_MULTIPLE_OF = {"data.image_size": 32}  # the backbone's stride: heads assume S / 32 feature maps
_UNIT_INTERVAL = ("data.dir.crop_ratio",)  # in (0, 1]
_NON_NEGATIVE = (
    "train.num_workers", "train.log_every", "train.image_every", "train.val_every",
    "train.checkpoint_every", "train.checkpoint_steps", "train.keep_last", "train.clip_grad_norm",
    "train.schedule.warmup_epochs",
)


def check_engine_config(cfg: Config) -> None:
    """Reject engine settings the schema's type check cannot catch, naming the key."""
    for key in _POSITIVE:
        if cfg.get_path(key) <= 0:
            raise ConfigError(f"key '{key}' must be positive, got {cfg.get_path(key)!r}")
    for key, factor in _MULTIPLE_OF.items():
        if cfg.get_path(key) % factor:
            raise ConfigError(f"key '{key}' must be a multiple of {factor}, got {cfg.get_path(key)!r}")
    for key in _UNIT_INTERVAL:
        if not 0 < cfg.get_path(key) <= 1:
            raise ConfigError(f"key '{key}' must be in (0, 1], got {cfg.get_path(key)!r}")
    for key in _NON_NEGATIVE:
        if cfg.get_path(key) < 0:
            raise ConfigError(f"key '{key}' must be >= 0, got {cfg.get_path(key)!r}")
    max_steps = cfg.train.max_steps
    if max_steps is not None and (not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps <= 0):
        raise ConfigError(f"key 'train.max_steps' must be null or a positive integer, got {max_steps!r}")
    betas = cfg.train.optimizer.betas
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
        raise ConfigError(f"key 'train.optimizer.betas' must be two numbers in [0, 1), got {betas!r}")
    milestones = cfg.train.schedule.milestones
    if not all(isinstance(m, (int, float)) for m in milestones):
        raise ConfigError(f"key 'train.schedule.milestones' must be a list of epochs, got {milestones!r}")
    _check_protocols(cfg.evaluation.protocols)


def _check_protocols(names: list) -> None:
    from eval.keypoints2d import KEYPOINT_PROTOCOLS
    from eval.protocols import PROTOCOLS

    known = [*PROTOCOLS, *KEYPOINT_PROTOCOLS]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"key 'evaluation.protocols' has unknown protocols {unknown}; choose from {known}")
    kinds = {n in KEYPOINT_PROTOCOLS for n in names}
    if len(kinds) > 1 or (True in kinds and len(names) > 1):
        raise ConfigError(f"key 'evaluation.protocols' is {names}: list 3D protocols {list(PROTOCOLS)}, "
                          f"or one 2D keypoint protocol {list(KEYPOINT_PROTOCOLS)}, not both")


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed python, numpy and torch; each rank gets its own streams (seed + rank)."""
    random.seed(seed + rank)
    np.random.seed((seed + rank) % 2**32)
    torch.manual_seed(seed + rank)


def set_deterministic(enabled: bool) -> None:
    """Deterministic kernels (exactly reproducible runs and resumes) at some speed cost."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def resolve_precision(setting: str, device: torch.device) -> str:
    """`train.precision` -> fp32 | bf16 | fp16 for this device (auto: bf16 > fp16 on GPUs, fp32 on CPU)."""
    if device.type != "cuda":
        if setting in ("bf16", "fp16"):
            raise ConfigError(f"key 'train.precision' is {setting} but training runs on the CPU; use auto or fp32")
        return "fp32"
    if setting == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if setting == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("key 'train.precision' is bf16 but this GPU does not support bf16; use auto or fp16")
    return setting


def autocast(device: torch.device, precision: str) -> ContextManager:
    """Mixed-precision context for forward and loss (no-op in fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A GradScaler that is active only for fp16."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def cpu_threads(num_workers: int) -> int:
    """Intra-op threads for a CPU run: the cores this process may use, less one per loader worker.
    More busy threads than free cores make OpenMP's spin-waiting collapse the throughput of a small
    model (measured: a training step 17x slower with 2 threads than with 1 on a 2-core machine
    that had one other busy process)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores - num_workers)


@contextlib.contextmanager
def cpu_thread_limit(cfg: Config) -> Iterator[None]:
    """On the CPU, leave a core to each loader worker (unless OMP_NUM_THREADS says otherwise);
    the previous thread count is restored afterwards."""
    before = torch.get_num_threads()
    on_cpu = cfg.train.device == "cpu" or (cfg.train.device == "auto" and not torch.cuda.is_available())
    if on_cpu and "OMP_NUM_THREADS" not in os.environ:
        threads = cpu_threads(int(cfg.train.num_workers))
        torch.set_num_threads(threads)
        log.info("CPU run: %d intra-op thread(s) beside %d loader worker(s)", threads, cfg.train.num_workers)
    try:
        yield
    finally:
        torch.set_num_threads(before)

"""What `dirnet train --check` (run by scripts/train.sh before torchrun starts) checks besides the
config itself: the dataset root, the run directory, and whether the run fits in memory.

Memory model (per training process; an estimate, not a bound):
  CPU:  RUNTIME_GB + params x 16 B (weights, grads, two Adam moments)
        + batch x activations per image x (S / 256)^2 x (backbone width / 64) + workers x WORKER_GB
  GPU:  params x 16 B + batch x activations per image x (S / 256)^2 x (width / 64) x (0.6 in bf16 / fp16)
Activations per image at 256 px, full width, were measured on a CPU (torch 2.13) as the bytes
autograd saves (saved_tensors_hooks; InterNet 128 MB, DIR 151 MB, SimpleBaseline2D 118 MB) and as
the growth of the resident set over one forward + backward (InterNet 224 MB: its 64^3 heatmaps
need large backward temporaries; DIR 151 MB; SimpleBaseline2D not measured, 1.2 x saved assumed).
A 1.5 margin brings the InterNet figure (batch 64 at 256 px: 23 GB) to where such a run was killed
on a CPU machine; CPU_ACT_MB holds the results. Smaller widths scale the activations linearly and
the parameters quadratically (an over-estimate for the thin test and quickstart models).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dir_net.errors import ConfigError, DirNetError

log = logging.getLogger(__name__)

SKIP_ENV_VAR = "DIRNET_SKIP_MEMORY_CHECK"  # "1": start even when the estimate exceeds the memory
PARAMS_M = {"internet": 47.3, "dir": 90.4, "simple_baseline2d": 34.0}  # millions, full width (paper configs)
CPU_ACT_MB = {"internet": 336.0, "dir": 226.0, "simple_baseline2d": 210.0}  # per image at 256 px, with margin
GPU_ACT_MB = {"internet": 154.0, "dir": 181.0, "simple_baseline2d": 141.0}  # saved bytes x 1.2
RUNTIME_GB = 0.6  # python, torch, dataset index of one process
WORKER_GB = 0.3  # one DataLoader worker (decoded images, prefetched batches)
SIZE_DOWN = ("train.batch_size (e.g. 8)", "data.image_size (e.g. 128)", "train.num_workers (e.g. 1)")


def check_run_inputs(cfg: Any, resume: str | None) -> None:
    """DataError / DirNetError, before any process starts, when the dataset root lacks a split the
    run reads, or when a fresh run (no --resume) would start in a run directory with checkpoints."""
    check_data_root(cfg)
    check_run_dir(cfg, resume)


def check_data_root(cfg: Any) -> None:
    splits = ["train"] + ([cfg.train.val_split] if cfg.train.val_every else [])
    dataset = cfg.data.get("dataset", "interhand26m")
    for split in dict.fromkeys(splits):
        if dataset != "interhand26m":
            from dir_net.data.stb_rhd.parsed import locate

            locate(cfg.data.root, dataset, split)
        else:
            from dir_net.data.dataset import split_files

            split_files(cfg, split)


def check_run_dir(cfg: Any, resume: str | None) -> None:
    from dir_net.engine.checkpoint import CheckpointDir

    run_dir = Path(cfg.experiment.output_dir) / cfg.experiment.name
    existing = CheckpointDir(run_dir / "checkpoints", int(cfg.train.keep_last)).step_files()
    if resume is None and existing:
        raise DirNetError(f"{run_dir} already has checkpoints ({existing[0].name}, ...): pass --resume to "
                          "continue that run, or set another experiment.name (or experiment.output_dir)")


@dataclass
class MemoryEstimate:
    device: str  # "cpu" | "cuda"
    per_process_gb: float
    processes: int  # training processes on this machine
    available_gb: float | None  # RAM (CPU) or free memory of one GPU; None when unknown

    @property
    def needed_gb(self) -> float:
        """What this machine must hold: every process on the CPU, one process per GPU."""
        return self.per_process_gb * (self.processes if self.device == "cpu" else 1)

    @property
    def fits(self) -> bool:
        return self.available_gb is None or self.needed_gb <= self.available_gb

    def describe(self, cfg: Any) -> str:
        where = "RAM" if self.device == "cpu" else "free GPU memory"
        have = "unknown" if self.available_gb is None else f"{self.available_gb:.1f} GB"
        return (f"about {self.needed_gb:.1f} GB for {self.processes} process(es) of {cfg.model.name} at "
                f"train.batch_size={cfg.train.batch_size}, data.image_size={cfg.data.image_size} "
                f"(estimate); {where}: {have}")


def estimate_memory(cfg: Any, processes: int | None = None) -> MemoryEstimate:
    """Memory one training process of `cfg` needs (see the module docstring) and what this
    machine has."""
    import torch

    device = _train_device(cfg)
    name = str(cfg.model.name)
    width = float(cfg.model.get("backbone", {}).get("width", 64)) / 64.0
    scale = (float(cfg.data.image_size) / 256.0) ** 2 * width
    params_gb = PARAMS_M.get(name, 50.0) * 1e6 * min(width, 1.0) ** 2 * 16 / 2**30
    batch = int(cfg.train.batch_size)
    if device == "cpu":
        act_gb = batch * CPU_ACT_MB.get(name, 300.0) * scale / 1024
        per_process = RUNTIME_GB + params_gb + act_gb + int(cfg.train.num_workers) * WORKER_GB
        return MemoryEstimate("cpu", per_process, processes or _local_processes(1), available_ram_gb())
    half = 0.6 if cfg.train.precision in ("auto", "bf16", "fp16") else 1.0
    act_gb = batch * GPU_ACT_MB.get(name, 150.0) * scale * half / 1024
    free = None
    if torch.cuda.is_available():
        free = torch.cuda.mem_get_info(0)[0] / 2**30
    return MemoryEstimate("cuda", params_gb + act_gb, processes or _local_processes(torch.cuda.device_count()),
                          free)


def check_memory(cfg: Any, processes: int | None = None) -> MemoryEstimate:
    """Refuse (ConfigError) a CPU run whose estimate exceeds the available RAM, naming the keys
    that size it down; warn for a GPU run (a GPU out-of-memory error names itself)."""
    estimate = estimate_memory(cfg, processes)
    if estimate.fits:
        log.info("memory: %s", estimate.describe(cfg))
        if estimate.device == "cpu" and _gpu_sized(cfg):
            log.warning("%s; a step takes minutes here", cpu_sizing_hint())
        return estimate
    if estimate.device == "cuda":
        log.warning("memory: %s; the run may fail with CUDA out of memory: lower %s", estimate.describe(cfg),
                    " or ".join(SIZE_DOWN[:2]))
        return estimate
    if os.environ.get(SKIP_ENV_VAR) == "1":
        log.warning("memory: %s; starting anyway (%s=1)", estimate.describe(cfg), SKIP_ENV_VAR)
        return estimate
    raise ConfigError(f"{estimate.describe(cfg)}: it would be killed as out of memory. {cpu_sizing_hint()}; "
                      f"{SKIP_ENV_VAR}=1 starts it anyway")


def cpu_sizing_hint() -> str:
    return ("Training runs on the CPU here, and the paper configs (configs/*_interhand*.yaml: batch 64 at 256 px) "
            f"are GPU configs: lower {', '.join(SIZE_DOWN)}, or start from configs/quickstart.yaml")


def _gpu_sized(cfg: Any) -> bool:
    """At least 32 full-width images of 256 px per step (the paper configs: 64)."""
    width = float(cfg.model.get("backbone", {}).get("width", 64)) / 64.0
    return int(cfg.train.batch_size) * (float(cfg.data.image_size) / 256.0) ** 2 * width >= 32


def available_ram_gb() -> float | None:
    """MemAvailable of /proc/meminfo, or less when a cgroup (container) limit leaves less."""
    try:
        with open("/proc/meminfo") as handle:
            fields = dict(line.split(":", 1) for line in handle)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    limit = _cgroup_room()
    return min(available, limit) / 2**30 if limit is not None else available / 2**30


def _cgroup_room() -> int | None:
    """Bytes the cgroup v2 limit still allows this process's group, or None without a limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - used, 0)


def _train_device(cfg: Any) -> str:
    import torch

    device = str(cfg.train.device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if device.startswith("cuda") else "cpu"


def _local_processes(default: int) -> int:
    """Training processes on this machine: torchrun's LOCAL_WORLD_SIZE, NPROC_PER_NODE, or `default`."""
    for var in ("LOCAL_WORLD_SIZE", "NPROC_PER_NODE"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return max(default, 1)



def peak_memory_gb(device: Any) -> float:
    """Peak memory of this process so far: CUDA max allocated on a GPU, the resident set's high
    water mark (ru_maxrss, Linux KiB) on the CPU."""
    import resource

    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

"""Training-step benchmark: forward + losses + backward + optimiser step on a fixed synthetic batch.

The step is the trainer's (dir_net.engine.trainer): the configured optimiser (AdamW for DIR,
Adam for InterNet), autocast for bf16 / fp16 (with a GradScaler for fp16), `zero_grad(set_to_none)`.
Peak memory: `max_memory_allocated` on CUDA, peak RSS of the process over the timed steps on the CPU.
FLOPs per image count the forward and backward passes (torch flop counter, fp32, batch 2).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from dir_net.bench import models as bench_models
from dir_net.bench.batch import synthetic_batch, to_device
from dir_net.bench.infer import measure_peaks
from dir_net.bench.report import make_result
from dir_net.bench.timing import (
    PeakMemory,
    autocast,
    check_dtype,
    latencies,
    resolve_device,
    set_threads,
    summarize_ms,
    synchronize,
)
from dir_net.errors import DirNetError

COLUMNS = ("model", "batch", "dtype", "images_per_s", "latency_ms_median", "latency_ms_p90",
           "gflops_per_image", "achieved_tflops", "fraction_of_peak", "peak_mem_mb")
FLOP_COUNT_BATCH = 2  # BatchNorm needs > 1 sample in training mode


@dataclass
class TrainOptions:
    models: str | None = None
    device: str = "auto"
    dtype: str = "fp32"
    channels_last: bool = False
    explicit_mfp: bool = False  # DIR: explicit MFP planes instead of the factorised conv (same output)
    compile: bool = False
    batch: int = 0  # 0 -> 64 on CUDA (the papers' batch), 4 on the CPU
    iters: int = 0  # timed steps; 0 -> 30 on CUDA, 3 on the CPU
    warmup: int = 0  # 0 -> 5 on CUDA, 1 on the CPU (at least 3 with --compile)
    size: int = 256
    threads: int | None = None
    peak_size: int = 0  # matmul side for the peak; 0 -> 8192 on CUDA, 2048 on the CPU
    config: str | None = None
    overrides: list[str] = field(default_factory=list)

    def resolved(self, device: torch.device) -> "TrainOptions":
        gpu = device.type == "cuda"
        out = TrainOptions(**asdict(self))
        out.device = str(device)
        out.batch = self.batch or (64 if gpu else 4)
        out.iters = self.iters or (30 if gpu else 3)
        warm = self.warmup or (5 if gpu else 1)
        out.warmup = max(warm, 3) if self.compile else warm
        out.peak_size = self.peak_size or (8192 if gpu else 2048)
        return out


def make_train_step(model: nn.Module, runner: nn.Module, optimizer: torch.optim.Optimizer,
                    batch: dict[str, torch.Tensor], device: torch.device, dtype: str) -> Callable[[], torch.Tensor]:
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == "fp16")

    def step() -> torch.Tensor:
        with autocast(device, dtype):
            output = runner(batch["image"])
            losses = model.losses(output, batch)
        scaler.scale(losses["total"]).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return losses["total"].detach()
    return step


def train_flops(model: nn.Module, batch: dict[str, torch.Tensor]) -> int:
    """Forward + backward FLOPs of one image (no optimiser step, gradients cleared afterwards)."""
    def fwd_bwd() -> None:
        model.losses(model(batch["image"]), batch)["total"].backward()
    flops = bench_models.count_flops(fwd_bwd)
    model.zero_grad(set_to_none=True)
    return flops // len(batch["image"])


def run(opts: TrainOptions) -> dict[str, Any]:
    from dir_net.engine.optim import build_optimizer

    device = resolve_device(opts.device)
    opts = opts.resolved(device)
    check_dtype(opts.dtype)
    if opts.batch < 2 or opts.iters < 1:
        raise DirNetError(f"--batch {opts.batch} / --iters {opts.iters}: batch must be >= 2 (BatchNorm), iters >= 1")
    set_threads(opts.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    peak_name = opts.dtype
    peaks = measure_peaks(device, peak_name, opts.peak_size)
    rows, info = [], {}
    for name in bench_models.resolve_models(opts.models):
        cfg = bench_models.model_config(name, opts.config, opts.overrides)
        model = bench_models.build(cfg, device, opts.channels_last, train=True, explicit_mfp=opts.explicit_mfp)
        hands = bench_models.hand_layer(cfg)
        small = to_device(synthetic_batch(FLOP_COUNT_BATCH, opts.size, hands=hands), device, opts.channels_last)
        flops = train_flops(model, small)
        info[name] = {"parameters": bench_models.parameter_count(model), "train_flops_per_image": flops}
        runner = bench_models.compile_model(model, cuda_graphs=False) if opts.compile else model
        batch = to_device(synthetic_batch(opts.batch, opts.size, hands=hands), device, opts.channels_last)
        step = make_train_step(model, runner, build_optimizer(cfg.train, model), batch, device, opts.dtype)
        memory = PeakMemory(device)
        memory.reset()
        start = time.perf_counter()
        loss = step()
        synchronize(device)
        row: dict[str, Any] = {"model": name, "batch": opts.batch, "dtype": opts.dtype,
                               "first_step_s": time.perf_counter() - start}
        seconds = latencies(step, opts.iters, opts.warmup, device)
        row.update(summarize_ms(seconds))
        row["images_per_s"] = opts.batch * opts.iters / sum(seconds)
        row["gflops_per_image"] = flops / 1e9
        row["achieved_tflops"] = flops * row["images_per_s"] / 1e12
        row["fraction_of_peak"] = row["achieved_tflops"] / peaks[peak_name]["tflops"]
        mem = memory.read()
        row["peak_mem_mb"] = mem.get("gpu_max_allocated_mb", mem["rss_peak_mb"])
        row["memory"] = mem
        row["loss_finite"] = bool(torch.isfinite(loss).item())
        rows.append(row)
        del model, runner, step
    return make_result("train", asdict(opts), rows, device=str(device),
                       extra={"matmul_peak": peaks, "models": info})


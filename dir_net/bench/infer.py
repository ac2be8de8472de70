"""Inference benchmark: images/s and latency of forward + predict at batch 1 and a large batch.

Per model and batch size: `iters` timed calls after `warmup` untimed ones (compilation and
CUDA-graph capture happen in the warm-up). Latency = wall clock of one call ending with a device
sync (median, p90); images/s from `iters` calls launched back to back (CUDA events on GPU; on
the CPU the latency loop already is that). Achieved FLOP/s = FLOPs per image (torch flop
counter, fp32 forward at batch 1) x images/s, also as a fraction of the matmul peak of the same
dtype measured on the same device in the same run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from dir_net.bench import models as bench_models
from dir_net.bench.batch import synthetic_batch, to_device
from dir_net.bench.fold import fold_batchnorm
from dir_net.bench.report import make_result
from dir_net.bench.timing import (
    PeakMemory,
    autocast,
    back_to_back_seconds,
    check_dtype,
    latencies,
    matmul_peak,
    resolve_device,
    set_threads,
    summarize_ms,
    synchronize,
)
from dir_net.errors import DirNetError

COLUMNS = ("model", "batch", "dtype", "images_per_s", "latency_ms_median", "latency_ms_p90",
           "gflops_per_image", "achieved_tflops", "fraction_of_peak", "peak_mem_mb", "error")


@dataclass
class InferOptions:
    models: str | None = None  # comma-separated; None = every registered benchmarkable model
    device: str = "auto"
    dtype: str = "fp32"
    channels_last: bool = False
    explicit_mfp: bool = False  # DIR: explicit MFP planes instead of the factorised conv (same output)
    fold_bn: bool = False  # fold conv -> BatchNorm pairs (eval statistics) before timing
    compile: bool = False
    cuda_graphs: bool = False
    batch: int = 0  # large batch; 0 -> 128 on CUDA, 8 on the CPU
    iters: int = 0  # timed calls per batch size; 0 -> 50 on CUDA, 10 on the CPU
    warmup: int = 0  # 0 -> 10 on CUDA, 2 on the CPU (at least 3 with --compile / --cuda-graphs)
    size: int = 256
    threads: int | None = None
    peak_size: int = 0  # matmul side for the peak; 0 -> 8192 on CUDA, 2048 on the CPU
    config: str | None = None
    overrides: list[str] = field(default_factory=list)

    def resolved(self, device: torch.device) -> "InferOptions":
        """Device-dependent defaults filled in."""
        gpu = device.type == "cuda"
        out = InferOptions(**asdict(self))
        out.device = str(device)
        out.batch = self.batch or (128 if gpu else 8)
        out.iters = self.iters or (50 if gpu else 10)
        warm = self.warmup or (10 if gpu else 2)
        out.warmup = max(warm, 3) if (self.compile or self.cuda_graphs) else warm
        out.peak_size = self.peak_size or (8192 if gpu else 2048)
        return out


def check_options(opts: InferOptions, device: torch.device) -> None:
    check_dtype(opts.dtype)
    if opts.cuda_graphs and device.type != "cuda":
        raise DirNetError("--cuda-graphs needs --device cuda")
    if opts.batch < 1 or opts.iters < 1 or opts.size < 32:
        raise DirNetError(f"--batch {opts.batch} / --iters {opts.iters} / --size {opts.size}: "
                          "batch and iters must be >= 1, size >= 32")


def measure_peaks(device: torch.device, dtype: str, size: int) -> dict[str, dict[str, Any]]:
    """Matmul peaks for fp32 and the run's dtype (a bf16 peak only for a bf16 run: on a CPU
    without fast bf16 it takes minutes)."""
    names = ["fp32"] + ([dtype] if dtype != "fp32" else [])
    return {name: matmul_peak(device, name, size) for name in names}


def make_step(model: nn.Module, runner: nn.Module, batch: dict[str, torch.Tensor], device: torch.device,
              dtype: str, graph_safe: bool = False) -> Callable[[], Any]:
    """One inference call: forward under autocast, then `predict` (outside autocast, as the engine)."""
    def step() -> Any:
        with torch.no_grad():
            with autocast(device, dtype, cache_enabled=not graph_safe):
                output = runner(batch["image"])
            return model.predict(output, batch)
    return step


def capture_graph(step: Callable[[], Any], device: torch.device) -> Callable[[], Any]:
    """Record `step` (static input tensors) into a CUDA graph; the returned callable replays it."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def bench_batch(model: nn.Module, runner: nn.Module, name: str, batch_size: int, opts: InferOptions,
                device: torch.device, hands: Any) -> dict[str, Any]:
    """Row of one (model, batch size)."""
    row: dict[str, Any] = {"model": name, "batch": batch_size, "dtype": opts.dtype}
    batch = to_device(synthetic_batch(batch_size, opts.size, hands=hands), device, opts.channels_last)
    manual_graph = opts.cuda_graphs and not opts.compile
    step = make_step(model, runner, batch, device, opts.dtype, graph_safe=manual_graph)
    memory = PeakMemory(device)
    memory.reset()
    start = time.perf_counter()
    step()  # first call: compilation / cudnn autotuning, reported and never timed
    synchronize(device)
    row["first_call_s"] = time.perf_counter() - start
    if manual_graph:
        try:
            step = capture_graph(step, device)
        except Exception as exc:  # capture constraints are model-specific: report, do not abort the run
            row["error"] = f"CUDA graph capture failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            return row
    seconds = latencies(step, opts.iters, opts.warmup, device)
    row.update(summarize_ms(seconds))
    total = back_to_back_seconds(step, opts.iters, device) if device.type == "cuda" else sum(seconds)
    row["images_per_s"] = batch_size * opts.iters / total
    mem = memory.read()
    row["peak_mem_mb"] = mem.get("gpu_max_allocated_mb", mem["rss_peak_mb"])
    row["memory"] = mem
    return row


def run(opts: InferOptions) -> dict[str, Any]:
    device = resolve_device(opts.device)
    opts = opts.resolved(device)
    check_options(opts, device)
    set_threads(opts.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    names = bench_models.resolve_models(opts.models)
    peaks = measure_peaks(device, opts.dtype, opts.peak_size)
    rows = []
    model_info: dict[str, Any] = {}
    for name in names:
        cfg = bench_models.model_config(name, opts.config, opts.overrides)
        model = bench_models.build(cfg, device, opts.channels_last, train=False, explicit_mfp=opts.explicit_mfp)
        folded = fold_batchnorm(model) if opts.fold_bn else 0
        hands = bench_models.hand_layer(cfg)
        one = to_device(synthetic_batch(1, opts.size, hands=hands), device, opts.channels_last)
        flops = bench_models.count_flops(make_step(model, model, one, device, "fp32"))
        model_info[name] = {"parameters": bench_models.parameter_count(model), "flops_per_image": flops,
                            "batchnorms_folded": folded}
        runner = bench_models.compile_model(model, opts.cuda_graphs) if opts.compile else model
        for batch_size in sorted({1, opts.batch}):
            row = bench_batch(model, runner, name, batch_size, opts, device, hands)
            row["gflops_per_image"] = flops / 1e9
            if "images_per_s" in row:
                achieved = flops * row["images_per_s"] / 1e12
                row["achieved_tflops"] = achieved
                row["fraction_of_peak"] = achieved / peaks[opts.dtype]["tflops"]
            rows.append(row)
        del model, runner
    return make_result("infer", asdict(opts), rows, device=str(device),
                       extra={"matmul_peak": peaks, "models": model_info})


"""Device, precision, timing and memory helpers shared by the benchmarks.

Timing rules: warm-up iterations are never timed; on CUDA every latency sample ends with
`torch.cuda.synchronize` (wall clock of one request) and throughput loops run back to back
between two CUDA events (one synchronisation at the end).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, ContextManager

import numpy as np
import torch

from dir_net.errors import DirNetError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """'cpu' | 'cuda' | 'cuda:N' | 'auto' -> torch.device, with a clear error when CUDA is absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA (CPU-only build)"
        raise DirNetError(f"--device {name}: no CUDA device is visible to torch {torch.__version__} ({build}); "
                          "use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise DirNetError(f"--device {name}: only cpu and cuda are supported")
    return device


def check_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise DirNetError(f"--dtype {name}: choose one of {', '.join(DTYPES)}")
    return DTYPES[name]


def autocast(device: torch.device, dtype: str, cache_enabled: bool = True) -> ContextManager:
    """Mixed precision for `dtype` (bf16 | fp16); fp32 runs without autocast."""
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=check_dtype(dtype), cache_enabled=cache_enabled)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def latencies(fn: Callable[[], Any], iters: int, warmup: int, device: torch.device) -> list[float]:
    """Seconds of each of `iters` calls (each followed by a device sync), after `warmup` calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    out = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        synchronize(device)
        out.append(time.perf_counter() - start)
    return out


def back_to_back_seconds(fn: Callable[[], Any], iters: int, device: torch.device) -> float:
    """Seconds for `iters` calls launched back to back (CUDA events on GPU; the caller warmed up)."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    start_s = time.perf_counter()
    for _ in range(iters):
        fn()
    return time.perf_counter() - start_s


def summarize_ms(seconds: list[float]) -> dict[str, float]:
    """Median, p90, mean and min of latencies, in milliseconds."""
    ms = np.asarray(seconds) * 1e3
    return {"latency_ms_median": float(np.median(ms)), "latency_ms_p90": float(np.percentile(ms, 90)),
            "latency_ms_mean": float(ms.mean()), "latency_ms_min": float(ms.min())}


def matmul_peak(device: torch.device, dtype: str, size: int, min_seconds: float = 0.3,
                rounds: int = 3) -> dict[str, Any]:
    """Best achieved FLOP/s of an (n x n) @ (n x n) matmul in `dtype` on `device` (2 n^3 FLOPs)."""
    torch_dtype = check_dtype(dtype)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device=device, dtype=torch_dtype)
    b = torch.randn(size, size, generator=gen).to(device=device, dtype=torch_dtype)
    step = lambda: torch.mm(a, b)  # noqa: E731
    first = min(latencies(step, iters=2, warmup=2, device=device))
    reps = max(1, math.ceil(min_seconds / max(first, 1e-6)))
    best = min(back_to_back_seconds(step, reps, device) / reps for _ in range(rounds))
    flops = 2.0 * size**3
    return {"dtype": dtype, "size": size, "seconds_per_matmul": best, "tflops": flops / best / 1e12}


class PeakMemory:
    """Peak memory over a measured section: `max_memory_allocated` on CUDA; on the CPU the
    process's peak RSS (VmHWM), reset through /proc/self/clear_refs where the kernel allows it
    (otherwise it is the peak over the process lifetime, flagged by `rss_peak_scope`)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.scope = "process lifetime"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.scope = "section"
        except OSError:
            self.scope = "process lifetime"

    def read(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rss_peak_mb": _proc_status_mb("VmHWM"), "rss_peak_scope": self.scope}
        if self.device.type == "cuda":
            out["gpu_max_allocated_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            out["gpu_max_reserved_mb"] = torch.cuda.max_memory_reserved(self.device) / 2**20
        return out


def _proc_status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    if key == "VmHWM":
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return None


def set_threads(threads: int | None) -> None:
    """Intra-op threads of torch for this process (None: leave the default)."""
    if threads is not None:
        if threads < 1:
            raise DirNetError(f"--threads {threads}: must be >= 1")
        torch.set_num_threads(threads)

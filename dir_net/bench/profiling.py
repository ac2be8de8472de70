"""Where inference time goes: torch.profiler operator table and inclusive time per module.

Module times come from forward pre/post hooks (with a device sync on CUDA) on the modules of
`traced_modules` (inclusive: a parent's time contains its children's),
averaged over `iters` forwards after `warmup`. Modules under 1% of the forward are left out.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from dir_net.bench import models as bench_models
from dir_net.bench.batch import synthetic_batch, to_device
from dir_net.bench.infer import make_step
from dir_net.bench.report import make_result
from dir_net.bench.timing import check_dtype, resolve_device, set_threads, synchronize
from dir_net.errors import DirNetError

COLUMNS = ("module", "calls", "ms_per_forward", "percent")
MIN_PERCENT = 1.0


@dataclass
class ProfileOptions:
    model: str = "dir"
    device: str = "auto"
    dtype: str = "fp32"
    channels_last: bool = False
    explicit_mfp: bool = False  # DIR: explicit MFP planes instead of the factorised conv (same output)
    batch: int = 8
    size: int = 256
    iters: int = 3
    warmup: int = 1
    depth: int = 2  # module-name depth (dots + 1) of the per-module table
    ops: int = 25  # operator rows kept
    threads: int | None = None
    config: str | None = None
    overrides: list[str] = field(default_factory=list)


def traced_modules(model: nn.Module, depth: int) -> dict[str, nn.Module]:
    """Modules up to `depth` name levels, the parts of every ModuleList element (e.g. each DIR
    refinement stage's fuse / gcn / transformer / projection / refine) and the MANO layer."""
    out = {name: m for name, m in model.named_modules() if name and name.count(".") < depth}
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList):
            for index, element in module.named_children():
                out[f"{name}.{index}"] = element
                out.update({f"{name}.{index}.{child}": m for child, m in element.named_children()})
    hands = getattr(model, "hands", None)
    if isinstance(hands, nn.Module) and hands not in out.values():
        out["hands (MANO layer)"] = hands
    return out


def module_times(model: nn.Module, step: Callable[[], Any], iters: int, depth: int,
                 device: torch.device) -> tuple[dict[str, dict[str, float]], float]:
    """Inclusive seconds and calls per module over `iters` steps, and the total step seconds."""
    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    starts: dict[str, list[float]] = defaultdict(list)
    handles = []

    def pre(name: str) -> Callable:
        def hook(*_: Any) -> None:
            synchronize(device)
            starts[name].append(time.perf_counter())
        return hook

    def post(name: str) -> Callable:
        def hook(*_: Any) -> None:
            synchronize(device)
            spent[name] += time.perf_counter() - starts[name].pop()
            calls[name] += 1
        return hook

    for name, module in traced_modules(model, depth).items():
        handles.append(module.register_forward_pre_hook(pre(name)))
        handles.append(module.register_forward_hook(post(name)))
    try:
        start = time.perf_counter()
        for _ in range(iters):
            step()
        synchronize(device)
        total = time.perf_counter() - start
    finally:
        for h in handles:
            h.remove()
    return {n: {"seconds": spent[n], "calls": calls[n]} for n in spent}, total


def operator_table(step: Callable[[], Any], device: torch.device, limit: int) -> list[dict[str, Any]]:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        synchronize(device)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    if device.type == "cuda":
        events = sorted(events, key=lambda e: getattr(e, "self_device_time_total", 0.0), reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    rows = []
    for e in events[:limit]:
        row = {"op": e.key, "calls": e.count, "self_cpu_ms": e.self_cpu_time_total / 1e3,
               "cpu_total_ms": e.cpu_time_total / 1e3, "self_cpu_percent": 100.0 * e.self_cpu_time_total / total}
        if device.type == "cuda":
            row["self_device_ms"] = getattr(e, "self_device_time_total", 0.0) / 1e3
        rows.append(row)
    return rows


def run(opts: ProfileOptions) -> dict[str, Any]:
    device = resolve_device(opts.device)
    check_dtype(opts.dtype)
    set_threads(opts.threads)
    if opts.batch < 1 or opts.iters < 1:
        raise DirNetError("--batch and --iters must be >= 1")
    name = bench_models.resolve_models(opts.model)[0]
    cfg = bench_models.model_config(name, opts.config, opts.overrides)
    model = bench_models.build(cfg, device, opts.channels_last, train=False, explicit_mfp=opts.explicit_mfp)
    batch = to_device(synthetic_batch(opts.batch, opts.size, hands=bench_models.hand_layer(cfg)), device,
                      opts.channels_last)
    step = make_step(model, model, batch, device, opts.dtype)
    for _ in range(opts.warmup):
        step()
    times, total = module_times(model, step, opts.iters, opts.depth, device)
    rows = []
    for module, t in times.items():
        percent = 100.0 * t["seconds"] / total
        if percent >= MIN_PERCENT:
            rows.append({"module": module, "calls": t["calls"] // opts.iters,
                         "ms_per_forward": 1e3 * t["seconds"] / opts.iters, "percent": percent})
    extra = {"forward_ms": 1e3 * total / opts.iters, "operators": operator_table(step, device, opts.ops)}
    return make_result("profile", {**asdict(opts), "device": str(device)}, rows, device=str(device), extra=extra)

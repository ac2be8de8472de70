"""`dirnet bench infer | train | data | index | eval | profile | all`: performance figures as a
table and a JSON file (docs/BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from dir_net.commands.config import add_config_arguments

BENCHES = ("infer", "train", "data", "index", "eval", "profile")
DEFAULT_JSON_DIR = Path("work_dirs") / "bench"


def _model_options(p: argparse.ArgumentParser, models: bool = True) -> None:
    if models:
        p.add_argument("--models", default=None, help="comma-separated: dir,internet (default: every registered one)")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (cuda when available)")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"), help="autocast dtype (fp32: none)")
    p.add_argument("--channels-last", action="store_true", help="NHWC model and input")
    p.add_argument("--explicit-mfp", action="store_true",
                   help="DIR: build the explicit MFP planes instead of the factorised conv (same output)")
    p.add_argument("--size", type=int, default=256, help="square input side, px")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", default=None, metavar="OUT",
                   help=f"JSON output (written atomically; default {DEFAULT_JSON_DIR}/BENCH_DEVICE_DATE.json)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks: inference, training, data loading, index, evaluation")
    sub = parser.add_subparsers(dest="bench_command", metavar="BENCH", required=True)

    p = sub.add_parser("infer", help="images/s and latency (batch 1 and a large batch), FLOP/s vs matmul peak")
    _model_options(p)
    p.add_argument("--fold-bn", action="store_true", help="fold conv -> BatchNorm pairs into the convs first")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (static shapes)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="replay a CUDA graph (with --compile: mode reduce-overhead)")
    p.add_argument("--batch", type=int, default=0, help="large batch (default 128 on CUDA, 8 on the CPU)")
    p.add_argument("--iters", type=int, default=0, help="timed calls per batch size (default 50 CUDA / 10 CPU)")
    p.add_argument("--warmup", type=int, default=0, help="untimed calls first (default 10 CUDA / 2 CPU)")
    p.add_argument("--peak-size", type=int, default=0, help="matmul side of the peak (default 8192 CUDA / 2048 CPU)")
    add_config_arguments(p)
    _common(p)
    p.set_defaults(func=_run("infer"))

    p = sub.add_parser("train", help="training step images/s (forward + backward + optimiser), peak memory")
    _model_options(p)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--batch", type=int, default=0, help="batch (default 64 on CUDA, 4 on the CPU)")
    p.add_argument("--iters", type=int, default=0, help="timed steps (default 30 CUDA / 3 CPU)")
    p.add_argument("--warmup", type=int, default=0, help="untimed steps first (default 5 CUDA / 1 CPU)")
    p.add_argument("--peak-size", type=int, default=0, help="matmul side of the peak (default 8192 CUDA / 2048 CPU)")
    add_config_arguments(p)
    _common(p)
    p.set_defaults(func=_run("train"))

    p = sub.add_parser("data", help="DataLoader samples/s per worker (DIR and InterNet pipelines)")
    p.add_argument("--root", default=None, help="InterHand2.6M-format root (default: a cached synthetic split)")
    p.add_argument("--workdir", default=None, help="cache of the synthetic split (default ~/.cache/dirnet/bench)")
    p.add_argument("--frames", type=int, default=64, help="synthetic frames (x 4 cameras = images)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train")
    p.add_argument("--pipelines", default="dir,internet")
    p.add_argument("--workers", default="0,1,2", help="comma-separated worker counts")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batches", type=int, default=10, help="timed batches per setting")
    p.add_argument("--samples", type=int, default=32, help="samples of the stage breakdown / decoder comparison")
    p.add_argument("--epochs", type=int, default=3, help="epochs of the persistent-worker comparison (0: skip)")
    p.add_argument("--target", type=float, default=600.0, help="images/s the loader must sustain")
    p.add_argument("--threads", type=int, default=None)
    add_config_arguments(p)
    _common(p)
    p.set_defaults(func=_run("data"))

    p = sub.add_parser("index", help="columnar index vs json.load: build time, open time, worker memory "
                       "(default 1M samples: ~4 min and ~10 GB of RAM for json.load; --no-plain skips it)")
    p.add_argument("--n", type=int, default=1_000_000, help="samples (1M: ~4 min and ~10 GB with the plain approach)")
    p.add_argument("--probe", type=int, default=10_000, help="random rows read by the probed worker")
    p.add_argument("--no-plain", action="store_true", help="skip the plain json.load approach")
    p.add_argument("--workdir", default=None, help="keep the generated files here (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=0)
    _common(p)
    p.set_defaults(func=_run("index"))

    p = sub.add_parser("eval", help="eval.evaluate frames/s, all protocols, with and without IV")
    p.add_argument("--frames", type=int, default=4096)
    p.add_argument("--iv-frames", type=int, default=128, help="frames of the IV run (0: skip)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    _common(p)
    p.set_defaults(func=_run("eval"))

    p = sub.add_parser("profile", help="torch.profiler operators and time per module of one model's forward")
    p.add_argument("--model", default="dir")
    _model_options(p, models=False)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--depth", type=int, default=2,
                   help="module-name depth of the per-module table (ModuleList elements are always expanded)")
    p.add_argument("--ops", type=int, default=25, help="operator rows shown")
    add_config_arguments(p)
    _common(p)
    p.set_defaults(func=_run("profile"))

    p = sub.add_parser("learn", help="does training learn? DIR and InterNet from scratch vs the mean-hand baseline")
    p.add_argument("--minutes", type=float, default=None,
                   help="training budget per model, minutes (default: the scale's, 15 on cpu)")
    p.add_argument("--steps", type=int, default=None, help="or a fixed number of optimiser steps per model")
    p.add_argument("--scale", default="cpu", choices=("cpu", "gpu"),
                   help="cpu: reduced models, 4k crops; gpu: full-size DIR (+ basic ablation), 20k crops (not measured)")
    p.add_argument("--models", default=None, help="comma-separated subset: dir,internet (gpu: also dir_basic)")
    p.add_argument("--workdir", default=None, help="synthetic data (reused) and the curve (default work_dirs/learn)")
    p.add_argument("--frames", type=int, default=None, help="training frames (x cameras); default: the scale's")
    p.add_argument("--test-frames", type=int, default=None)
    p.add_argument("--cameras", type=int, default=None,
                   help="cameras per capture, each seeing every frame (default: the scale's)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--eval-points", type=int, default=5, help="learning-curve evaluations per model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--curve", default=None, help="learning-curve PNG (default {workdir}/learn_curve.png)")
    p.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="config overrides for every model")
    _common(p)
    p.set_defaults(func=_learn)

    p = sub.add_parser("probe", help="is it the data or the model? a plain CNN regressing joints on the DIR "
                       "pipeline's crops of a dataset vs the mean hand (no augmentation, crops cached)")
    p.add_argument("root", help="dataset with train and test splits (e.g. the set `dirnet bench learn` generated)")
    p.add_argument("--minutes", type=float, default=5.0, help="training budget (one thread)")
    p.add_argument("--size", type=int, default=64, help="input px (crops made at 128 and resized)")
    p.add_argument("--backbone", default="plain", choices=("plain", "resnet50"))
    p.add_argument("--width", type=int, default=32, help="plain: first-stage channels; resnet50: stem width")
    p.add_argument("--head", default="direct", help="direct: joints as offsets from the mean hand | mano: DIR's "
                   "parameters (6D root, finger PCA, betas, camera) through the MANO layer")
    p.add_argument("--evals", type=int, default=4, help="evaluations over the budget")
    p.add_argument("--cache", default=None, help="a .pt file of the cached crops (written when absent)")
    p.add_argument("--seed", type=int, default=0)
    _common(p)
    p.set_defaults(func=_probe)

    p = sub.add_parser("all", help="infer, train, data, index and eval with their defaults; one JSON. Takes about "
                       "25 min on a 2-core CPU and ~10 GB of RAM (the index bench's json.load of 1M samples: "
                       "--no-plain or --index-n 100000 avoid it); --smoke checks every bench in ~1 min",
                       description="Every bench with its defaults, one JSON. On a 2-core CPU this takes about 25 min "
                                   "and the index bench needs ~10 GB of RAM (--no-plain or a smaller --index-n avoid "
                                   "that); --dtype bf16 adds bf16 runs and a bf16 matmul peak (minutes on a CPU "
                                   "without fast bf16). --smoke: tiny sizes, ~1 min, checks that every bench runs.")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--index-n", type=int, default=1_000_000)
    p.add_argument("--no-plain", action="store_true", help="index: skip the plain json.load approach")
    p.add_argument("--smoke", action="store_true",
                   help="tiny models, sizes and counts (~1 min on a CPU): checks that every bench runs")
    _common(p)
    p.set_defaults(func=_all)


def _options(bench: str) -> tuple[type, Callable[[Any], dict[str, Any]], tuple[str, ...]]:
    """(options dataclass, run function, table columns) of a benchmark (imported lazily)."""
    import importlib

    module = importlib.import_module(f"dir_net.bench.{_MODULES[bench]}")
    return getattr(module, _CLASSES[bench]), module.run, module.COLUMNS


_MODULES = {"infer": "infer", "train": "train", "data": "loader", "index": "index", "eval": "evaluation",
            "profile": "profiling"}
_CLASSES = {"infer": "InferOptions", "train": "TrainOptions", "data": "LoaderOptions", "index": "IndexOptions",
            "eval": "EvalOptions", "profile": "ProfileOptions"}


def _smoke_settings() -> dict[str, dict[str, Any]]:
    from dir_net.bench.models import SMOKE_OVERRIDES

    model = {"batch": 2, "iters": 2, "warmup": 1, "size": 64, "peak_size": 256, "overrides": list(SMOKE_OVERRIDES)}
    return {
        "infer": model,
        "train": model,
        "data": {"frames": 2, "batch": 2, "batches": 2, "samples": 2, "epochs": 2, "workers": "0,1"},
        "index": {"n": 200, "probe": 50},
        "eval": {"frames": 64, "iv_frames": 4, "repeats": 1},
    }


def _run(bench: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        cls, run, columns = _options(bench)
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        result = run(cls(**values))
        print_result(result, columns)
        _write(result, args.json)
        return 0
    return handler


def _all(args: argparse.Namespace) -> int:
    from dir_net.bench.report import make_result

    results, summary = {}, []
    for bench in ("infer", "train", "data", "index", "eval"):
        cls, run, columns = _options(bench)
        values: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(cls)}
        if "device" in names:
            values.update(device=args.device, dtype=args.dtype)
        if bench == "index":
            values.update(n=args.index_n, no_plain=args.no_plain)
        if args.smoke:
            values.update(_smoke_settings()[bench])
        start = time.perf_counter()
        result = run(cls(**values))
        print(f"\n== {bench} ({time.perf_counter() - start:.0f} s): {result['command']}")
        print_result(result, columns)
        results[bench] = result
        summary.append({"bench": bench, "command": result["command"], "rows": len(result["rows"])})
    device = results["infer"]["environment"]["device"]
    settings = {"device": args.device, "dtype": args.dtype, "index_n": args.index_n, "no_plain": args.no_plain,
                "smoke": args.smoke}
    combined = make_result("all", settings, summary, device=device, extra={"results": results})
    _write(combined, args.json)
    return 0


def _learn(args: argparse.Namespace) -> int:
    from dir_net.bench.learn import LearnOptions, print_learn, run

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(LearnOptions) if hasattr(args, f.name)}
    result = run(LearnOptions(**values))
    print_learn(result)
    _write(result, args.json)
    return 0


def _probe(args: argparse.Namespace) -> int:
    from dir_net.bench.probe import ProbeOptions, run
    from dir_net.bench.report import make_result

    import torch

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(ProbeOptions)}
    torch.set_num_threads(1)  # the probe's figures are one-thread figures
    result = run(ProbeOptions(**values))
    _write(make_result("probe", values, result["curve"], extra={"mean_hand": result["mean_hand"]}), args.json)
    return 0


def print_result(result: dict[str, Any], columns: tuple[str, ...]) -> None:
    from dir_net.bench.report import format_table

    print(format_table(result["rows"], columns))
    extra = result["extra"]
    if "matmul_peak" in extra:
        peaks = ", ".join(f"{k} {v['tflops']:.3g} TFLOP/s (n={v['size']})" for k, v in extra["matmul_peak"].items())
        print(f"measured matmul peak: {peaks}")
    if result["bench"] == "data":
        stages = [{"pipeline": k, **v} for k, v in extra["stages"].items()]
        print("\nper-sample stages (one thread, ms):")
        print(format_table(stages, ("pipeline", "decode_ms", "aux_maps_ms", "read_record_ms", "gt_mano_ms",
                                    "pipeline_ms", "normalise_ms", "sample_total_ms", "sample_bytes")))
        print("\nJPEG decoders (one thread):")
        print(format_table(extra["decoders"], ("decoder", "ms_per_image")))
        transfer = {k: round(v["ms_per_sample"], 3) for k, v in extra["transfer"].items()}
        print(f"\nworker -> main hand-over, ms per sample: {transfer}")
        for pipeline, epochs in extra["epoch_startup"].items():
            later = {k: round(v["later_epochs_mean_s"], 3) for k, v in epochs.items() if isinstance(v, dict)}
            print(f"{pipeline}: time to the first batch of later epochs, s: {later}")
        print(f"host -> device: {extra['host_to_device']}")
        print(f"workers needed for {extra['target_images_per_s']:.0f} images/s at this CPU's per-worker rate: "
              f"{extra['workers_needed_for_target']}")
    if result["bench"] == "profile":
        print(f"\nforward {extra['forward_ms']:.1f} ms; operators:")
        print(format_table(extra["operators"], ("op", "calls", "self_cpu_ms", "self_cpu_percent", "self_device_ms")))
    print(f"load average: {result['environment'].get('load_average')}")


def _write(result: dict[str, Any], out: str | None) -> None:
    from dir_net.utils.io import write_json

    if out is None:
        device = str(result["environment"].get("device", "cpu")).replace(":", "")
        stamp = time.strftime("%Y%m%d_%H%M%S")
        out = str(DEFAULT_JSON_DIR / f"{result['bench']}_{device}_{stamp}.json")
    write_json(out, result)
    print(f"wrote {out}")

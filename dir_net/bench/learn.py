"""`dirnet bench learn`: does training learn pose from images? DIR and InterNet from scratch on a
synthetic InterHand2.6M-format set for equal wall-clock budgets, scored on the test split with the
standard toolkit (eval/) beside the mean-hand baseline (dir_net.bench.mean_hand).

Steps: generate (or reuse) the synthetic set sized for the scale (`dirnet data synth`) and prepare it
(index, verify, seg/dense maps); the mean hand of the training split per protocol; each model trained
for `--minutes` of training (evaluation pauses the clock) with a learning curve on the test split;
a table, a JSON file (written atomically) and a PNG of the curves.

Scales: `cpu` (the figures of docs/BENCHMARKS.md, measured on a 2-core CPU) trains the reduced
models of configs/learn_{dir,internet}_cpu.yaml at 128 px; `gpu` (>= 20k training images, the
full-size DIR and its Table-1 `basic` ablation, 256 px) is defined but has not been measured.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from dir_net.bench.learn_train import (
    Budget, TrainRecord, format_metrics, ground_truth_rows, infinite_batches, predict_rows, score, train_for,
)
from dir_net.bench.mean_hand import score_mean_hand
from dir_net.bench.report import format_table, make_result
from dir_net.bench.timing import resolve_device
from dir_net.errors import DirNetError

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
COLUMNS = ("model", "protocol", "mpjpe", "mpvpe", "miaa", "ratio_mpjpe", "ratio_miaa", "steps", "images_seen",
           "train_s", "wall_s")
# The figures the targets are about: DIR under mcp_scaled (MPJPE and MIAA), InterNet under moon.
HEADLINE = {"dir": "mcp_scaled", "internet": "moon", "dir_basic": "mcp_scaled"}
SYNTH_SEED = 0


@dataclass(frozen=True)
class Scale:
    """Data size and model configs of one benchmark scale."""

    train_frames: int  # per split, each seen by `cameras` cameras
    test_frames: int
    cameras: int
    minutes: float  # default training budget per model
    models: dict[str, str]  # name -> config file (relative to configs/)
    measured: bool  # False: the path exists but no figure has been measured with it
    num_workers: int  # loader workers per model
    description: str


SCALES = {
    "cpu": Scale(train_frames=1024, test_frames=96, cameras=4, minutes=15.0, num_workers=1,
                 models={"dir": "learn_dir_cpu.yaml", "internet": "learn_internet_cpu.yaml"}, measured=True,
                 description="reduced models at 128 px (see configs/learn_*_cpu.yaml), 4k training crops"),
    "gpu": Scale(train_frames=5120, test_frames=512, cameras=4, minutes=30.0, num_workers=8,
                 models={"dir": "learn_dir_gpu.yaml", "dir_basic": "learn_dir_basic_gpu.yaml",
                         "internet": "learn_internet_gpu.yaml"}, measured=False,
                 description="full-size DIR (+ Table-1 ID 1 basic) and InterNet at 256 px, 20k training crops "
                             "(not measured yet)"),
}


@dataclass
class LearnOptions:
    minutes: float | None = None  # training budget per model; None -> the scale's default
    steps: int | None = None  # or a fixed number of optimiser steps per model (tests)
    scale: str = "cpu"
    models: str | None = None  # comma-separated subset of the scale's models
    workdir: str | None = None  # synthetic data and curve image (default work_dirs/learn)
    frames: int | None = None  # training frames (x cameras); None -> the scale's
    test_frames: int | None = None
    cameras: int | None = None  # cameras per capture (every frame seen by each); None -> the scale's
    device: str = "cpu"
    eval_points: int = 5  # learning-curve evaluations per model
    seed: int = 0
    curve: str | None = None  # PNG of the learning curves (default {workdir}/learn_curve.png)
    overrides: list[str] = field(default_factory=list)  # key=value for every model's config


def _scale(opts: LearnOptions) -> Scale:
    if opts.scale not in SCALES:
        raise DirNetError(f"--scale {opts.scale}: choose one of {', '.join(SCALES)}")
    return SCALES[opts.scale]


def model_names(opts: LearnOptions) -> list[str]:
    available = list(_scale(opts).models)
    if not opts.models:
        return available
    names = [n.strip() for n in opts.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise DirNetError(f"--models: {unknown} not in the {opts.scale} scale; choose from {available}")
    return names


# --- data ------------------------------------------------------------------------------------------
def data_root(workdir: Path, frames: int, test_frames: int, cameras: int) -> Path:
    from dir_net.engine.quickstart import SYNTH_FRAMES_PER_SEQUENCE

    return workdir / f"synth_{frames}x{cameras}_test{test_frames}_seed{SYNTH_SEED}_fps{SYNTH_FRAMES_PER_SEQUENCE}"


def ensure_data(root: Path, frames: int, test_frames: int, cameras: int, say: Callable[[str], None]) -> float:
    """Generate the train and test splits at `root` unless a finished set is there; seconds spent."""
    from dir_net.data.synth import generate, is_complete
    from dir_net.engine.quickstart import SYNTH_FRAMES_PER_SEQUENCE

    if is_complete(root):
        say(f"reusing the synthetic set at {root}")
        return 0.0
    start = time.perf_counter()
    say(f"generating {frames} train / {test_frames} test frames x {cameras} cameras at {root} "
        f"(about {(frames + test_frames) * cameras / 15 / 60:.0f} min on a 2-core CPU)")
    generate(root, frames=frames, seed=SYNTH_SEED, splits=["train"], cameras=cameras,
             frames_per_sequence=SYNTH_FRAMES_PER_SEQUENCE)
    (root / "dirnet_synth.json").unlink()  # not finished until the test split is written too
    generate(root, frames=test_frames, seed=SYNTH_SEED, splits=["test"], cameras=cameras,
             frames_per_sequence=SYNTH_FRAMES_PER_SEQUENCE)
    return time.perf_counter() - start


def prepare_data(cfg: Any, say: Callable[[str], None]) -> None:
    """Index and verify both splits; seg/dense maps of the train split (DIR's aux losses)."""
    from dir_net.engine.quickstart import prepare_splits

    start = time.perf_counter()
    prepare_splits(cfg, ["train", "test"])
    say(f"data prepared in {time.perf_counter() - start:.0f} s")


# --- configs ---------------------------------------------------------------------------------------
def model_config(name: str, scale: Scale, root: Path, opts: LearnOptions) -> Any:
    from dir_net.config import load_config
    from dir_net.engine.trainer import apply_model_pipeline

    overrides = [f"data.root={root}", f"experiment.seed={opts.seed}", f"train.device={opts.device}",
                 *opts.overrides]
    return apply_model_pipeline(load_config(CONFIG_DIR / scale.models[name], overrides))


def protocols_of(cfg: Any) -> list[str]:
    from dir_net.engine import inference

    return inference.protocols_for(cfg)


# --- one model -------------------------------------------------------------------------------------
@dataclass
class ModelRun:
    name: str
    config: str
    results: dict[str, dict[str, float]]
    record: TrainRecord
    wall_s: float
    parameters: int
    settings: dict[str, Any]


def _model_settings(cfg: Any) -> dict[str, Any]:
    """What makes a reduced model reduced: printed and stored with the figures."""
    m = cfg.model
    out = {"image_size": int(cfg.data.image_size), "backbone": m.backbone.name, "backbone_width": int(m.backbone.width),
           "batch_size": int(cfg.train.batch_size), "optimizer": cfg.train.optimizer.name,
           "lr": float(cfg.train.optimizer.lr), "schedule": cfg.train.schedule.name}
    if m.name == "dir":
        d = m.dir
        out.update(refine=bool(d.refine), stages=int(d.stages), attention=d.attention, width=int(d.width),
                   joint_dim=int(d.joint_dim), plane_dim=int(d.plane_dim), gcn_layers=int(d.gcn_layers),
                   tf_layers=int(d.tf_layers),
                   rotation_aug_deg=float(cfg.data.dir.rotation))
    elif m.name == "internet":
        i = m.internet
        out.update(deconv_layers=int(i.deconv_layers), deconv_channels=int(i.deconv_channels),
                   depth_bins=int(i.depth_bins), hidden=int(i.hidden),
                   rotation_aug_deg=float(cfg.data.internet.rotation))
    return out


def run_model(name: str, cfg: Any, budget: Budget, opts: LearnOptions, device: torch.device,
              test_gt: dict[str, Any], num_workers: int, say: Callable[[str], None]) -> ModelRun:
    from torch.utils.data import DataLoader

    from dir_net.data import build_dataset
    from dir_net.engine import inference, optim, runtime
    from dir_net.models import build_model

    start = time.perf_counter()
    runtime.seed_everything(opts.seed)
    protocols = protocols_of(cfg)
    model = build_model(cfg).to(device)
    optimizer = optim.build_optimizer(cfg.train, model)
    train_set = build_dataset(cfg, "train", True)
    test_set = build_dataset(cfg, "test", False)
    test_loader = DataLoader(test_set, batch_size=int(cfg.evaluation.batch_size),
                             **inference.worker_options(num_workers, persistent=True))
    batches = infinite_batches(train_set, int(cfg.train.batch_size), num_workers, opts.seed, device)
    params = sum(p.numel() for p in model.parameters())
    settings = _model_settings(cfg)
    say(f"{name}: {params / 1e6:.2f}M parameters, {len(train_set)} training crops, "
        + ", ".join(f"{k}={v}" for k, v in settings.items()))

    def evaluate() -> dict[str, dict[str, float]]:
        return score(predict_rows(model, test_loader, device), test_gt, protocols)

    record = train_for(model, optimizer, cfg.train, batches, budget, evaluate, max(opts.eval_points, 1), say,
                       float(cfg.train.clip_grad_norm))
    results = record.curve[-1].metrics
    say(f"{name}: {record.ended}; {record.steps} steps, {record.images} images; " + format_metrics(results))
    return ModelRun(name, opts.scale, results, record, time.perf_counter() - start, params, settings)


# --- the whole benchmark ---------------------------------------------------------------------------
def run(opts: LearnOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    from dir_net.data import build_dataset
    from dir_net.engine.runtime import cpu_threads

    start = time.perf_counter()
    scale = _scale(opts)
    names = model_names(opts)
    device = resolve_device(opts.device)
    minutes = opts.minutes if opts.minutes is not None else (None if opts.steps else scale.minutes)
    if (minutes is not None and minutes <= 0) or (opts.steps is not None and opts.steps < 1):
        raise DirNetError(f"--minutes {opts.minutes} / --steps {opts.steps}: the budget must be positive")
    budget = Budget(seconds=minutes * 60.0 if minutes else None, steps=opts.steps)
    workdir = Path(opts.workdir or Path("work_dirs") / "learn")
    frames = opts.frames if opts.frames is not None else scale.train_frames
    test_frames = opts.test_frames if opts.test_frames is not None else scale.test_frames
    cameras = opts.cameras if opts.cameras is not None else scale.cameras
    bad = [f"--{name} {value}" for name, value in
           (("frames", frames), ("test-frames", test_frames), ("cameras", cameras)) if value < 1]
    if bad:
        raise DirNetError(f"bench learn: {', '.join(bad)}: must be >= 1")
    root = data_root(workdir, frames, test_frames, cameras)
    num_workers = scale.num_workers if device.type == "cuda" else min(scale.num_workers, 1)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(num_workers))
    say(f"bench learn: scale {opts.scale} ({scale.description}), models {', '.join(names)}, budget "
        + (f"{minutes:g} min" if minutes else f"{opts.steps} steps") + f" per model, device {device}, "
        f"{torch.get_num_threads()} torch thread(s) + {num_workers} loader worker(s)")
    if not scale.measured:
        say(f"note: the {opts.scale} scale has not been measured (docs/BENCHMARKS.md)")
    data_s = ensure_data(root, frames, test_frames, cameras, say)

    configs = {name: model_config(name, scale, root, opts) for name in names}
    prepare_data(next(iter(configs.values())), say)

    # the mean hand and the test ground truth of every protocol family, from each pipeline
    baseline: dict[str, dict[str, float]] = {}
    test_gt: dict[str, dict[str, Any]] = {}
    base_start = time.perf_counter()
    for name, cfg in configs.items():
        from dir_net.engine import groundtruth

        families = list(groundtruth.group_protocols(protocols_of(cfg)))
        test_gt[name] = ground_truth_rows(build_dataset(cfg, "test", False), families)
        missing = [p for p in protocols_of(cfg) if p not in baseline]
        if missing:
            train_gt = ground_truth_rows(build_dataset(cfg, "train", False), families)
            for family, protos in groundtruth.group_protocols(missing).items():
                if train_gt.get(family) and test_gt[name].get(family):
                    baseline.update(score_mean_hand(train_gt[family], test_gt[name][family], protos))
    say(f"mean hand ({time.perf_counter() - base_start:.0f} s): " + format_metrics(baseline))

    runs = []
    for name, cfg in configs.items():
        say(f"training {name} ({scale.models[name]})")
        runs.append(run_model(name, cfg, budget, opts, device, test_gt[name], num_workers, say))

    rows = table_rows(runs, baseline)
    curve_path = Path(opts.curve) if opts.curve else workdir / "learn_curve.png"
    plot_curves(runs, baseline, curve_path, f"bench learn, {opts.scale} scale")
    # settings: the options, resolved (the JSON's `command` repeats the run from them)
    settings = {**asdict(opts), "minutes": minutes, "models": ",".join(names), "frames": frames,
                "test_frames": test_frames, "cameras": cameras}
    learn = learn_summary(runs, baseline)
    extra = {"data": {"root": str(root), "cameras": cameras, "train_images": frames * cameras,
                      "test_images": test_frames * cameras},
             "models": {r.name: {"config": f"configs/{scale.models[r.name]}", "parameters": r.parameters,
                                 **r.settings} for r in runs},
             "measured_scale": scale.measured,
             "curves": {r.name: [asdict(p) for p in r.record.curve] for r in runs},
             "ended": {r.name: r.record.ended for r in runs}, "curve_png": str(curve_path),
             "data_generation_s": data_s, "total_s": time.perf_counter() - start,
             "baseline": baseline, "final_loss": {r.name: r.record.final_loss for r in runs}}
    result = make_result("learn", settings, rows, device=str(device), extra=extra)
    result["learn"] = learn
    return result


def _ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else value / base


def table_rows(runs: list[ModelRun], baseline: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        for protocol, metrics in r.results.items():
            base = baseline.get(protocol, {})
            rows.append({"model": r.name, "protocol": protocol, "mpjpe": metrics.get("mpjpe"),
                         "mpvpe": metrics.get("mpvpe"), "miaa": metrics.get("miaa"),
                         "ratio_mpjpe": _ratio(metrics.get("mpjpe"), base.get("mpjpe")),
                         "ratio_miaa": _ratio(metrics.get("miaa"), base.get("miaa")),
                         "steps": r.record.steps, "images_seen": r.record.images,
                         "train_s": r.record.train_s, "wall_s": r.wall_s})
    for protocol, metrics in baseline.items():
        rows.append({"model": "mean_hand", "protocol": protocol, "mpjpe": metrics.get("mpjpe"),
                     "mpvpe": metrics.get("mpvpe"), "miaa": metrics.get("miaa"), "ratio_mpjpe": 1.0,
                     "ratio_miaa": 1.0 if metrics.get("miaa") is not None else None})
    return rows


def learn_summary(runs: list[ModelRun], baseline: dict[str, dict[str, float]]) -> dict[str, Any]:
    """{"dir": {"mpjpe_mcp_scaled": mm, "miaa": px, ...}, "internet": {...}, "mean_hand": {...}}."""
    out: dict[str, Any] = {}
    for r in runs:
        entry: dict[str, Any] = {}
        for protocol, metrics in r.results.items():
            for metric in ("mpjpe", "mpvpe"):
                if metric in metrics:
                    entry[f"{metric}_{protocol}"] = metrics[metric]
        head = HEADLINE.get(r.name)
        if head in r.results and "miaa" in r.results[head]:
            entry["miaa"] = r.results[head]["miaa"]
        if head in baseline:
            entry[f"ratio_mpjpe_{head}"] = _ratio(r.results.get(head, {}).get("mpjpe"), baseline[head].get("mpjpe"))
            if "miaa" in entry:
                entry["ratio_miaa"] = _ratio(entry["miaa"], baseline[head].get("miaa"))
        entry.update(steps=r.record.steps, images_seen=r.record.images, train_s=r.record.train_s, wall_s=r.wall_s,
                     ended=r.record.ended)
        out[r.name] = entry
    mean: dict[str, float] = {}
    for protocol, metrics in baseline.items():
        for metric in ("mpjpe", "mpvpe"):
            if metric in metrics:
                mean[f"{metric}_{protocol}"] = metrics[metric]
    if "miaa" in baseline.get("mcp_scaled", {}):
        mean["miaa"] = baseline["mcp_scaled"]["miaa"]
    out["mean_hand"] = mean
    return out


def plot_curves(runs: list[ModelRun], baseline: dict[str, dict[str, float]], path: Path, title: str) -> Path:
    """Test error of each model's headline protocol as a fraction of the mean hand's, vs images seen
    (MPJPE solid, MIAA dashed); the mean hand is 1, the targets 0.75 (MPJPE) and 0.5 (MIAA)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dir_net.utils.io import atomic_path

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = {"dir": "tab:blue", "internet": "tab:orange", "dir_basic": "tab:green"}
    for r in runs:
        protocol = HEADLINE.get(r.name, next(iter(r.results), ""))
        base = baseline.get(protocol, {})
        points = [p for p in r.record.curve if protocol in p.metrics]
        xs = [p.images for p in points]
        for metric, style in (("mpjpe", "o-"), ("miaa", "s--")):
            if not base.get(metric) or not all(metric in p.metrics[protocol] for p in points):
                continue
            ys = [p.metrics[protocol][metric] / base[metric] for p in points]
            final = points[-1].metrics[protocol][metric]
            label = f"{r.name}: {protocol} {metric.upper()} ({final:.1f} vs {base[metric]:.1f})"
            ax.plot(xs, ys, style, color=colours.get(r.name), label=label)
    ax.axhline(1.0, color="k", lw=1, label="mean hand of the training split")
    ax.axhline(0.75, color="grey", lw=1, ls=":", label="target MPJPE 0.75")
    ax.axhline(0.5, color="grey", lw=1, ls="-.", label="target MIAA 0.5 (DIR)")
    ax.set_xlabel("training images seen")
    ax.set_ylabel("test error / mean hand's")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def print_learn(result: dict[str, Any]) -> None:
    print(format_table(result["rows"], COLUMNS))
    learn = result["learn"]
    for name in ("dir", "internet", "dir_basic"):
        if name in learn:
            entry = learn[name]
            ratios = ", ".join(f"{k} {v:.2f}" for k, v in entry.items() if k.startswith("ratio") and v is not None)
            print(f"{name}: {entry['ended']} ({ratios} of the mean hand)")
    print(f"learning curve: {result['extra']['curve_png']}")
    print(f"load average: {result['environment'].get('load_average')}")

"""Data-loading benchmark: DataLoader samples/s of the DIR and InterNet pipelines (training
augmentation on) with 0 / 1 / 2 workers, a per-stage breakdown of one sample, JPEG decoders,
the cost of handing a sample from a worker to the main process, the per-epoch worker start-up
(fork / forkserver / spawn, persistent or not) and, with CUDA, pageable vs pinned host-to-device copies.

The dataset is a synthetic InterHand2.6M-format split (`dirnet data synth`, 334x512 JPEGs, with
prepared seg/dense maps) cached under the work directory, or any existing root (`--root`).
Loaders use the trainer's worker options (`dir_net.engine.inference.worker_options`: one thread
per worker, spawn start); workers = 0 is measured with the process's own thread count and
with one thread.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from dir_net.bench.report import make_result
from dir_net.bench.timing import set_threads
from dir_net.errors import DirNetError

COLUMNS = ("pipeline", "workers", "threads", "start", "samples_per_s", "per_worker_samples_per_s",
           "ms_per_sample", "startup_s")
PIPELINES = ("dir", "internet")
WORKER_TIMEOUT_S = 300  # a hung worker becomes an error instead of a hung benchmark


@dataclass
class LoaderOptions:
    root: str | None = None  # existing InterHand2.6M-format root; None -> cached synthetic set
    workdir: str | None = None  # cache of the synthetic set; None -> $XDG_CACHE_HOME/dirnet/bench
    frames: int = 64  # synthetic frames (x 4 cameras = images)
    seed: int = 0
    split: str = "train"
    pipelines: str = "dir,internet"
    workers: str = "0,1,2"
    batch: int = 16
    batches: int = 10  # timed batches per setting (after the first, which includes start-up)
    samples: int = 32  # samples for the stage breakdown and the decoder comparison
    epochs: int = 3  # epochs of the persistent-worker comparison (0 skips it)
    target: float = 600.0  # images/s the loader must sustain (the H100 training target)
    threads: int | None = None
    config: str | None = None
    overrides: list[str] = field(default_factory=list)


def default_workdir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dirnet" / "bench"


def synthetic_root(workdir: Path, frames: int, seed: int, split: str) -> Path:
    """A cached synthetic split (images + annotations), generated when missing; a partial
    generation is never reused (it is written to a temporary folder, then renamed)."""
    from dir_net.data.synth import generate

    root = workdir / f"synth_{split}_f{frames}_s{seed}"
    if (root / "READY").is_file():
        return root
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=workdir))
    try:
        generate(tmp, frames=frames, seed=seed, splits=[split])
        (tmp / "READY").write_text("synthetic benchmark split\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def build_train_dataset(root: Path, pipeline: str, opts: LoaderOptions) -> Any:
    from dir_net.config import load_config
    from dir_net.data import build_dataset
    from dir_net.data.dataset import split_files
    from dir_net.data.quality import prepare

    cfg = load_config(opts.config, [f"data.root={root}", f"data.pipeline={pipeline}", *opts.overrides])
    if pipeline == "dir" and not opts.root:
        prepare(cfg, split_files(cfg, opts.split), workers=1, aux=True)  # index + maps (kept when present)
    return build_dataset(cfg, opts.split, train=True)


def _loader(dataset: Any, batch: int, workers: int, num_samples: int, persistent: bool = False,
            start: str | None = None) -> Any:
    """A DataLoader with the trainer's worker options (`dir_net.engine.inference.worker_options`:
    worker_init_fn, spawn start); `start` overrides the start method."""
    from torch.utils.data import DataLoader, RandomSampler

    from dir_net.engine.inference import worker_options

    sampler = RandomSampler(dataset, replacement=True, num_samples=num_samples,
                            generator=torch.Generator().manual_seed(0))
    options = worker_options(workers, persistent)
    if workers and start:
        options["multiprocessing_context"] = start
    return DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True,
                      timeout=WORKER_TIMEOUT_S if workers else 0, **options)


def start_method(loader: Any) -> str:
    if not loader.num_workers:
        return "-"
    ctx = loader.multiprocessing_context
    return ctx.get_start_method() if ctx is not None else "fork (default)"


def time_loader(dataset: Any, batch: int, workers: int, batches: int) -> dict[str, Any]:
    """Start-up (time to the first batch) and samples/s over the next `batches` batches."""
    loader = _loader(dataset, batch, workers, batch * (batches + 1))
    start = time.perf_counter()
    it = iter(loader)
    next(it)
    first = time.perf_counter()
    count = sum(len(b["image"]) for b in it)
    end = time.perf_counter()
    rate = count / (end - first)
    return {"start": start_method(loader), "startup_s": first - start, "samples_per_s": rate,
            "ms_per_sample": 1e3 / rate, "per_worker_samples_per_s": rate / max(workers, 1)}


class _Threads:
    """Temporarily `torch_threads` / `cv2_threads` threads in this process; on exit OpenCV is back
    at one thread, the state in which forking DataLoader workers is safe (see `run`)."""

    def __init__(self, torch_threads: int = 1, cv2_threads: int = 1) -> None:
        self.torch_threads, self.cv2_threads = torch_threads, cv2_threads

    def __enter__(self) -> None:
        import cv2

        self.saved = torch.get_num_threads()
        torch.set_num_threads(self.torch_threads)
        cv2.setNumThreads(self.cv2_threads)

    def __exit__(self, *exc: Any) -> None:
        import cv2

        torch.set_num_threads(self.saved)
        cv2.setNumThreads(1)


def loader_rows(dataset: Any, pipeline: str, workers: list[int], opts: LoaderOptions,
                cv2_default: int) -> list[dict[str, Any]]:
    """One row per worker count; workers = 0 twice: the process's default threads, and one thread."""
    rows = []
    default = (torch.get_num_threads(), cv2_default)
    for w in workers:
        settings = [default, (1, 1)] if w == 0 and default != (1, 1) else [(1, 1)]
        for threads in settings:
            with _Threads(*threads):
                stats = time_loader(dataset, opts.batch, w, opts.batches)
            rows.append({"pipeline": pipeline, "workers": w, "threads": threads[0] if w == 0 else 1, **stats})
    return rows


def epoch_startup(dataset: Any, workers: int, opts: LoaderOptions) -> dict[str, Any]:
    """Time to the first batch of each epoch: workers re-spawned every epoch (fork, forkserver)
    and persistent spawned workers (the trainer's setting); later epochs show the per-epoch cost."""
    out: dict[str, Any] = {"workers": workers, "epochs": opts.epochs}
    n = opts.batch * max(2, opts.batches)
    for name, start, persistent in (("fork, respawned", "fork", False),
                                    ("forkserver, respawned", "forkserver", False),
                                    ("spawn, persistent", "spawn", True)):
        loader = _loader(dataset, opts.batch, workers, n, persistent=persistent, start=start)
        startups = []
        for _ in range(opts.epochs):
            begin = time.perf_counter()
            it = iter(loader)
            next(it)
            startups.append(time.perf_counter() - begin)
            for _ in it:
                pass
        out[name] = {"first_epoch_s": startups[0], "later_epochs_mean_s": float(np.mean(startups[1:] or startups))}
        del it, loader  # shuts persistent workers down
    return out


class _FixedSample(torch.utils.data.Dataset):
    """Returns one precomputed sample (image as float32 or uint8): isolates worker -> main transfer."""

    def __init__(self, sample: dict[str, np.ndarray], length: int) -> None:
        self.sample, self.length = sample, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return self.sample


def transfer_cost(sample: dict[str, np.ndarray], opts: LoaderOptions) -> dict[str, Any]:
    """samples/s of one worker that only hands over a fixed sample: image float32 vs uint8."""
    as_uint8 = dict(sample, image=np.zeros(sample["image"].shape, np.uint8))
    out = {}
    for name, fixed in (("float32_image", sample), ("uint8_image", as_uint8)):
        stats = time_loader(_FixedSample(fixed, 10**9), opts.batch, 1, max(opts.batches, 10))
        out[name] = {"samples_per_s": stats["samples_per_s"], "ms_per_sample": stats["ms_per_sample"],
                     "sample_bytes": int(sum(np.asarray(v).nbytes for v in fixed.values()))}
    return out


def host_to_device(batch: dict[str, Any], repeats: int = 10) -> dict[str, Any]:
    """ms to copy one collated batch to the GPU from pageable and from pinned memory, and the cost
    of pinning it (what the DataLoader's pin-memory thread pays); skipped without CUDA."""
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device"}
    tensors = [v for v in batch.values() if torch.is_tensor(v)]
    pinned = [t.pin_memory() for t in tensors]

    def timed(fn: Callable[[], Any]) -> float:
        fn()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - start) / repeats * 1e3

    return {
        "batch_mb": sum(t.numel() * t.element_size() for t in tensors) / 2**20,
        "pageable_copy_ms": timed(lambda: [t.to("cuda", non_blocking=True) for t in tensors]),
        "pinned_copy_ms": timed(lambda: [t.to("cuda", non_blocking=True) for t in pinned]),
        "pin_ms": timed(lambda: [t.pin_memory() for t in tensors]),
    }


def _ms(fn: Callable[[], Any], items: list[Any]) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / max(len(items), 1) * 1e3


def stage_breakdown(dataset: Any, samples: int) -> dict[str, Any]:
    """Milliseconds per sample of each stage, in this process with one thread."""
    from dir_net.data.reader import load_aux, load_image, read_record
    from dir_net.data.transforms import to_tensor_image

    pipe = dataset.pipeline
    rows = [int(r) for r in dataset.rows[: max(1, samples)]]
    rng = np.random.default_rng(0)
    with _Threads():
        dataset[0]  # lazy per-process set-up (MANO layer) outside the timings
        out: dict[str, Any] = {
            "decode_ms": _ms(lambda r: load_image(dataset.index.image_path(r)), rows),
            "read_record_ms": _ms(lambda r: read_record(dataset.index, r, pipe.needs_mano, dataset.aux_dir), rows),
        }
        if dataset.aux_dir is not None:
            ann_ids = [int(dataset.index.col("ann_id")[r]) for r in rows]
            out["aux_maps_ms"] = _ms(lambda a: load_aux(dataset.aux_dir, a), ann_ids)
        records = [read_record(dataset.index, r, pipe.needs_mano, dataset.aux_dir) for r in rows]
        out["pipeline_ms"] = _ms(lambda rec: pipe(rec, rng), records)
        hands = getattr(pipe, "hands", None)
        fits = [(rec.mano, rec.camera) for rec in records if rec.mano is not None]
        if hands is not None and fits:
            out["gt_mano_ms"] = _ms(lambda fc: hands.camera_frame(*fc), fits)
        crop = np.zeros((pipe.size, pipe.size, 3), np.uint8)
        out["normalise_ms"] = _ms(lambda c: to_tensor_image(c), [crop] * len(rows))
        out["sample_total_ms"] = _ms(lambda i: dataset[i], list(range(len(rows))))
    sample = dataset[0]
    out["sample_bytes"] = int(sum(np.asarray(v).nbytes for v in sample.values()))
    out["image_bytes_float32"] = int(np.asarray(sample["image"]).nbytes)
    out["image_bytes_uint8"] = out["image_bytes_float32"] // 4
    out["samples"] = len(rows)
    return out


def decoder_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """ms per image of the JPEG decoders importable here (one thread); the others are listed as absent."""
    import cv2

    blobs = [p.read_bytes() for p in paths]
    decoders: dict[str, Callable[[bytes], Any] | None] = {
        "cv2.imdecode": lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR),
        "cv2.imdecode REDUCED_COLOR_2": lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_REDUCED_COLOR_2),
        "PIL": _pil_decoder(),
        "simplejpeg": _optional_decoder("simplejpeg"),
        "turbojpeg": _optional_decoder("turbojpeg"),
    }
    with _Threads():
        rows = [{"decoder": "cv2.imread (file)", "ms_per_image": _ms(lambda p: cv2.imread(str(p)), paths)}]
        rows.append({"decoder": "read bytes only", "ms_per_image": _ms(lambda p: p.read_bytes(), paths)})
        for name, fn in decoders.items():
            rows.append({"decoder": name, "ms_per_image": _ms(fn, blobs) if fn else None,
                         "available": fn is not None})
    return rows


def _pil_decoder() -> Callable[[bytes], Any] | None:
    try:
        from PIL import Image
    except ImportError:
        return None
    return lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))


def _optional_decoder(name: str) -> Callable[[bytes], Any] | None:
    try:
        module = __import__(name)
    except ImportError:
        return None
    if name == "simplejpeg":
        return lambda b: module.decode_jpeg(b, colorspace="BGR")
    jpeg = module.TurboJPEG()
    return lambda b: jpeg.decode(b)


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise DirNetError(f"{flag} {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if not values or min(values) < 0:
        raise DirNetError(f"{flag} {text!r}: expected non-negative integers")
    return values


def run(opts: LoaderOptions) -> dict[str, Any]:
    """OpenCV stays at one thread in this process except inside the workers = 0 measurement:
    a forked worker whose parent has a live OpenCV thread pool hangs in `cv2.setNumThreads`
    (which `dir_net.data.worker_init_fn` calls)."""
    import cv2

    cv2_default = cv2.getNumThreads()
    cv2.setNumThreads(1)
    set_threads(opts.threads)
    workers = _ints(opts.workers, "--workers")
    pipelines = [p.strip() for p in opts.pipelines.split(",") if p.strip()]
    for p in pipelines:
        if p not in PIPELINES:
            raise DirNetError(f"--pipelines: unknown pipeline {p!r}; choose from {', '.join(PIPELINES)}")
    if opts.batch < 1 or opts.batches < 1:
        raise DirNetError("--batch and --batches must be >= 1")
    if opts.root:
        root = Path(opts.root)
        if not root.is_dir():
            raise DirNetError(f"--root {root}: no such directory")
    else:
        root = synthetic_root(Path(opts.workdir) if opts.workdir else default_workdir(), opts.frames, opts.seed,
                              opts.split)
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"root": str(root), "target_images_per_s": opts.target, "stages": {},
                             "workers_needed_for_target": {}, "epoch_startup": {}}
    for pipeline in pipelines:
        dataset = build_train_dataset(root, pipeline, opts)
        rows += loader_rows(dataset, pipeline, workers, opts, cv2_default)
        if opts.epochs and max(workers) > 0:
            extra["epoch_startup"][pipeline] = epoch_startup(dataset, max(workers), opts)
        extra["stages"][pipeline] = stage_breakdown(dataset, opts.samples)
        one = [r["per_worker_samples_per_s"] for r in rows if r["pipeline"] == pipeline and r["workers"] == 1]
        if one:
            extra["workers_needed_for_target"][pipeline] = math.ceil(opts.target / one[0])
        if "decoders" not in extra:
            paths = [dataset.index.image_path(int(r)) for r in dataset.rows[: max(1, opts.samples)]]
            extra["decoders"] = decoder_rows(paths)
            extra["transfer"] = transfer_cost(dataset[0], opts)
            extra["host_to_device"] = host_to_device(next(iter(_loader(dataset, opts.batch, 0, opts.batch))))
    return make_result("data", asdict(opts), rows, device="cpu", extra=extra)


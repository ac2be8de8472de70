"""The training loop: DDP, mixed precision, accumulation, validation, exact mid-epoch resume.

Run directory `{experiment.output_dir}/{experiment.name}/`:
  config.yaml              resolved config of the latest (re)start
  train.log                plain log (appended across restarts)
  tb/                      TensorBoard events (train/*, val/*, images)
  checkpoints/step_*.pt    last `train.keep_last` checkpoints (each holds the resolved config)
  checkpoints/best.pt      copy of the best checkpoint by `train.best_metric`
  checkpoints/abandoned_*/ later checkpoints set aside when a run resumed from an older one
  val_metrics.json         every validation: epoch, step, {protocol: {metric: value}}
  .lock                    held by the run writing here (pid, host); a second writer is refused

train.log ends every run with a "run ended: ..." line (finished, train.max_steps, a signal, a
non-finite loss, a data error, a full disk, ...). SIGINT / SIGTERM stop at the next step
boundary with a checkpoint and the command that resumes.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from dir_net.config import Config, save_config
from dir_net.engine import checkpoint as ckpt_lib
from dir_net.engine import distributed, groundtruth, inference, logs, optim, runtime
from dir_net.engine.distributed import DistInfo, ResumableSampler, SeededDataset
from dir_net.errors import CheckpointError, ConfigError, DataError, DirNetError
from dir_net.utils.io import DiskFullError, write_json

ModelFactory = Callable[[Config], nn.Module]
DatasetFactory = Callable[[Config, str, bool], Dataset]

log = logging.getLogger(__name__)


class NonFiniteLossError(DirNetError):
    """Training diverged: a loss term became NaN or inf."""


def run_dir_of(cfg: Config) -> Path:
    return Path(cfg.experiment.output_dir) / cfg.experiment.name


@dataclass
class TrainState:
    """Where training stands: epoch in progress, micro-batches of it consumed, optimiser steps."""

    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0
    best: dict[str, Any] | None = None  # {"metric", "value", "step", "epoch"}


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    epoch: int
    last_checkpoint: Path | None  # None on ranks other than 0 (only rank 0 writes)
    best_checkpoint: Path | None
    val_history: list[dict[str, Any]] = field(default_factory=list)
    is_main: bool = True
    stopped_by: str | None = None  # "SIGINT" / "SIGTERM" when a signal stopped the run


def _default_model_factory(cfg: Config) -> nn.Module:
    from dir_net.models import build_model

    return build_model(cfg)


def _default_dataset_factory(cfg: Config, split: str, train: bool) -> Dataset:
    from dir_net.data import build_dataset

    return build_dataset(cfg, split, train)


# The sample pipeline each model trains on (its batch keys); `data.pipeline` is set from it.
MODEL_PIPELINES = {"dir": "dir", "internet": "internet", "simple_baseline2d": "hand2d"}
HIGHER_IS_BETTER = ("pck", "auc", "handedness_acc", "ap_h")


def apply_model_pipeline(cfg: Config) -> Config:
    """A copy of `cfg` whose `data.pipeline` is the one `model.name` needs."""
    wanted = MODEL_PIPELINES.get(cfg.model.name)
    if wanted is None or cfg.data.get("pipeline") in (None, wanted):
        return cfg
    log.info("data.pipeline set to %r for model %r (was %r)", wanted, cfg.model.name, cfg.data.pipeline)
    cfg = copy.deepcopy(cfg)
    cfg.data["pipeline"] = wanted
    return cfg


def parse_best_metric(cfg: Config) -> tuple[str, str, str]:
    """`train.best_metric` / `train.best_mode` -> (protocol, metric, "min" | "max").

    auto: the first evaluation protocol's mpjpe (3D) or pck (2D keypoints); mode auto: max for
    rates and areas (HIGHER_IS_BETTER), min for errors.
    """
    from eval import METRIC_NAMES
    from eval.keypoints2d import KEYPOINT_METRICS

    protocols = inference.protocols_for(cfg)
    keypoints2d = inference.is_keypoints2d(protocols)
    spec = cfg.train.best_metric
    if spec == "auto":
        protocol, metric = protocols[0], "pck" if keypoints2d else "mpjpe"
    else:
        protocol, _, metric = str(spec).partition("/")
        names = KEYPOINT_METRICS if keypoints2d else METRIC_NAMES
        if protocol not in protocols or metric not in names:
            raise ConfigError(
                f"key 'train.best_metric' is {spec!r}; expected 'protocol/metric' with protocol in "
                f"{protocols} and metric in {list(names)}"
            )
    mode = cfg.train.best_mode
    if mode == "auto":
        mode = "max" if metric in HIGHER_IS_BETTER else "min"
    return protocol, metric, mode


def check_train_config(cfg: Config) -> Config:
    """Every check a training run makes on its config before work starts; returns the config
    with `data.pipeline` set from `model.name`."""
    runtime.check_engine_config(cfg)
    cfg = apply_model_pipeline(cfg)
    if cfg.train.val_every:
        parse_best_metric(cfg)
        groundtruth.check_ground_truth(cfg, inference.protocols_for(cfg))
    return cfg


class Trainer:
    """Builds everything from a config, then `fit()` trains (one process of a torchrun job).

    Data and model are built before the run directory is created, so a bad config, dataset or
    checkpoint leaves nothing behind. `resume`: None (fresh run; refuses a run directory that
    already holds checkpoints), "auto" (newest loadable checkpoint of the run directory, or a
    fresh start if there is none) or a checkpoint path. `resume_command` is the command line
    printed when a signal stops the run.
    """

    def __init__(self, cfg: Config, resume: str | None = None,
                 model_factory: ModelFactory | None = None,
                 dataset_factory: DatasetFactory | None = None,
                 resume_command: str | None = None) -> None:
        self._setup_log = logs.SetupLog()  # records before train.log exists (drop counts, ...)
        self._lock: runtime.RunLock | None = None
        self._file_log = None
        self.resume_command = resume_command or "dirnet train --config CONFIG [key=value ...] --resume"
        try:
            self._build(cfg, resume, model_factory, dataset_factory)
        except BaseException:
            self._setup_log.detach()
            if self._file_log is not None:
                logs.detach_file_log(self._file_log)
            if self._lock is not None:
                self._lock.release(remove_empty_dir=True)
            raise

    def _build(self, cfg: Config, resume: str | None, model_factory: ModelFactory | None,
               dataset_factory: DatasetFactory | None) -> None:
        cfg = check_train_config(cfg)
        self.cfg = cfg
        self.tcfg = cfg.train
        self.best_key = parse_best_metric(cfg) if self.tcfg.val_every else None
        self.info: DistInfo = distributed.init_distributed(self.tcfg.device)
        if not self.info.is_main:  # one copy of the progress log (rank 0's); warnings from all
            logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))
        runtime.seed_everything(cfg.experiment.seed, self.info.rank)
        runtime.set_deterministic(cfg.experiment.deterministic)
        self.precision = runtime.resolve_precision(self.tcfg.precision, self.info.device)
        self.run_dir = run_dir_of(cfg)
        self.checkpoints = ckpt_lib.CheckpointDir(self.run_dir / "checkpoints", self.tcfg.keep_last)

        dataset_factory = dataset_factory or _default_dataset_factory
        self.train_set = dataset_factory(cfg, "train", True)
        self.val_set = dataset_factory(cfg, self.tcfg.val_split, False) if self.tcfg.val_every else None
        self.sampler, self.loader = self._train_loader()
        self.steps_per_epoch = len(self.loader) // self.tcfg.grad_accum
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"the train split has {self.sampler.num_samples} samples per process, too few for one "
                f"optimiser step of train.batch_size={self.tcfg.batch_size} x train.grad_accum="
                f"{self.tcfg.grad_accum}; lower them or use more data"
            )

        self.model = (model_factory or _default_model_factory)(cfg).to(self.info.device)
        if self.tcfg.channels_last and self.info.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.tcfg.sync_bn and self.info.distributed and self.info.device.type == "cuda":
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.optimizer = optim.build_optimizer(self.tcfg, self.model)
        self.scheduler = optim.build_scheduler(self.tcfg, self.optimizer, self.steps_per_epoch)
        self.scaler = runtime.make_grad_scaler(self.info.device, self.precision)
        self.state = TrainState()
        self.val_history: list[dict[str, Any]] = []
        self.last_checkpoint: Path | None = None
        self._saved_step = -1  # step of the last checkpoint this process wrote
        self._first_step_done = False  # the first step of this process logs its progress
        self._signals: runtime.StopSignals | None = None
        self.stopped_by: str | None = None
        self._step_lr = 0.0
        self._val_loader: DataLoader | None = None
        self._window: _LogWindow | None = None  # loss sums since the last log line
        self._resume(resume)
        self.train_model = self._wrap(self.model)

        self._file_log = self._prepare_run_dir()
        self.tb = logs.TensorBoard(self.run_dir / "tb" if self.info.is_main else None,
                                   purge_step=self.state.step + 1 if self.state.step else None)
        self._preview = None
        if self.info.is_main and self.tcfg.image_every:
            from dir_net.engine.preview import PreviewMaker

            self._preview = PreviewMaker(inference.model_faces(self.model))

    # --- setup ----------------------------------------------------------------------------------

    def _train_loader(self) -> tuple[ResumableSampler, DataLoader]:
        sampler = ResumableSampler(self.train_set, num_replicas=self.info.world_size, rank=self.info.rank,
                                   shuffle=True, seed=self.cfg.experiment.seed)
        generator = torch.Generator().manual_seed(self.cfg.experiment.seed)  # keeps the global RNG untouched
        loader = DataLoader(
            SeededDataset(self.train_set), batch_size=self.tcfg.batch_size, sampler=sampler,
            pin_memory=self.info.device.type == "cuda", drop_last=True, generator=generator,
            **inference.worker_options(self.tcfg.num_workers, persistent=True),
        )
        return sampler, loader

    def _wrap(self, model: nn.Module) -> nn.Module:
        wrapped = model
        if self.info.distributed:
            device_ids = [self.info.device.index] if self.info.device.type == "cuda" else None
            wrapped = DistributedDataParallel(model, device_ids=device_ids,
                                              find_unused_parameters=self.tcfg.find_unused_parameters)
        if self.tcfg.compile:
            wrapped = torch.compile(wrapped)
        return wrapped

    def _prepare_run_dir(self):
        self._setup_log.detach()
        if not self.info.is_main:
            return None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.cfg, self.run_dir / "config.yaml")
        handler = logs.attach_file_log(self.run_dir / "train.log")
        self._setup_log.replay_into(handler)
        log.info("run directory %s (%d process(es), device %s, precision %s)", self.run_dir,
                 self.info.world_size, self.info.device, self.precision)
        log.info("%d train samples, %d optimiser steps per epoch, %d epochs",
                 len(self.train_set), self.steps_per_epoch, self.tcfg.epochs)
        stale = self.checkpoints.remove_stale_temps()
        if stale:
            log.info("removed %s in %s (left by a checkpoint save that was interrupted)", ", ".join(stale),
                     self.checkpoints.directory)
        if self.last_checkpoint is not None:
            log.info("resumed from %s at epoch %d, step %d", self.last_checkpoint,
                     self.state.epoch + 1, self.state.step)
            self._start_lineage()
        return handler

    def _start_lineage(self) -> None:
        """After a resume from a checkpoint older than the run directory's newest one, move the
        later ones aside so that pruning and a later `--resume` follow this run, not those."""
        moved = self.checkpoints.set_aside_after(self.state.step)
        if moved is not None:
            folder, names = moved
            log.warning("resumed from step %d, older than the newest checkpoint here: a new lineage starts; "
                        "the later checkpoints (%s) moved to %s", self.state.step, ", ".join(names), folder)

    # --- checkpoints ----------------------------------------------------------------------------

    def _resume(self, resume: str | None) -> None:
        """Rank 0 takes the run directory's lock and picks the checkpoint (or the error); every
        rank then loads that file."""
        decision, ckpt = None, None
        if self.info.is_main:
            try:
                self._lock = runtime.RunLock.acquire(self.run_dir)
                decision, ckpt = self._choose_checkpoint(resume)
            except runtime.RunDirInUse as exc:
                decision = {"error": str(exc)}
        decision = distributed.broadcast_object(decision, self.info)
        if isinstance(decision, dict):  # an error found on rank 0
            error = CheckpointError if decision.get("checkpoint") else DirNetError
            raise error(decision["error"])
        if decision is None:
            return
        path = Path(decision)
        if ckpt is None:
            ckpt = ckpt_lib.read_checkpoint(path, map_location="cpu")
            ckpt_lib.check_resumable(path, ckpt, self.model)
        self._load_state(path, ckpt)

    def _choose_checkpoint(self, resume: str | None) -> tuple[str | dict | None, dict | None]:
        """Rank 0: (checkpoint path, its contents) to resume from, (None, None) for a fresh run,
        or ({"error": message}, None)."""
        existing = self.checkpoints.step_files()
        if resume is None:
            if existing:
                return {"error": f"{self.run_dir} already has checkpoints ({existing[0].name}, ...); "
                                 "pass --resume to continue it or set another experiment.name"}, None
            return None, None
        if resume != "auto":
            try:
                ckpt = ckpt_lib.read_checkpoint(resume)
                ckpt_lib.check_resumable(resume, ckpt, self.model)
            except CheckpointError as exc:
                return {"error": str(exc), "checkpoint": True}, None
            return str(resume), ckpt
        found = self.checkpoints.latest_resumable(self.model)
        if found is None:
            if existing:
                names = [p.name for p in existing]
                return {"error": f"{self.checkpoints.directory}: no loadable checkpoint among {names} (see the "
                                 "warnings above); delete them or set another experiment.name",
                        "checkpoint": True}, None
            log.info("no checkpoint in %s; starting a fresh run", self.checkpoints.directory)
            return None, None
        return str(found[0]), found[1]

    def _load_state(self, path: Path, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not fit this model/optimizer ({exc})") from None
        # position only: the schedule itself (epochs, warm-up, ...) comes from the current config
        scheduler_state = dict(ckpt["scheduler"], lr_lambdas=[None] * len(self.optimizer.param_groups))
        self.scheduler.load_state_dict(scheduler_state)
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        saved_world = len(ckpt["rng"])
        if saved_world != self.info.world_size:
            log.warning("%s was written by %d process(es), this run has %d: the data order after "
                        "resuming differs from an uninterrupted run", path, saved_world, self.info.world_size)
        saved_train = ckpt.get("config", {}).get("train", {})
        for key in ("batch_size", "grad_accum"):
            if saved_train.get(key, self.tcfg[key]) != self.tcfg[key]:
                log.warning("%s: train.%s was %s, now %s: the rest of the epoch is resumed at a shifted "
                            "sample position", path, key, saved_train[key], self.tcfg[key])
        ckpt_lib.restore_rng_state(ckpt["rng"][min(self.info.rank, saved_world - 1)])
        self.state = TrainState(epoch=int(ckpt["epoch"]), batch_in_epoch=int(ckpt["batch_in_epoch"]),
                                step=int(ckpt["step"]), best=ckpt.get("best"))
        self.val_history = list(ckpt.get("val_history", []))
        self.last_checkpoint = path

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current state (collective: every rank must call it).

        Refuses (NonFiniteLossError) when a loss since the last log line was not finite, so the
        last checkpoint on disk stays a good one.
        """
        window = self._window
        if window is not None and window.count:
            self._check_finite(dict(zip(window.names, distributed.mean_over_ranks(window.mean_losses(),
                                                                                  self.info).tolist())))
        rng = distributed.all_gather_objects(ckpt_lib.capture_rng_state(), self.info)
        if not self.info.is_main:
            return None
        payload = {
            "format": ckpt_lib.FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng": rng,
            "epoch": self.state.epoch,
            "batch_in_epoch": self.state.batch_in_epoch,
            "step": self.state.step,
            "best": self.state.best,
            "val_history": self.val_history,
            "config": self.cfg.to_dict(),
        }
        self.last_checkpoint = self.checkpoints.save(payload, self.state.step)
        self._saved_step = self.state.step
        log.info("saved %s", self.last_checkpoint)
        return self.last_checkpoint

    # --- training -------------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train until `train.epochs` (or `train.max_steps`, or SIGINT / SIGTERM); returns where
        things were written. train.log's last line says why the run ended."""
        ended, failed = "crashed", True
        try:
            with runtime.StopSignals() as self._signals:
                if self.state.epoch >= self.tcfg.epochs:
                    log.info("nothing to do: already trained for %d epochs", self.tcfg.epochs)
                while self.state.epoch < self.tcfg.epochs:
                    if not self._train_epoch():
                        break
                    self._end_epoch()
            ended, failed = self._end_summary(), False
        except BaseException as exc:
            ended = self._failure_summary(exc)
            raise
        finally:
            log.log(logging.WARNING if failed else logging.INFO, "run ended: %s", ended)
            self.close()
        best = self.checkpoints.directory / ckpt_lib.BEST_NAME
        return TrainResult(self.run_dir, self.state.step, self.state.epoch, self.last_checkpoint,
                           best if best.is_file() else None, list(self.val_history), self.info.is_main,
                           self.stopped_by)

    def _end_summary(self) -> str:
        step = self.state.step
        if self.stopped_by is not None:
            return (f"stopped by {self.stopped_by} at step {step}; saved {self.last_checkpoint}; "
                    f"resume with: {self.resume_command}")
        if self.state.epoch < self.tcfg.epochs:
            return f"reached train.max_steps at step {step} (epoch {self.state.epoch + 1})"
        return f"finished at step {step} (epoch {self.state.epoch}/{self.tcfg.epochs})"

    def _failure_summary(self, exc: BaseException) -> str:
        """'run ended: ...' text for an exception that stopped training."""
        step = self.state.step
        kinds = ((NonFiniteLossError, "non-finite loss"), (DataError, "data error"), (DiskFullError, "disk full"),
                 (ConfigError, "config error"), (DirNetError, "error"))
        for kind, label in kinds:
            if isinstance(exc, kind):
                return f"{label} at step {step}: {exc}"
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            return f"interrupted at once (a second signal) at step {step}, without saving"
        return f"crashed at step {step}: {type(exc).__name__}: {exc}"

    def close(self) -> None:
        """Flush logs, stop loader workers and release the run directory; the trainer cannot
        train afterwards (calling it again does nothing)."""
        self.loader = self._val_loader = None  # drops the persistent worker processes
        self.tb.close()
        if self._preview is not None:
            self._preview.close()
            self._preview = None
        if self._file_log is not None:
            logs.detach_file_log(self._file_log)
            self._file_log = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _stop_requested(self) -> bool:
        """True on every rank once any rank got SIGINT / SIGTERM (agreed, so all stop together)."""
        received = self._signals is not None and self._signals.received is not None
        return distributed.any_rank(received, self.info)

    def _stop_on_signal(self) -> None:
        """Checkpoint the step just finished (unless it was saved already) and note the signal."""
        if self._saved_step != self.state.step:
            self.save_checkpoint()
        name = self._signals.name if self._signals is not None else None
        self.stopped_by = name or "a signal on another rank"

    def _reached_max_steps(self) -> bool:
        return self.tcfg.max_steps is not None and self.state.step >= self.tcfg.max_steps

    def _train_epoch(self) -> bool:
        """Run the rest of the current epoch; False when stopped early by train.max_steps."""
        accum, batch_size = self.tcfg.grad_accum, self.tcfg.batch_size
        epoch = self.state.epoch
        total_micro = self.steps_per_epoch * accum
        self.sampler.set_position(epoch, self.state.batch_in_epoch * batch_size)
        self.train_model.train()
        window = self._window = _LogWindow(time.perf_counter(), self.state.step)
        bar = logs.progress_bar(self.steps_per_epoch, self.state.batch_in_epoch // accum,
                                f"epoch {epoch + 1}/{self.tcfg.epochs}",
                                self.tcfg.progress_bar and self.info.is_main)
        with runtime.sigint_held():  # workers start (first epoch) with Ctrl-C held back
            batches = iter(self.loader)
        try:
            while self.state.batch_in_epoch < total_micro:
                if self._reached_max_steps():
                    self.save_checkpoint()
                    log.info("stopped at step %d (train.max_steps)", self.state.step)
                    return False
                output, batch, grad_norm = self._optimizer_step(batches, window)
                bar.update(1)
                self._after_step(window, output, batch, grad_norm, bar)
                if self._stop_requested():
                    self._stop_on_signal()
                    return False
        finally:
            bar.close()
        return True

    def _optimizer_step(self, batches, window: "_LogWindow") -> tuple[Any, dict, float | None]:
        """Accumulate `grad_accum` micro-batches, then one optimiser and scheduler step."""
        accum = self.tcfg.grad_accum
        first = self.info.is_main and not self._first_step_done  # a slow start never looks dead
        started = time.perf_counter()
        if first:
            log.info("first step: loading the first batch (%d loader worker(s) starting)", self.tcfg.num_workers)
        for micro in range(accum):
            batch = inference.to_device(self._next_batch(batches), self.info.device, self.tcfg.channels_last)
            if first and micro == 0:
                log.info("first step: batch loaded in %.1f s; forward and backward of %d images",
                         time.perf_counter() - started, len(batch["image"]))
            sync = micro == accum - 1
            no_sync = getattr(self.train_model, "no_sync", None)
            with (no_sync() if no_sync is not None and not sync else contextlib.nullcontext()):
                with runtime.autocast(self.info.device, self.precision):
                    output = self.train_model(batch["image"])
                    losses = self.model.losses(output, batch)
                self.scaler.scale(losses["total"] / accum).backward()
            window.add(losses, len(batch["image"]) * self.info.world_size)
            self.state.batch_in_epoch += 1
        grad_norm = None
        if self.tcfg.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tcfg.clip_grad_norm))
        try:
            self.scaler.step(self.optimizer)
        except RuntimeError as exc:
            if "cannot be converted to type" not in str(exc):
                raise
            raise optim.overflow_error(self.tcfg) from None
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self._step_lr = self.optimizer.param_groups[0]["lr"]  # the LR this step used
        self.scheduler.step()
        self.state.step += 1
        if first:
            from dir_net.engine.preflight import peak_memory_gb

            self._first_step_done = True
            log.info("first step done in %.1f s; peak memory %.1f GB", time.perf_counter() - started,
                     peak_memory_gb(self.info.device))
        return output, batch, grad_norm

    @staticmethod
    def _next_batch(batches) -> dict:
        """The next batch; a DirNetError from a loader worker keeps its one-line message."""
        try:
            return next(batches)
        except DirNetError as exc:
            raise runtime.unwrap_worker_error(exc) from None

    def _after_step(self, window: "_LogWindow", output: Any, batch: dict, grad_norm: float | None, bar) -> None:
        step = self.state.step
        if self.tcfg.log_every and step % self.tcfg.log_every == 0:
            values = self._log_scalars(window, grad_norm)
            bar.set_postfix(loss=f"{values['train/total']:.4g}", lr=f"{values['train/lr']:.2e}")
            window.reset(time.perf_counter(), step)
        if self._preview is not None and step % self.tcfg.image_every == 0:
            with torch.no_grad():
                pred = self.model.predict(output, batch)
            self.tb.images("train/prediction", step, self._preview(batch, pred))
        if self.tcfg.checkpoint_steps and step % self.tcfg.checkpoint_steps == 0:
            self.save_checkpoint()

    def _log_scalars(self, window: "_LogWindow", grad_norm: float | None) -> dict[str, float]:
        means = distributed.mean_over_ranks(window.mean_losses(), self.info).tolist()
        self._check_finite(dict(zip(window.names, means)))
        values = {f"train/{name}": v for name, v in zip(window.names, means)}
        elapsed = time.perf_counter() - window.start
        values["train/lr"] = self._step_lr
        values["train/throughput_img_s"] = window.images / max(elapsed, 1e-9)
        if grad_norm is not None:
            values["train/grad_norm"] = grad_norm
        if self.info.device.type == "cuda":
            values["train/gpu_mem_gb"] = torch.cuda.max_memory_allocated(self.info.device) / 2**30
            torch.cuda.reset_peak_memory_stats(self.info.device)
        if self.info.is_main:
            self.tb.scalars(self.state.step, values)
            steps_left = self.steps_per_epoch * self.tcfg.epochs - self.state.step
            eta = elapsed / max(self.state.step - window.first_step, 1) * steps_left
            # per-stage terms ("joints_3d/s0") are in TensorBoard; the log line keeps the totals
            # (+ 0.0 prints a negative zero, e.g. an empty masked loss, as 0)
            terms = " ".join(f"{name}={values['train/' + name] + 0.0:.5g}" for name in window.names if "/" not in name)
            log.info("epoch %d step %d/%d %s lr=%.3e %.1f img/s eta %s", self.state.epoch + 1,
                     self.state.step, self.steps_per_epoch * self.tcfg.epochs, terms, values["train/lr"],
                     values["train/throughput_img_s"], logs.format_duration(eta))
        return values

    def _check_finite(self, losses: dict[str, float]) -> None:
        """NonFiniteLossError naming the step and the non-finite terms (mean losses over ranks)."""
        bad = {name: value for name, value in losses.items() if not math.isfinite(value)}
        if not bad:
            return
        kept = (f"the last checkpoint, {self.last_checkpoint}, was written before and is intact"
                if self.last_checkpoint is not None else "no checkpoint of this run was written")
        terms = ", ".join(f"{name}={value}" for name, value in bad.items())
        raise NonFiniteLossError(
            f"step {self.state.step}: non-finite loss ({terms}); {kept}. Lower train.optimizer.lr "
            f"(now {self.tcfg.optimizer.lr:g}) or set train.clip_grad_norm, and check the data with "
            f"`dirnet data verify --config CFG --split train`"
        )

    def _end_epoch(self) -> None:
        epoch = self.state.epoch + 1  # epochs completed
        last = epoch == self.tcfg.epochs
        self.state.epoch, self.state.batch_in_epoch = epoch, 0
        improved = False
        if self.val_set is not None and (epoch % self.tcfg.val_every == 0 or last):
            improved = self._validate_and_track(epoch)
        every = self.tcfg.checkpoint_every
        if last or improved or (every and epoch % every == 0):
            path = self.save_checkpoint()
            if improved and path is not None:
                self.checkpoints.save_best(path)
                log.info("new best %s = %.4f (epoch %d)", self.state.best["metric"], self.state.best["value"], epoch)

    # --- validation -----------------------------------------------------------------------------

    def validate(self) -> dict[str, dict[str, float]]:
        """Metrics of the current model on the validation split, on every rank."""
        distributed.broadcast_buffers(self.model, self.info)
        if self._val_loader is None:
            self._val_loader = inference.make_eval_loader(self.val_set, self.cfg.evaluation.batch_size,
                                                          self.tcfg.num_workers, self.info, persistent=True)
        loader = self._val_loader
        protocols = inference.protocols_for(self.cfg)
        evaluator = inference.evaluator_for(self.cfg, self.tcfg.val_split, protocols)
        families = list(evaluator.groups)
        keypoints2d = groundtruth.HAND2D in families
        faces = inference.model_faces(self.model) if self.cfg.evaluation.iv and not keypoints2d else None
        rows = inference.iterate_rows(self.model, loader, self.info, families, self.precision,
                                      self.tcfg.channels_last)
        try:
            for pred_rows, gt_rows in rows:
                if faces is not None:
                    pred_rows["faces"] = faces.cpu().numpy()
                evaluator.update(pred_rows, gt_rows, "validation predictions", f"{self.tcfg.val_split} split")
        except DirNetError as exc:
            raise runtime.unwrap_worker_error(exc) from None
        results = evaluator.compute() if self.info.is_main else None
        return distributed.broadcast_object(results, self.info)

    def _validate_and_track(self, epoch: int) -> bool:
        """Validate, log, record history; True when the tracked metric improved."""
        results = self.validate()
        self.val_history.append({"epoch": epoch, "step": self.state.step, "metrics": results})
        protocol, metric, mode = self.best_key
        if self.info.is_main:
            flat = {f"val/{p}/{m}": v for p, ms in results.items() for m, v in ms.items()}
            self.tb.scalars(self.state.step, flat)
            self.tb.flush()
            log.info("validation after epoch %d: %s", epoch,
                     ", ".join(f"{k[4:]}={v:.4g}" for k, v in flat.items()))
            write_json(self.run_dir / "val_metrics.json", self.val_history)
        value = results.get(protocol, {}).get(metric)
        if value is None:
            log.warning("validation produced no %s/%s; best.pt is not updated", protocol, metric)
            return False
        best = self.state.best
        better = best is None or (value < best["value"] if mode == "min" else value > best["value"])
        if better:
            self.state.best = {"metric": f"{protocol}/{metric}", "value": value, "step": self.state.step,
                               "epoch": epoch}
        return better


class _LogWindow:
    """Loss sums and image counts since the last log line."""

    def __init__(self, start: float, first_step: int) -> None:
        self.names: list[str] = []
        self.reset(start, first_step)

    def reset(self, start: float, first_step: int) -> None:
        self.start, self.first_step = start, first_step
        self.sums: torch.Tensor | None = None
        self.count = 0
        self.images = 0

    def add(self, losses: dict[str, torch.Tensor], images: int) -> None:
        if not self.names:
            self.names = list(losses)
        values = torch.stack([losses[k].detach().float() for k in self.names])
        self.sums = values if self.sums is None else self.sums + values
        self.count += 1
        self.images += images

    def mean_losses(self) -> torch.Tensor:
        return self.sums / max(self.count, 1)

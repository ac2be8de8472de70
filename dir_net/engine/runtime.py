"""Run-wide settings and process safety: engine config checks, seeding, determinism, mixed
precision, the run-directory lock, stop-on-signal, and loader workers that die with the trainer
and send their warnings to its log."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import functools
import logging
import logging.handlers
import math
import multiprocessing
import os
import random
import signal
import socket
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Callable, ContextManager, Iterator

import numpy as np
import torch

from dir_net.config import Config
from dir_net.errors import ConfigError, DirNetError

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
    for key in ("train.optimizer.lr", "train.optimizer.weight_decay"):
        if not math.isfinite(cfg.get_path(key)):
            raise ConfigError(f"key '{key}' must be a finite number, got {cfg.get_path(key)!r}")
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


# --- the run-directory lock ------------------------------------------------------------------

class RunDirInUse(DirNetError):
    """Another live process holds the run directory's lock."""


class RunLock:
    """One writer per run directory: an exclusive flock on `{run}/.lock`, whose text names the
    holder ("pid P host H since T"). The kernel drops the lock when its holder dies, so a run
    killed with -9 leaves only text behind, which the next run replaces (logging the stale
    holder). A lock still held in the name of a pid that is dead on this host (a child that
    outlived the run kept the file open) is broken by replacing the file.
    """

    NAME = ".lock"

    def __init__(self, path: Path, handle: Any, created_dir: bool) -> None:
        self.path, self._handle, self._created_dir = path, handle, created_dir

    @classmethod
    def acquire(cls, run_dir: Path) -> "RunLock":
        """Take the lock (creating `run_dir`), or raise RunDirInUse naming the holder."""
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / cls.NAME
        for _ in range(3):
            handle = open(path, "a+", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(handle)
                handle.close()
                if holder is not None and _is_dead_here(*holder):
                    log.warning("%s: breaking the stale lock of pid %d (no longer running on %s)", path, *holder)
                    path.unlink(missing_ok=True)
                    continue
                raise RunDirInUse(_in_use_message(run_dir, path, holder)) from None
            if not _same_file(handle, path):  # replaced while we waited: lock the new file
                handle.close()
                continue
            previous = _read_holder(handle)
            if previous is not None and previous != (os.getpid(), socket.gethostname()):
                log.warning("%s: recovered the stale lock of pid %d on %s (that run ended without "
                            "releasing it)", path, *previous)
            handle.seek(0)
            handle.truncate()
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
            handle.write(f"pid {os.getpid()} host {socket.gethostname()} since {stamp}\n")
            handle.flush()
            return cls(path, handle, created)
        raise RunDirInUse(_in_use_message(run_dir, path, None))

    def release(self, remove_empty_dir: bool = False) -> None:
        """Unlock (the file stays, empty). `remove_empty_dir`: undo a directory this lock
        created when nothing else was written to it (a run that failed while starting)."""
        if self._handle is None:
            return
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.close()  # closing drops the flock
        self._handle = None
        run_dir = self.path.parent
        if remove_empty_dir and self._created_dir and [p.name for p in run_dir.iterdir()] == [self.NAME]:
            self.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                run_dir.rmdir()


def _read_holder(handle: Any) -> tuple[int, str] | None:
    """(pid, host) written in a lock file, or None when empty or unparsable."""
    handle.seek(0)
    words = handle.read().split()
    if len(words) >= 4 and words[0] == "pid" and words[1].isdigit() and words[2] == "host":
        return int(words[1]), words[3]
    return None


def _is_dead_here(pid: int, host: str) -> bool:
    """True when `host` is this machine and no live (non-zombie) process has `pid`."""
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] in "ZX"


def _same_file(handle: Any, path: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _in_use_message(run_dir: Path, path: Path, holder: tuple[int, str] | None) -> str:
    who = f"pid {holder[0]} on host {holder[1]}" if holder else "another process"
    return (f"{run_dir} is in use by {who} (lock {path}); wait for that run to end or stop it, "
            "or set another experiment.name")


# --- stopping on SIGINT / SIGTERM ------------------------------------------------------------

class StopSignals:
    """While active (main thread only), SIGINT and SIGTERM ask the trainer to stop at the next
    step boundary instead of killing it: `received` holds the first signal's number. A second
    signal stops at once (KeyboardInterrupt for SIGINT, exit status 128 + signal otherwise)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def name(self) -> str | None:
        return signal.Signals(self.received).name if self.received is not None else None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)


# --- loader workers --------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1  # linux/prctl.h
_log_queue: Any = None
_log_queue_pid = -1


def worker_process_options(init_fn: Callable[[int], None]) -> dict[str, Any]:
    """DataLoader options that start workers with `spawn` (a fresh interpreter and a direct child
    of this process: no fork of a process holding threads, no forkserver left behind) and run
    `init_fn(worker_id)` after guarding the worker: it dies with this process (even on kill -9),
    ignores Ctrl-C (the trainer stops it), and sends its warnings to this process's log."""
    return {
        "multiprocessing_context": "spawn",
        "worker_init_fn": functools.partial(_guarded_worker_init, os.getpid(), _worker_log_queue(), init_fn),
    }


def unwrap_worker_error(exc: DirNetError) -> DirNetError:
    """A DirNetError raised in a loader worker reaches the trainer wrapped by torch ("Caught
    DataError in DataLoader worker process 0. Original Traceback ..."): the same error type
    with the original one-line message, or `exc` itself when it was not wrapped."""
    text = str(exc)
    if not (text.startswith("Caught ") and "Original Traceback" in text):
        return exc
    last = [line for line in text.splitlines() if line.strip()][-1]
    prefix = f"{type(exc).__name__}: "
    message = last[last.index(prefix) + len(prefix):] if prefix in last else last
    try:
        return type(exc)(message)
    except TypeError:  # an error type with another constructor
        return DirNetError(message)


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """Hold SIGINT back while loader workers start: they inherit the blocked mask, so a Ctrl-C
    while they import cannot end them with a traceback (their init ignores SIGINT, then unblocks
    it); this process gets a held signal when the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _guarded_worker_init(parent_pid: int, log_queue: Any, init_fn: Callable[[int], None], worker_id: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _exit_with_parent(parent_pid)
    _send_logs_to(log_queue, worker_id)
    init_fn(worker_id)


def _exit_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when the trainer dies (Linux, when the trainer is the
    direct parent), else watch the trainer's pid from a thread (other start methods, no prctl)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        armed = False
    if armed and os.getppid() == parent_pid:  # checked after arming: the parent was alive then
        return
    threading.Thread(target=_watch_process, args=(parent_pid,), daemon=True, name="trainer-watch").start()


def _watch_process(pid: int, interval_s: float = 1.0) -> None:
    """Exit this process once `pid` is gone."""
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass
        time.sleep(interval_s)


class _ToQueue(logging.handlers.QueueHandler):
    """Puts formatted records, prefixed with the worker, on a SimpleQueue."""

    def __init__(self, queue: Any, worker_id: int) -> None:
        super().__init__(queue)
        self.worker_id = worker_id

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = super().prepare(record)
        record.msg = f"loader worker {self.worker_id}: {record.msg}"
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put(record)


def _send_logs_to(log_queue: Any, worker_id: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_ToQueue(log_queue, worker_id))
    root.setLevel(logging.WARNING)


def _worker_log_queue() -> Any:
    """This process's queue of worker log records, with a thread that logs them here."""
    global _log_queue, _log_queue_pid
    if _log_queue is None or _log_queue_pid != os.getpid():
        _log_queue = multiprocessing.get_context("spawn").SimpleQueue()
        _log_queue_pid = os.getpid()
        threading.Thread(target=_relay_logs, args=(_log_queue,), daemon=True, name="worker-logs").start()
    return _log_queue


def _relay_logs(log_queue: Any) -> None:
    while True:
        try:
            record = log_queue.get()
        except (EOFError, OSError):
            return
        logging.getLogger(record.name).handle(record)

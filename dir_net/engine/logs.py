"""Run logging on rank 0: a plain log file, TensorBoard scalars and images, a progress bar."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Mapping

import numpy as np

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _FileLog(logging.FileHandler):
    previous_root_level = logging.WARNING


def attach_file_log(path: Path) -> logging.Handler:
    """Copy every log record of this process (INFO and up) to `path` (appending).

    The root logger is lowered to INFO while attached (so INFO records reach the file) and
    restored by `detach_file_log`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = _FileLog(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    handler.previous_root_level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


def detach_file_log(handler: logging.Handler) -> None:
    root = logging.getLogger()
    root.removeHandler(handler)
    if isinstance(handler, _FileLog):
        root.setLevel(handler.previous_root_level)
    handler.close()


class SetupLog(logging.Handler):
    """Keeps this process's INFO-and-up records from before train.log exists (dataset sizes, the
    subset filters' drop counts, ...) so that `replay_into` can write them there."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        root = logging.getLogger()
        self._previous_root_level = root.level
        root.addHandler(self)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def detach(self) -> None:
        """Stop collecting and restore the root level (idempotent)."""
        root = logging.getLogger()
        if self in root.handlers:
            root.removeHandler(self)
            root.setLevel(self._previous_root_level)

    def replay_into(self, handler: logging.Handler) -> None:
        self.detach()
        for record in self.records:
            if record.levelno >= handler.level:
                handler.handle(record)
        self.records = []


class TensorBoard:
    """SummaryWriter on rank 0; every method is a no-op elsewhere (or when disabled)."""

    def __init__(self, log_dir: Path | None, purge_step: int | None = None) -> None:
        self._writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        if self._writer is not None:
            for tag, value in values.items():
                self._writer.add_scalar(tag, value, step)

    def images(self, tag: str, step: int, images: np.ndarray) -> None:
        """images: (N, H, W, 3) uint8."""
        if self._writer is not None:
            self._writer.add_images(tag, images, step, dataformats="NHWC")

    def text(self, tag: str, step: int, text: str) -> None:
        if self._writer is not None:
            self._writer.add_text(tag, text, step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def progress_bar(total: int, initial: int, desc: str, enabled: bool):
    """A tqdm bar with ETA, shown only when enabled and stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                disable=not (enabled and sys.stderr.isatty()), leave=False)


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"

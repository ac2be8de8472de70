"""Checkpoints: atomic writes, validation with clear errors, keep-last-N, best copy, RNG states.

A checkpoint is a dict saved with torch.save (loadable with `weights_only=True`):
  format        "dir_net.checkpoint/1"
  model         state_dict of the bare model (no DDP / torch.compile prefixes)
  optimizer, scheduler, scaler   state_dicts
  rng           list with one entry per rank: python, numpy, torch (and cuda) generator states
  epoch         epoch in progress (0-based); batch_in_epoch: micro-batches of it already consumed
  step          optimiser steps done
  best          {"metric", "value", "step"} or None
  config        the resolved config (plain dict)
Files are named `step_{step:08d}.pt` in `{run}/checkpoints/`; `best.pt` is a copy of the best one.

Lineage: the step files of `checkpoints/` always belong to one line of training, so the highest
step is the newest write. A resume from a checkpoint older than the newest one there starts a
new line: the later files (and a best.pt written by them) move to `checkpoints/abandoned_*/`.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from dir_net.errors import CheckpointError, DirNetError
from dir_net.utils.io import DiskFullError, atomic_path, torch_save

FORMAT = "dir_net.checkpoint/1"
BEST_NAME = "best.pt"
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
_REQUIRED_FOR_RESUME = ("model", "optimizer", "scheduler", "rng", "epoch", "step", "batch_in_epoch")

log = logging.getLogger(__name__)


# --- RNG states ------------------------------------------------------------------------------

def capture_rng_state() -> dict[str, Any]:
    """This process's generator states as tensors / plain types (safe for weights_only loads)."""
    py_version, py_internal, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py_version, torch.tensor(py_internal, dtype=torch.int64), py_gauss],
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    py_version, py_internal, py_gauss = state["python"]
    random.setstate((py_version, tuple(int(x) for x in py_internal.tolist()), py_gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- reading and checking --------------------------------------------------------------------

def load_file(path: str | Path, map_location: str | torch.device = "cpu", hint: str = "",
              error: type[DirNetError] = CheckpointError) -> Any:
    """`torch.load(weights_only=True)` of any PyTorch file; a missing, truncated, corrupt or foreign
    (unsafe objects) file raises `error` in one line naming it; `hint` ends the truncation message."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: checkpoint file not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{path}: unreadable checkpoint, probably truncated or corrupt ({first_line}){hint}") from None
    except Exception as exc:  # unpickling errors of foreign / unsafe files
        raise error(f"{path}: not a plain PyTorch checkpoint ({type(exc).__name__}: {exc})") from None


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint file; a truncated, corrupt or foreign file raises CheckpointError."""
    ckpt = load_file(path, map_location, hint="; delete it or resume from an earlier one")
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a dir_net checkpoint (no 'model' state_dict inside)")
    return ckpt


def check_model_state(path: str | Path, model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Raise CheckpointError naming missing, unexpected and shape-mismatched keys, if any."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = [
        f"{label} {_few(keys)}"
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("shape mismatch", mismatched))
        if keys
    ]
    if problems:
        raise CheckpointError(f"{path}: checkpoint does not match the model: " + "; ".join(problems))


def load_model_weights(path: str | Path, model: nn.Module) -> dict[str, Any]:
    """Read `path`, check it against `model`, load the weights; returns the checkpoint dict."""
    ckpt = read_checkpoint(path)
    check_model_state(path, model, ckpt["model"])
    model.load_state_dict(ckpt["model"])
    return ckpt


def check_resumable(path: str | Path, ckpt: Mapping[str, Any], model: nn.Module) -> None:
    """Raise CheckpointError unless `ckpt` holds everything needed to continue training `model`."""
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {ckpt.get('format')!r}, expected {FORMAT!r}")
    absent = [k for k in _REQUIRED_FOR_RESUME if k not in ckpt]
    if absent:
        raise CheckpointError(f"{path}: cannot resume, checkpoint lacks {absent} (weights-only file?)")
    check_model_state(path, model, ckpt["model"])


def _saved_step(path: Path) -> int:
    """The `step` recorded in a checkpoint (read memory-mapped); -1 when unreadable."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("step", -1))
    except Exception:  # an unreadable best.pt belongs to no lineage; leave it where it is
        return -1


def _few(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}] ({len(items)})"


# --- the checkpoint directory ----------------------------------------------------------------

class CheckpointDir:
    """`{run}/checkpoints`: step files with a keep-last-N policy plus a best copy."""

    def __init__(self, directory: str | Path, keep_last: int) -> None:
        self.directory = Path(directory)
        self.keep_last = keep_last

    def step_files(self) -> list[Path]:
        """Step checkpoints, newest (highest step) first."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := _STEP_FILE.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def save(self, payload: dict[str, Any], step: int) -> Path:
        """Write `step_{step}.pt`; a full disk raises DiskFullError naming the directory and the
        previous checkpoint (kept; the partial temporary file is removed)."""
        path = self.directory / f"step_{step:08d}.pt"
        try:
            torch_save(path, payload)
        except DiskFullError:
            previous = self.step_files()
            kept = (f"the previous checkpoint {previous[0].name} is intact" if previous
                    else "no earlier checkpoint of this run exists")
            raise DiskFullError(f"no space left on {self.directory} while saving {path.name}; {kept}; free "
                                "space there (or lower train.keep_last) and resume with --resume") from None
        self._prune()
        return path

    def remove_stale_temps(self) -> list[str]:
        """Delete temporary files of saves that never finished (a kill during torch.save);
        call only while holding the run lock. Returns their names."""
        if not self.directory.is_dir():
            return []
        stale = sorted(p for pattern in (".step_*.tmp.pt", f".{Path(BEST_NAME).stem}.*.tmp.pt")
                       for p in self.directory.glob(pattern))
        for path in stale:
            path.unlink(missing_ok=True)
        return [p.name for p in stale]

    def set_aside_after(self, step: int) -> tuple[Path, list[str]] | None:
        """Move the step files above `step` (and a best.pt from one of them) into a new
        `abandoned_*` folder: training goes on from `step` as a new lineage. Returns (folder,
        names moved), or None when nothing is newer."""
        later = [p for p in self.step_files() if int(_STEP_FILE.match(p.name).group(1)) > step]
        if not later:
            return None
        best = self.directory / BEST_NAME
        if best.is_file() and _saved_step(best) > step:
            later.append(best)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        folder = self.directory / f"abandoned_after_step_{step:08d}_{stamp}"
        folder.mkdir()
        for path in later:
            path.rename(folder / path.name)
        return folder, sorted(p.name for p in later)

    def save_best(self, source: Path) -> Path:
        """Copy a saved step checkpoint to best.pt (atomically)."""
        best = self.directory / BEST_NAME
        with atomic_path(best) as tmp:
            shutil.copyfile(source, tmp)
        return best

    def _prune(self) -> None:
        if self.keep_last <= 0:
            return
        for old in self.step_files()[self.keep_last:]:
            old.unlink(missing_ok=True)

    def latest_resumable(self, model: nn.Module) -> tuple[Path, dict[str, Any]] | None:
        """The newest checkpoint that loads and fits `model`; skipped ones are logged with the reason."""
        for path in self.step_files():
            try:
                ckpt = read_checkpoint(path)
                check_resumable(path, ckpt, model)
            except CheckpointError as exc:
                log.warning("skipping checkpoint: %s", exc)
                continue
            return path, ckpt
        return None

"""torchrun for scripts/train.sh, with a failure reduced to what the user needs to read.

  python -m dir_net.engine.launch [torchrun options] -m dir_net train --config CFG [key=value ...]

Runs `torch.distributed.run` in this process. torchrun's own report of a failed worker (a log
line and a 30-line ChildFailedError traceback that hide the real message) is left out; instead:

- a worker that stopped on a user error (DirNetError: bad data, a checkpoint, a config value)
  wrote its one-line message to ERROR_DIR_ENV's folder (`report_to_launcher`): the launcher prints
  each distinct message once as `dirnet: error: ...` and exits 2;
- a worker killed by SIGKILL was, in practice, killed by the kernel's out-of-memory killer: the
  launcher says so, with the run's memory estimate and the keys that size it down, and exits 137;
- a worker that stopped on SIGINT / SIGTERM (it saved a checkpoint and printed how to resume), or
  Ctrl-C to the launcher: one line, exit 128 + the signal;
- any other failure: one line naming the rank and its exit code (the worker's traceback is
  above it) and exit 1.
Processes a dead worker left behind (DataLoader workers in its process group) are stopped, so the
shell does not wait on them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

ERROR_DIR_ENV = "DIRNET_ERROR_DIR"  # folder where workers leave error messages for the launcher
MEMORY_NOTE = "memory.txt"  # the run's memory estimate, written by local rank 0
OOM_EXIT = 128 + signal.SIGKILL


@contextlib.contextmanager
def report_to_launcher() -> Iterator[None]:
    """Under the launcher: a DirNetError (or a MANO model file error) becomes a message file and
    exit code 2 instead of a message on stderr. Elsewhere: nothing changes."""
    from dir_net.errors import DirNetError
    from mano.convert import ModelFileError

    folder = os.environ.get(ERROR_DIR_ENV)
    try:
        yield
    except (DirNetError, ModelFileError) as exc:
        if not folder or not Path(folder).is_dir():
            raise
        _write(Path(folder) / f"rank{os.environ.get('RANK', '0')}.txt", str(exc))
        raise SystemExit(2) from None


def note_memory(text: str) -> None:
    """Leave the run's memory estimate for the launcher's out-of-memory message."""
    folder = os.environ.get(ERROR_DIR_ENV)
    if folder and Path(folder).is_dir():
        _write(Path(folder) / MEMORY_NOTE, text)


def _write(path: Path, text: str) -> None:
    """One line (whitespace folded), written atomically: the launcher never reads half a message."""
    from dir_net.utils.io import write_text

    write_text(path, " ".join(text.split()))


class _DropFailureReport(logging.Filter):
    """torchrun's own lines about a failed worker (the launcher reports it instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith("failed (exitcode") or message.startswith("Sending process"))


def main(argv: Sequence[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.getLogger("torch.distributed.elastic.multiprocessing.api").addFilter(_DropFailureReport())
    with tempfile.TemporaryDirectory(prefix="dirnet_launch_") as folder:
        os.environ[ERROR_DIR_ENV] = folder  # the workers inherit it
        try:
            run(args)
        except ChildFailedError as exc:
            stop_leftovers(exc.failures)
            return report_failure(exc.failures, Path(folder))
        except SignalException as exc:  # Ctrl-C or SIGTERM here: torchrun passed it on to the workers
            return _stopped(signal.Signals(int(exc.sigval)))
    return 0


def report_failure(failures: Mapping[int, Any], folder: Path) -> int:
    """Print the one line (or one per distinct message) a failed job deserves; its exit code.
    failures: global rank -> torchrun ProcessFailure (exitcode < 0: killed by that signal)."""
    messages = [p.read_text().strip() for p in sorted(folder.glob("rank*.txt"))]
    if messages:
        for message in dict.fromkeys(m for m in messages if m):
            print(f"dirnet: error: {message}", file=sys.stderr)
        return 2
    killed = sorted(rank for rank, f in failures.items() if f.exitcode == -signal.SIGKILL)
    if killed:
        note = folder / MEMORY_NOTE
        estimate = f" This run needs {note.read_text().strip()}." if note.is_file() else ""
        print(f"dirnet: error: rank {killed[0]} was killed (SIGKILL): out of memory, most likely (the kernel's "
              f"OOM killer; `dmesg` shows it).{estimate} Lower train.batch_size, data.image_size or "
              "train.num_workers; the paper configs (configs/*_interhand*.yaml) are GPU configs", file=sys.stderr)
        return OOM_EXIT
    rank, failure = min(failures.items(), key=lambda item: item[1].timestamp)
    code = failure.exitcode
    if code - 128 in (signal.SIGINT, signal.SIGTERM):  # the trainer stopped on a signal, said how to resume
        return _stopped(signal.Signals(code - 128))
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    print(f"dirnet: error: training rank {rank} {how}; its messages are above", file=sys.stderr)
    return 1


def _stopped(sig: signal.Signals) -> int:
    """The line for a run stopped by SIGINT / SIGTERM (the trainer printed how to resume); its exit code."""
    print(f"dirnet: training stopped ({sig.name}); the lines above say how to resume", file=sys.stderr)
    return 128 + int(sig)


def stop_leftovers(failures: Mapping[int, Any], grace_s: float = 2.0) -> None:
    """Stop what failed workers left running: torchrun starts each worker as the leader of its
    own process group, and stops the groups of the workers still alive, but not the group of a
    worker that died (its DataLoader workers would linger)."""
    groups = [int(f.pid) for f in failures.values() if int(getattr(f, "pid", -1) or -1) > 0]
    alive = [g for g in groups if _signal_group(g, signal.SIGTERM)]
    deadline = time.monotonic() + grace_s
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [g for g in alive if _signal_group(g, 0)]
    for group in alive:
        _signal_group(group, signal.SIGKILL)


def _signal_group(group: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group is gone."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())

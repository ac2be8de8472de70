"""Engine reliability: run-directory lock and lineage, signals, orphaned loader workers, clear
errors (disk full, lr overflow, data errors in workers), stale temporary files, honest train.log.

The subprocess tests run `dirnet train` through this file's `__main__` block with the toy model
and dataset of test_engine_toys (so a worker process can import them), and send real signals.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dir_net.engine import checkpoint as ck
from dir_net.engine.trainer import Trainer
from dir_net.errors import ConfigError, DataError, DirNetError
from test_engine_toys import ToyHands, toy_config, toy_dataset_factory, toy_model_factory

TESTS = Path(__file__).resolve().parent


def make_trainer(cfg, resume=None, dataset_factory=toy_dataset_factory):
    return Trainer(cfg, resume=resume, model_factory=toy_model_factory, dataset_factory=dataset_factory)


def step_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("step_*.pt"))


# --- 1. lineage: a resume from an older checkpoint keeps its own checkpoints -----------------

def test_resume_from_an_older_checkpoint_starts_a_new_lineage(tmp_path, caplog):
    ckpt_dir = tmp_path / "toy" / "checkpoints"
    make_trainer(toy_config(tmp_path, "train.val_every=0", "train.checkpoint_steps=1", "train.keep_last=2",
                            "train.max_steps=5")).fit()
    early = tmp_path / "early.pt"
    shutil.copyfile(ckpt_dir / "step_00000005.pt", early)
    make_trainer(toy_config(tmp_path, "train.val_every=0", "train.checkpoint_steps=1", "train.keep_last=2",
                            "train.max_steps=10"), resume="auto").fit()
    assert step_names(ckpt_dir) == ["step_00000009.pt", "step_00000010.pt"]

    with caplog.at_level(logging.INFO):
        result = make_trainer(toy_config(tmp_path, "train.val_every=0", "train.checkpoint_steps=1",
                                         "train.keep_last=2", "train.max_steps=7"), resume=str(early)).fit()
    assert result.step == 7
    assert step_names(ckpt_dir) == ["step_00000006.pt", "step_00000007.pt"]  # the new lineage's own files
    assert "new lineage" in caplog.text
    aside = [p for p in ckpt_dir.iterdir() if p.is_dir()]
    assert len(aside) == 1 and step_names(aside[0]) == ["step_00000009.pt", "step_00000010.pt"]
    assert "new lineage" in (tmp_path / "toy" / "train.log").read_text()

    again = make_trainer(toy_config(tmp_path, "train.val_every=0"), resume="auto")
    try:
        assert again.state.step == 7 and again.last_checkpoint.name == "step_00000007.pt"
    finally:
        again.close()


# --- 2. one writer per run directory ---------------------------------------------------------

def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    cfg = toy_config(tmp_path, "train.val_every=0", "train.max_steps=2")
    first = make_trainer(cfg)
    try:
        with pytest.raises(DirNetError) as exc:
            make_trainer(cfg, resume="auto")
        message = str(exc.value)
        assert "\n" not in message and "in use" in message
        assert f"pid {os.getpid()}" in message and socket.gethostname() in message
    finally:
        first.close()
    make_trainer(cfg, resume="auto").fit()  # released by close(): the next run may go on


def test_a_stale_lock_of_a_dead_process_is_recovered(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    run = tmp_path / "toy"
    run.mkdir()
    # the lock file of a run killed with -9 whose lock is still held: an orphaned child kept the
    # file open (the kernel lock goes with the open file, not with the pid written in it)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"f = open({str(run / '.lock')!r}, 'w')\n"
        "fcntl.flock(f, fcntl.LOCK_EX)\n"
        f"f.write('pid {dead_pid} host {socket.gethostname()}\\n'); f.flush()\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with caplog.at_level(logging.WARNING):
            result = make_trainer(toy_config(tmp_path, "train.val_every=0", "train.max_steps=2")).fit()
        assert result.step == 2
        assert f"stale lock of pid {dead_pid}" in caplog.text
    finally:
        holder.kill()
        holder.wait()


# --- 3 and 4. signals and orphans (real processes) -------------------------------------------

def _child_main(argv: list[str]) -> int:
    """`dirnet` with the toy model and dataset as the defaults (run as a script by the tests)."""
    import test_engine_toys as toys
    from dir_net.cli import main
    from dir_net.engine import trainer

    trainer._default_model_factory = toys.toy_model_factory
    trainer._default_dataset_factory = toys.toy_dataset_factory
    return main(argv)


def start_run(tmp_path: Path, *overrides: str) -> tuple[subprocess.Popen, Path, Path]:
    """A long toy `dirnet train` with one loader worker, in its own session; returns once it
    has logged its third optimiser step (the worker is then up)."""
    config = tmp_path / "toy.yaml"
    config.write_text("{}\n")
    args = [sys.executable, str(Path(__file__).resolve()), "train", "--config", str(config),
            f"experiment.output_dir={tmp_path}", "experiment.name=toy", "train.device=cpu", "train.epochs=100000",
            "train.batch_size=4", "train.num_workers=1", "train.log_every=1", "train.image_every=0",
            "train.progress_bar=false", "train.val_every=0", "train.checkpoint_steps=0", *overrides]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    log_file = tmp_path / "toy" / "train.log"
    deadline = time.monotonic() + 120
    while not (log_file.is_file() and " step 3/" in log_file.read_text()):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"the toy run did not start: {err[-2000:]}")
        time.sleep(0.2)
    return process, config, log_file


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of a live process, None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, their children, ...), from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[0]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def survivors(pids: set[int], wait_s: float = 30.0) -> set[int]:
    """Those of `pids` still running (zombies count as gone) after waiting up to `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        alive = {p for p in pids if (s := _proc_stat(p)) is not None and s[1] not in "ZX"}
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")


@needs_proc
def test_killed_run_leaves_no_orphaned_workers(tmp_path):
    process, _, _ = start_run(tmp_path)
    children = descendants(process.pid)
    assert children, "the run has a loader worker"
    process.kill()
    process.wait()
    alive = survivors(children)
    for pid in alive:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"processes of the killed run still alive: {sorted(alive)}"


@needs_proc
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_with_a_checkpoint_and_the_resume_command(tmp_path, signum):
    process, config, log_file = start_run(tmp_path)
    children = descendants(process.pid)
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)  # Ctrl-C: the whole foreground process group
    else:
        process.send_signal(signum)  # `kill PID`
    try:
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    name = signal.Signals(signum).name
    assert process.returncode == 128 + signum, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    stop_lines = [line for line in err.splitlines() if f"stopped by {name}" in line]
    assert len(stop_lines) == 1, err[-3000:]
    newest = step_names(tmp_path / "toy" / "checkpoints")[-1]  # written on the way out
    step = int(newest[5:13])
    assert f"step {step}" in stop_lines[0] and newest in stop_lines[0]
    assert f"--config {config}" in stop_lines[0] and stop_lines[0].rstrip().endswith("--resume")
    assert f"run ended: stopped by {name} at step {step}" in log_file.read_text()
    assert not survivors(children)
    resumed = make_trainer(toy_config(tmp_path, "train.val_every=0", "train.epochs=100000"), resume="auto")
    try:
        assert resumed.state.step == step
    finally:
        resumed.close()


# --- 5. clear errors -------------------------------------------------------------------------

def test_disk_full_keeps_the_previous_checkpoint_and_names_the_directory(tmp_path, monkeypatch):
    real_save = torch.save
    calls = []

    def save_until_full(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) < 2:
            return real_save(obj, f, *args, **kwargs)
        f.write(b"partial bytes")  # the temporary file holds a partial write
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", save_until_full)
    cfg = toy_config(tmp_path, "train.val_every=0", "train.checkpoint_steps=2")
    with pytest.raises(DirNetError) as exc:
        make_trainer(cfg).fit()
    ckpt_dir = tmp_path / "toy" / "checkpoints"
    message = str(exc.value)
    assert "\n" not in message and f"no space left on {ckpt_dir}" in message
    assert "step_00000002.pt" in message  # the previous checkpoint, intact
    assert step_names(ckpt_dir) == ["step_00000002.pt"]
    assert ck.read_checkpoint(ckpt_dir / "step_00000002.pt")["step"] == 2
    assert not [p.name for p in ckpt_dir.iterdir() if ".tmp" in p.name]
    assert "run ended: disk full" in (tmp_path / "toy" / "train.log").read_text()


def test_learning_rate_overflow_is_a_config_error_naming_the_key(tmp_path):
    cfg = toy_config(tmp_path, "train.val_every=0", "train.optimizer.lr=1e39")
    with pytest.raises(ConfigError, match=r"train\.optimizer\.lr") as exc:
        make_trainer(cfg).fit()
    assert "\n" not in str(exc.value)


class BrokenHands(ToyHands):
    """Sample 5 raises a DataError, as a reader does for a malformed file."""

    def __getitem__(self, index):
        if index == 5:
            raise DataError("/data/annotations/train/joint_3d.json: frame 5 has no 'world_coord'")
        return super().__getitem__(index)


def broken_dataset_factory(cfg, split, train):
    return BrokenHands(24, train) if split == "train" else toy_dataset_factory(cfg, split, train)


def test_data_error_in_a_loader_worker_is_one_line_naming_the_file(tmp_path):
    cfg = toy_config(tmp_path, "train.val_every=0", "train.num_workers=1")
    with pytest.raises(DataError) as exc:
        make_trainer(cfg, dataset_factory=broken_dataset_factory).fit()
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    assert "joint_3d.json: frame 5 has no 'world_coord'" in message
    assert "run ended: data error" in (tmp_path / "toy" / "train.log").read_text()


def test_stale_temporary_checkpoint_is_removed_at_the_next_start(tmp_path):
    make_trainer(toy_config(tmp_path, "train.val_every=0", "train.max_steps=2")).fit()
    ckpt_dir = tmp_path / "toy" / "checkpoints"
    stale = ckpt_dir / ".step_00000003.k2j4x.tmp.pt"  # what a kill during torch.save leaves
    stale.write_bytes(b"half a checkpoint")
    trainer = make_trainer(toy_config(tmp_path, "train.val_every=0"), resume="auto")
    trainer.close()
    assert not stale.exists()
    assert stale.name in (tmp_path / "toy" / "train.log").read_text()


# --- 6. train.log tells what happened --------------------------------------------------------

class ChattyHands(ToyHands):
    """Logs like the real dataset: subset drop counts when built, skip warnings in the workers."""

    def __init__(self, length, train):
        super().__init__(length, train)
        logging.getLogger("dir_net.data.subsets").info(
            "train: 24 of 30 samples selected (dropped hand_type not interacting: 6)")

    def __getitem__(self, index):
        if index == 3:
            logging.getLogger("dir_net.data.dataset").warning(
                "skipping sample 1003: unreadable image img_0003.jpg (1 skipped so far in this process)")
        return super().__getitem__(index)


def test_train_log_has_the_end_reason_drop_counts_and_worker_warnings(tmp_path):
    cfg = toy_config(tmp_path, "train.val_every=0", "train.num_workers=1", "train.epochs=1")
    make_trainer(cfg, dataset_factory=lambda c, s, t: ChattyHands(24, t)).fit()
    text = (tmp_path / "toy" / "train.log").read_text()
    assert "dropped hand_type not interacting: 6" in text
    assert "skipping sample 1003: unreadable image img_0003.jpg" in text
    assert "run ended: finished at step 6" in text


def test_train_log_names_a_non_finite_loss_as_the_end(tmp_path):
    from dir_net.engine.trainer import NonFiniteLossError
    from test_engine_checkpoint import DivergingModel

    cfg = toy_config(tmp_path, "train.val_every=0")
    trainer = Trainer(cfg, model_factory=lambda c: DivergingModel(diverge_at=3),
                      dataset_factory=toy_dataset_factory)
    with pytest.raises(NonFiniteLossError):
        trainer.fit()
    assert "run ended: non-finite loss at step 3" in (tmp_path / "toy" / "train.log").read_text()


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))

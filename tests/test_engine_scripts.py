"""scripts/train.sh and scripts/eval.sh build the right command lines (PYTHON replaced by a stub
that prints its arguments, so nothing is launched); train.sh checks the config before torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def stub(tmp_path):
    script = tmp_path / "python"
    script.write_text('#!/usr/bin/env bash\necho "cwd=$PWD"\necho "args=$*"\necho "pythonpath=$PYTHONPATH"\n')
    script.chmod(0o755)
    return script


def run(script: str, stub: Path, *args: str, nproc: str | None = "3") -> dict[str, str]:
    env = {**os.environ, "PYTHON": str(stub)}
    env.pop("NPROC_PER_NODE", None)
    if nproc is not None:
        env["NPROC_PER_NODE"] = nproc
    out = subprocess.run(["bash", str(REPO / "scripts" / script), *args], env=env, cwd=stub.parent,
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_no_arguments_runs_the_quickstart_from_the_repository(stub):
    out = run("train.sh", stub)
    assert out["args"] == "-m dir_net quickstart --config configs/quickstart.yaml"
    assert out["cwd"] == str(REPO) and out["pythonpath"].split(":")[0] == str(REPO)


def test_single_machine_launch(stub):
    out = run("train.sh", stub, "configs/x.yaml", "train.epochs=2", "--resume")
    assert out["args"] == ("-m dir_net.engine.launch --nproc_per_node 3 --standalone -m dir_net train "
                           "--config configs/x.yaml train.epochs=2 --resume")
    assert out["cwd"] == str(stub.parent)  # relative config paths stay relative to the caller


def test_multi_node_arguments_go_to_torchrun(stub):
    out = run("train.sh", stub, "c.yaml", "--nnodes", "2", "--node_rank=1", "a.b=1",
              "--rdzv_endpoint", "host:29400", "--rdzv_id", "job7")
    assert out["args"] == ("-m dir_net.engine.launch --nnodes 2 --node_rank=1 --rdzv_endpoint host:29400 "
                           "--rdzv_id job7 --nproc_per_node 3 -m dir_net train --config c.yaml a.b=1")


def test_explicit_process_count_and_bad_first_argument(stub):
    out = run("train.sh", stub, "c.yaml", "--nproc_per_node", "5", nproc=None)
    assert out["args"].startswith("-m dir_net.engine.launch --nproc_per_node 5 --standalone -m dir_net train")
    bad = subprocess.run(["bash", str(REPO / "scripts" / "train.sh"), "--resume"], capture_output=True,
                         text=True, env={**os.environ, "PYTHON": str(stub), "NPROC_PER_NODE": "1"})
    assert bad.returncode == 2 and "first argument must be a config file" in bad.stderr


def test_eval_script(stub):
    out = run("eval.sh", stub, "--checkpoint", "ck.pt", "--split", "val", "k=v")
    assert out["args"] == "-m dir_net eval run --checkpoint ck.pt --split val k=v"


def test_config_is_checked_before_torchrun(tmp_path):
    log = tmp_path / "calls"
    stub = tmp_path / "python"
    stub.write_text(f'#!/usr/bin/env bash\necho "$*" >> {log}\n')
    stub.chmod(0o755)
    env = {**os.environ, "PYTHON": str(stub), "NPROC_PER_NODE": "1"}
    subprocess.run(["bash", str(REPO / "scripts" / "train.sh"), "c.yaml", "a.b=1", "--resume", "--nnodes", "1"],
                   env=env, check=True, capture_output=True)
    calls = log.read_text().splitlines()
    assert calls == ["-m dir_net train --check --config c.yaml a.b=1 --resume",
                     "-m dir_net.engine.launch --nnodes 1 --nproc_per_node 1 -m dir_net train --config c.yaml "
                     "a.b=1 --resume"]


def test_bad_key_is_one_line_and_exit_2_without_torchrun():
    env = {**os.environ, "PYTHON": sys.executable, "NPROC_PER_NODE": "1"}
    bad = subprocess.run(["bash", str(REPO / "scripts" / "train.sh"), str(REPO / "configs" / "quickstart.yaml"),
                          "train.bogus_key=1"], env=env, capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dirnet: error:") and "train.bogus_key" in lines[0]


def test_no_config_prints_usage_and_exits_2(stub):
    bad = subprocess.run(["bash", str(REPO / "scripts" / "train.sh"), "--nnodes", "2"], capture_output=True,
                         text=True, env={**os.environ, "PYTHON": str(stub), "NPROC_PER_NODE": "1"})
    assert bad.returncode == 2 and "unbound variable" not in bad.stderr
    assert "no config file given" in bad.stderr and "usage: bash scripts/train.sh" in bad.stderr


# -- errors a newcomer meets: one line, not a torchrun traceback (issue 18) ------------------------

QUICKSTART = REPO / "configs" / "quickstart.yaml"


def _train_sh(*args: str, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "NPROC_PER_NODE": "1", **env}
    return subprocess.run(["bash", str(REPO / "scripts" / "train.sh"), *args], env=env, capture_output=True,
                          text=True, cwd=REPO, timeout=600)


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("dirnet: error:")]
    assert len(errors) == 1 and "Traceback" not in stderr and "ChildFailedError" not in stderr, stderr
    return errors[0]


def _annotations(root: Path, splits=("train", "val")) -> Path:
    """A data root whose split files exist (enough for `dirnet train --check`)."""
    for split in splits:
        folder = root / "annotations" / split
        folder.mkdir(parents=True)
        for kind in ("data", "camera", "joint_3d"):
            (folder / f"InterHand2.6M_{split}_{kind}.json").write_text("{}")
    return root


def test_bad_data_root_is_one_line_and_exit_2_before_torchrun(tmp_path):
    bad = _train_sh(str(QUICKSTART), f"data.root={tmp_path / 'nonexistent'}",
                    f"experiment.output_dir={tmp_path / 'runs'}")
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dirnet: error:")
    assert "data.root" in lines[0] and str(tmp_path / "nonexistent") in lines[0]
    assert not (tmp_path / "runs").exists()


def test_run_directory_with_checkpoints_is_one_line_before_torchrun(tmp_path):
    root = _annotations(tmp_path / "data")
    checkpoints = tmp_path / "runs" / "quickstart" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "step_00000008.pt").write_bytes(b"")
    bad = _train_sh(str(QUICKSTART), f"data.root={root}", f"experiment.output_dir={tmp_path / 'runs'}")
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "already has checkpoints" in lines[0] and "--resume" in lines[0]


def test_a_worker_user_error_is_one_line_and_exit_2(tmp_path):
    """An error only the training process finds (1 train sample for batch 8): the launcher prints
    the worker's message once, without torchrun's traceback."""
    from dir_net.data.synth import generate

    generate(tmp_path / "data", frames=1, seed=0, splits=["train", "val"], cameras=1)
    bad = _train_sh(str(QUICKSTART), f"data.root={tmp_path / 'data'}", f"experiment.output_dir={tmp_path / 'runs'}",
                    "train.batch_size=8")
    assert bad.returncode == 2
    line = _one_error_line(bad.stderr)
    assert "train.batch_size=8" in line and line == bad.stderr.strip().splitlines()[-1]


_KILLED_WORKER = """
import os, signal, subprocess, sys
from dir_net.engine.launch import note_memory

note_memory("about 23.5 GB for 1 process(es) (estimate); RAM: 16.0 GB")
leftover = subprocess.Popen(["sleep", "300"])  # stands for a DataLoader worker
with open(sys.argv[1], "w") as f:
    f.write(str(leftover.pid))
os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_a_worker_killed_by_sigkill_is_named_out_of_memory_and_leaves_nothing_behind(tmp_path):
    script, pid_file = tmp_path / "worker.py", tmp_path / "leftover.pid"
    script.write_text(_KILLED_WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "dir_net.engine.launch", "--standalone", "--nproc_per_node", "1",
                           str(script), str(pid_file)], env=env, capture_output=True, text=True, timeout=120)
    try:
        assert done.returncode == 137
        line = _one_error_line(done.stderr)
        assert "out of memory" in line and "about 23.5 GB" in line and "train.batch_size" in line
        assert "exitcode" not in done.stderr  # torchrun's own failure report is left out
        assert not _alive(int(pid_file.read_text()))
    finally:
        if pid_file.is_file() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), 9)


def test_a_worker_stopped_by_a_signal_keeps_its_exit_code(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text("import sys\nprint('stopped at step 3; to continue: ...', file=sys.stderr)\nsys.exit(130)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "dir_net.engine.launch", "--standalone", "--nproc_per_node", "1",
                           str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 130
    assert "Traceback" not in done.stderr and "to continue" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == "dirnet: training stopped (SIGINT); the lines above say how to resume"

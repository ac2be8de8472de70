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
    assert out["args"] == ("-m torch.distributed.run --nproc_per_node 3 --standalone -m dir_net train "
                           "--config configs/x.yaml train.epochs=2 --resume")
    assert out["cwd"] == str(stub.parent)  # relative config paths stay relative to the caller


def test_multi_node_arguments_go_to_torchrun(stub):
    out = run("train.sh", stub, "c.yaml", "--nnodes", "2", "--node_rank=1", "a.b=1",
              "--rdzv_endpoint", "host:29400", "--rdzv_id", "job7")
    assert out["args"] == ("-m torch.distributed.run --nnodes 2 --node_rank=1 --rdzv_endpoint host:29400 "
                           "--rdzv_id job7 --nproc_per_node 3 -m dir_net train --config c.yaml a.b=1")


def test_explicit_process_count_and_bad_first_argument(stub):
    out = run("train.sh", stub, "c.yaml", "--nproc_per_node", "5", nproc=None)
    assert out["args"].startswith("-m torch.distributed.run --nproc_per_node 5 --standalone -m dir_net train")
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
                     "-m torch.distributed.run --nnodes 1 --nproc_per_node 1 -m dir_net train --config c.yaml "
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

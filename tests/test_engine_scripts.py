"""scripts/train.sh and scripts/eval.sh build the right command lines (PYTHON replaced by a stub
that prints its arguments, so nothing is launched)."""

from __future__ import annotations

import os
import subprocess
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

"""Two CPU processes (gloo) train with DistributedDataParallel on the synthetic InterHand2.6M-format
dataset (toy model, real data pipeline): disjoint data shards, identical parameters on both ranks
afterwards, validation gathered on rank 0 equal to a single-process evaluation of the checkpoint."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from dir_net.engine.checkpoint import read_checkpoint
from dir_net.engine.distributed import ResumableSampler, SeededDataset, sample_seed
from dir_net.engine.evaluation import evaluate_checkpoint
from test_engine_toys import ToyHands, toy_config, toy_model_factory

WORLD = 2
FRAMES, CAMERAS = 8, 2  # 16 samples per split
OVERRIDES = ("train.epochs=2", "train.batch_size=2", "train.checkpoint_steps=3", "train.grad_accum=2",
             "data.image_size=64", "data.aux_size=16")


def synthetic_config(data_root: Path, run_root: Path, *extra: str):
    return toy_config(run_root, *OVERRIDES, f"data.root={data_root}", *extra)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from dir_net.data.synth import generate

    root = tmp_path_factory.mktemp("synthetic")
    generate(root, frames=FRAMES, seed=0, splits=["train", "val"], cameras=CAMERAS)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, data_root: str, run_root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    from dir_net.engine.distributed import shutdown_distributed
    from dir_net.engine.trainer import Trainer

    trainer = Trainer(synthetic_config(Path(data_root), Path(run_root)), model_factory=toy_model_factory)
    trainer.sampler.set_position(0)
    shard = [index for index, _ in trainer.sampler]
    result = trainer.fit()
    torch.save({"model": trainer.model.state_dict(), "shard": shard, "step": result.step,
                "history": result.val_history}, Path(out) / f"rank{rank}.pt")
    shutdown_distributed()


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, data_root):
    root, out = tmp_path_factory.mktemp("ddp"), tmp_path_factory.mktemp("out")
    mp.spawn(_worker, args=(free_port(), str(data_root), str(root), str(out)), nprocs=WORLD, join=True)
    return root, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_ranks_see_disjoint_shards_and_end_with_identical_parameters(ddp_run):
    root, ranks = ddp_run
    shards = [set(r["shard"]) for r in ranks]
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(FRAMES * CAMERAS))
    # 8 samples per rank / batch 2 = 4 micro-batches = 2 optimiser steps per epoch
    assert ranks[0]["step"] == ranks[1]["step"] == 4
    initial = toy_model_factory(toy_config(root)).state_dict()
    # parameters by DDP's gradient all-reduce; BatchNorm statistics by the final validation's sync
    for key, value in ranks[0]["model"].items():
        torch.testing.assert_close(value, ranks[1]["model"][key], rtol=0, atol=0, msg=key)
    trained_keys = [k for k in initial if initial[k].is_floating_point() and not k.endswith("template")]
    assert any(not torch.equal(initial[k], ranks[0]["model"][k]) for k in trained_keys)


def test_only_rank0_writes_and_its_checkpoint_matches(ddp_run):
    root, ranks = ddp_run
    ckpt = read_checkpoint(root / "toy" / "checkpoints" / "step_00000004.pt")
    assert len(ckpt["rng"]) == WORLD  # every rank's generator states, for exact resume
    for key, value in ckpt["model"].items():
        torch.testing.assert_close(value, ranks[0]["model"][key], rtol=0, atol=0)
    assert len(list((root / "toy" / "tb").iterdir())) == 1


def test_gathered_validation_equals_single_process_evaluation(ddp_run, data_root, tmp_path):
    root, ranks = ddp_run
    assert ranks[0]["history"] == ranks[1]["history"]  # rank 0's results were broadcast
    final = ranks[0]["history"][-1]["metrics"]
    single = evaluate_checkpoint(synthetic_config(data_root, root), root / "toy" / "checkpoints" / "step_00000004.pt",
                                 "val", tmp_path, model_factory=toy_model_factory)
    assert single.num_samples == FRAMES * CAMERAS
    for protocol, metrics in single.results.items():
        assert final[protocol] == pytest.approx(metrics, rel=1e-6)


def test_sampler_resumes_mid_epoch_with_the_same_order_and_seeds():
    data = ToyHands(10, train=True)
    full = ResumableSampler(data, num_replicas=2, rank=1, shuffle=True, seed=5)
    full.set_position(epoch=3)
    order = list(full)
    skipped = ResumableSampler(data, num_replicas=2, rank=1, shuffle=True, seed=5)
    skipped.set_position(epoch=3, start=2)
    assert list(skipped) == order[2:] and len(skipped) == len(order) - 2
    assert order[0][1] == sample_seed(5, 3, order[0][0])
    full.set_position(epoch=4)
    assert [i for i, _ in full] != [i for i, _ in order]  # reshuffled every epoch
    seeded = SeededDataset(data)
    torch.manual_seed(0)
    before = torch.rand(1)
    first = seeded[order[0]]["image"]
    torch.manual_seed(0)
    assert torch.equal(seeded[order[0]]["image"], first)  # same (index, seed) -> same augmentation
    assert torch.equal(torch.rand(1), before)  # the global RNG stream was left untouched

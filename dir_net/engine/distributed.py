"""Process groups, devices and a data sampler that can resume mid-epoch.

Launch with `torchrun` (one process per GPU, or processes on the CPU): it sets RANK, WORLD_SIZE,
LOCAL_RANK and the rendezvous variables. Without them the run is a single process.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

from dir_net.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the run."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(preference: str, local_rank: int) -> torch.device:
    """`train.device` (auto | cuda | cpu) -> the device of this process."""
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("key 'train.device' is 'cuda' but no CUDA device is visible; use auto or cpu")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def init_distributed(device_preference: str = "auto") -> DistInfo:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on the CPU), if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's `obj` (picklable), in rank order, on every rank."""
    if not info.distributed:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def gather_to_main(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's `obj` in rank order on rank 0; an empty list on the other ranks."""
    if not info.distributed:
        return [obj]
    gathered: list[Any] | None = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered if gathered is not None else []


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP syncs buffers at the start of each forward, so after the last training step each rank
    holds statistics updated by its own batch; evaluation must use one set.
    """
    if info.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank when `flag` is true on at least one (a collective when distributed)."""
    if not info.distributed:
        return flag
    value = torch.tensor([float(flag)], device=info.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def mean_over_ranks(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a tensor across processes (used for logged losses)."""
    if info.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= info.world_size
    return values


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that depends only on (run seed, epoch, sample index)."""
    rng = np.random.default_rng([seed, epoch, index])
    return int(rng.integers(0, 2**63 - 1))


class ResumableSampler(DistributedSampler):
    """DistributedSampler (epoch-seeded shuffle, one shard per rank) that can skip ahead.

    It yields `(index, seed)` pairs for `SeededDataset`, so each sample's augmentation depends on
    the run seed, the epoch and the index alone, not on worker assignment or on where a run was
    resumed. `set_position(epoch, start)` selects the epoch and skips its first `start` samples
    of this rank's shard.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        shard = list(super().__iter__())
        for index in shard[self.start:]:
            yield index, sample_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return self.num_samples - self.start


class SeededDataset(Dataset):
    """Wraps a dataset so that item `(index, seed)` is drawn with randomness fixed by `seed`.

    A dataset with a `get_sample(index, rng)` method gets `np.random.default_rng(seed)` as its
    augmentation generator; any other dataset is read with python/numpy/torch's global RNGs
    seeded, and their states are restored afterwards, so reading samples in the main process
    (num_workers = 0) leaves the training RNG streams untouched.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        get_sample = getattr(self.dataset, "get_sample", None)
        if get_sample is not None:
            return get_sample(index, np.random.default_rng(seed))
        with _seeded_rngs(seed):
            return self.dataset[index]


@contextlib.contextmanager
def _seeded_rngs(seed: int) -> Iterator[None]:
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)

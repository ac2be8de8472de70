"""CPU runs leave a core to each loader worker (OpenMP spin-waiting on busy cores is very slow)."""

import torch

from dir_net.config import load_config
from dir_net.engine.runtime import cpu_thread_limit, cpu_threads


def test_cpu_runs_use_the_free_cores_and_restore_the_thread_count(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert cpu_threads(1) == 3 and cpu_threads(8) == 1
    before = torch.get_num_threads()
    with cpu_thread_limit(load_config(None, ["train.device=cpu", "train.num_workers=2"])):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before


def test_omp_num_threads_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    with cpu_thread_limit(load_config(None, ["train.device=cpu", "train.num_workers=0"])):
        assert torch.get_num_threads() == before

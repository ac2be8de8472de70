"""Shared fixtures."""

import pytest
import torch


@pytest.fixture()
def one_thread():
    """Tiny models run fastest single-threaded on a shared, loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

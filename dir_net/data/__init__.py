"""InterHand2.6M data: reader (layout, streaming JSON), columnar index, camera maths, subsets,
sample pipelines (DIR, InterNet), quality checks, prepared seg/dense maps, synthetic dataset.

Exports are resolved lazily, so `dir_net.data.index` and friends import without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "InterHandDataset": "dataset",
    "build_dataset": "dataset",
    "split_files": "dataset",
    "worker_init_fn": "dataset",
    "InterHandIndex": "index",
    "build_index": "index",
    "open_index": "index",
    "SPLITS": "layout",
    "SplitFiles": "layout",
    "explicit_files": "layout",
    "locate_split": "layout",
    "sample_files": "layout",
    "PIPELINES": "pipelines",
    "Pipeline": "pipelines",
    "build_pipeline": "pipelines",
    "register_pipeline": "pipelines",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dir_net.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"dir_net.data.{module}"), name)

"""The dataset class family: index rows -> Record -> pipeline -> dict of arrays (default collate)."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch

from dir_net.data.index import InterHandIndex, open_index
from dir_net.data.layout import SplitFiles, locate_split
from dir_net.data.pipelines import Pipeline, build_pipeline
from dir_net.data.reader import BadImage, Record, aux_dir_for, check_aux_maps, read_record
from dir_net.data.subsets import select_rows
from dir_net.errors import DataError

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_BAD = 20


class InterHandDataset(torch.utils.data.Dataset):
    """Samples of one split; a missing or unreadable image is skipped (replaced by another sample),
    counted in `bad_images` and logged once per image."""

    def __init__(self, index: InterHandIndex, rows: np.ndarray, pipeline: Pipeline) -> None:
        if len(rows) == 0:
            raise DataError(f"{index.dir}: no samples left after the data.* subset filters")
        self.index = index
        self.rows = rows
        self.pipeline = pipeline
        self.aux_dir = aux_dir_for(index.dir) if pipeline.needs_aux else None
        if self.aux_dir is not None:
            check_aux_maps(self.aux_dir, pipeline.hands.fingerprint())
        self.bad_images: dict[int, str] = {}  # ann_id -> reason, in this process
        self._rng: np.random.Generator | None = None
        self._rng_pid = -1

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_rng"] = None  # each worker seeds its own generator
        return state

    def rng(self) -> np.random.Generator:
        """Per-process generator seeded from torch's seed (distinct per worker and per epoch)."""
        if self._rng is None or self._rng_pid != os.getpid():
            self._rng = np.random.default_rng(torch.initial_seed() % (2**63))
            self._rng_pid = os.getpid()
        return self._rng

    def record(self, i: int) -> Record:
        return read_record(self.index, int(self.rows[i]), self.pipeline.needs_mano, self.aux_dir)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return self.get_sample(i, self.rng())

    def get_sample(self, i: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Sample `i` with augmentation drawn from `rng` (the trainer passes a generator seeded
        per (epoch, index), which makes a resumed run see exactly the same samples)."""
        j = i
        for _ in range(MAX_CONSECUTIVE_BAD):
            try:
                record = self.record(j)
            except BadImage as exc:
                self._note_bad(j, str(exc))
                j = int(rng.integers(len(self.rows)))
                continue
            return self.pipeline(record, rng)
        raise DataError(
            f"{MAX_CONSECUTIVE_BAD} images in a row are missing or unreadable (last: "
            f"{list(self.bad_images.values())[-1]}); run `dirnet data verify` on the split"
        )

    def _note_bad(self, i: int, reason: str) -> None:
        ann_id = int(self.index.col("ann_id")[int(self.rows[i])])
        if ann_id not in self.bad_images:
            self.bad_images[ann_id] = reason
            log.warning("skipping sample %d: %s (%d skipped so far in this process)",
                        ann_id, reason, len(self.bad_images))


def split_files(cfg: Any, split: str) -> SplitFiles:
    return locate_split(cfg.data.root, split, fps=int(cfg.data.fps), annot_subset=cfg.data.annot_subset)


def build_dataset(cfg: Any, split: str, train: bool, files: SplitFiles | None = None) -> InterHandDataset:
    """The dataset of `split` with the pipeline `cfg.data.pipeline` (augmentation when `train`);
    `data.dataset` stb / rhd reads the parsed STB / RHD release instead (dir_net/data/stb_rhd)."""
    if cfg.data.get("dataset", "interhand26m") != "interhand26m":
        from dir_net.data.stb_rhd import build_stb_rhd_dataset

        return build_stb_rhd_dataset(cfg, split, train)
    files = files or split_files(cfg, split)
    index = open_index(files, cfg.data.cache_dir)
    rows = select_rows(index, cfg.data, files.aid_list)
    pipeline = build_pipeline(cfg, train)
    make_dataset = getattr(pipeline, "make_dataset", None)  # pipelines with their own sample list
    return make_dataset(index, rows) if make_dataset else InterHandDataset(index, rows, pipeline)


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: one thread for torch and OpenCV (the workers are the parallelism)."""
    import cv2

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


"""Which samples of an index a dataset uses (vectorised over the index columns)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from dir_net.data.index import QUALITY_BLACK, QUALITY_OK, InterHandIndex
from dir_net.errors import DataError

log = logging.getLogger(__name__)

HAND_TYPE_CHOICES = ("all", "interacting", "single")


def read_id_list(path: str | Path) -> np.ndarray:
    """Annotation ids, one per line ('#' starts a comment) -> sorted int64 array."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: id list not found")
    ids = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            ids.append(int(text))
        except ValueError:
            raise DataError(f"{path}:{n}: expected an annotation id (integer), got {text!r}") from None
    return np.unique(np.asarray(ids, np.int64))


def mano_complete(index: InterHandIndex) -> np.ndarray:
    """(N,) bool: every hand named by the sample's hand_type has a NeuralAnnot fit."""
    n = len(index)
    if not index.meta["has_mano"]:
        return np.zeros(n, bool)
    mrow = np.asarray(index.col("mano_row"))
    table = np.asarray(index.col("mano_present"))  # (M, 2) per MANO frame
    if len(table) == 0:  # a MANO file with no frame of this split
        return np.zeros(n, bool)
    present = table[np.maximum(mrow, 0)] > 0  # (N, 2)
    ht = np.asarray(index.col("hand_type"))
    need = np.stack([(ht == 0) | (ht == 2), (ht == 1) | (ht == 2)], 1)
    return (mrow >= 0) & (ht >= 0) & ~(need & ~present).any(1)


def select_rows(index: InterHandIndex, data_cfg: Any, aid_list: Path | None = None) -> np.ndarray:
    """Sample rows kept by the data.* subset options; logs what each filter removed."""
    hand_types = data_cfg.get("hand_types", "all")
    if hand_types not in HAND_TYPE_CHOICES:
        raise DataError(f"data.hand_types must be one of {HAND_TYPE_CHOICES}, got {hand_types!r}")
    ht = np.asarray(index.col("hand_type"))
    keep = np.ones(len(index), bool)
    dropped: dict[str, int] = {}

    def apply(name: str, mask: np.ndarray) -> None:
        nonlocal keep
        dropped[name] = int((keep & ~mask).sum())
        keep &= mask

    apply("no joint_3d entry", np.asarray(index.col("frame_row")) >= 0)
    apply("non-finite values", np.asarray(index.col("nonfinite")) == 0)
    if hand_types == "interacting":
        apply("hand_type not interacting", ht == 2)
    elif hand_types == "single":
        apply("hand_type not single", (ht == 0) | (ht == 1))
    if data_cfg.get("hand_type_valid_only", False):
        apply("hand_type_valid = 0", np.asarray(index.col("hand_type_valid")) > 0)
    if data_cfg.get("require_mano", False):
        apply("missing MANO fit", mano_complete(index))
    if aid_list is not None:
        apply(f"not in {aid_list.name}", np.isin(np.asarray(index.col("ann_id")), read_id_list(aid_list)))
    if data_cfg.get("exclude_ids"):
        excluded = read_id_list(data_cfg["exclude_ids"])
        apply("excluded by data.exclude_ids", ~np.isin(np.asarray(index.col("ann_id")), excluded))
    quality = index.quality()
    if quality is not None:
        status = np.asarray(quality)
        apply("missing or unreadable image (verify)", (status == QUALITY_OK) | (status == QUALITY_BLACK))
        if data_cfg.get("drop_black", True):
            apply("black image (verify)", status != QUALITY_BLACK)
    elif data_cfg.get("drop_black", True):
        log.info("%s: black frames are not filtered yet; run `dirnet data verify` once to flag them", index.dir.name)
    rows = np.flatnonzero(keep)
    limit = int(data_cfg.get("max_samples", 0) or 0)
    if limit > 0:
        rows = rows[:limit]
    removed = ", ".join(f"{k}: {v}" for k, v in dropped.items() if v)
    log.info("%s: %d of %d samples selected%s", index.meta["split"], len(rows), len(index),
             f" (dropped {removed})" if removed else "")
    return rows.astype(np.int32 if len(index) < 2**31 else np.int64)

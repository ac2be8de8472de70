"""Run a model over a dataset and turn its outputs into evaluation interchange rows.

Rows follow docs/EVALUATION.md (millimetres, crop pixels, hand axis 0 right / 1 left), or
eval.keypoints2d's per-hand rows for 2D keypoint models (their `eval_rows`). The ground truth
comes as one set of rows per family (dir_net.engine.groundtruth): each protocol is scored on the
ground truth it is defined on.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from dir_net.engine import distributed, groundtruth
from dir_net.engine.distributed import DistInfo
from dir_net.engine.runtime import autocast, worker_process_options
from dir_net.errors import ConfigError
from dir_net.structures import Prediction

Rows = dict[str, np.ndarray]
M_TO_MM = 1000.0

# Protocols scored when `evaluation.protocols` is empty, by model name.
DEFAULT_PROTOCOLS = {
    "dir": ("wrist_scaled", "mcp_scaled", "mcp"),
    "internet": ("moon",),
    "simple_baseline2d": ("interhand2d",),
}


def protocols_for(cfg: Any) -> list[str]:
    return list(cfg.evaluation.protocols) or list(DEFAULT_PROTOCOLS[cfg.model.name])


def is_keypoints2d(protocols: list[str]) -> bool:
    """True for a 2D keypoint protocol (eval.keypoints2d); the config check forbids mixing."""
    from eval.keypoints2d import KEYPOINT_PROTOCOLS

    return any(p in KEYPOINT_PROTOCOLS for p in protocols)


def make_evaluator(protocols: list[str], iv: bool = False,
                   subset_ids: Mapping[str, np.ndarray] | None = None) -> groundtruth.ProtocolEvaluator:
    """Scores every protocol on its own ground truth; `subset_ids` ("human" / "machine" annotation
    ids) add the H / M / H+M results of a 2D keypoint protocol."""
    return groundtruth.ProtocolEvaluator(protocols, iv=iv, subset_ids=subset_ids)


def annotation_subset_ids(cfg: Any, split: str) -> dict[str, np.ndarray]:
    """"human" / "machine" -> annotation ids from the split's aid_{human,machine}_annot_{split}.txt
    lists (found where dir_net.data.layout looks for them); subsets without a list are absent."""
    from dir_net.data.layout import locate_split
    from dir_net.data.subsets import read_id_list
    from dir_net.errors import DataError

    found = {}
    for subset in ("human", "machine"):
        try:
            files = locate_split(cfg.data.root, split, int(cfg.data.fps), subset)
        except DataError:  # no such list (or not a v1.0 root): the subset is not reported
            continue
        if files.aid_list is not None:
            found[subset] = read_id_list(files.aid_list)
    return found


def evaluator_for(cfg: Any, split: str, protocols: list[str]) -> groundtruth.ProtocolEvaluator:
    """The evaluator of `dirnet eval run` and of validation (H / M subsets for 2D protocols)."""
    subsets = annotation_subset_ids(cfg, split) if is_keypoints2d(protocols) else None
    return make_evaluator(protocols, iv=cfg.evaluation.iv, subset_ids=subsets)


# Per-pipeline config keys (besides data.pipeline and data.image_size) that place the evaluation
# crop in the image: joints_2d / verts_2d of a predictions file are pixels of that crop.
CROP_KEYS = {"dir": ("crop_ratio",), "internet": ("bbox_pad", "crop_center"),
             "hand2d": ("bbox_pad", "crop_center", "box")}
META_FIELDS = ("crop_size", "model_name", "crop")  # what predictions.npz records besides the rows


def crop_convention(cfg: Any) -> dict[str, Any]:
    """{dotted config key: value} of the crop a model was evaluated on: the pipeline, the crop side
    (px) and the pipeline's box rules; a renderer rebuilds the same crop from these."""
    pipeline = str(cfg.data.pipeline)
    keys = {"data.pipeline": pipeline, "data.image_size": int(cfg.data.image_size)}
    section = cfg.data.get(pipeline) or {}
    keys.update({f"data.{pipeline}.{k}": section[k] for k in CROP_KEYS.get(pipeline, ()) if k in section})
    return keys


def prediction_meta(cfg: Any) -> dict[str, np.ndarray]:
    """The META_FIELDS of predictions.npz: crop_size () int (px), model_name () str and crop () str
    (JSON of `crop_convention`). eval.io ignores them; dir_net.render reads them."""
    return {"crop_size": np.asarray(int(cfg.data.image_size), np.int64),
            "model_name": np.asarray(str(cfg.model.name)),
            "crop": np.asarray(json.dumps(crop_convention(cfg), sort_keys=True))}


def _numpy(t: torch.Tensor, dtype: Any = np.float32) -> np.ndarray:
    return t.detach().float().cpu().numpy().astype(dtype) if t.is_floating_point() else t.detach().cpu().numpy()


def prediction_rows(pred: Prediction, ids: torch.Tensor) -> Rows:
    """Interchange prediction fields of one batch (metres -> millimetres)."""
    rows: Rows = {"ids": ids.cpu().numpy().astype(np.int64), "joints": _numpy(pred.joints) * M_TO_MM}
    if pred.absolute:  # each hand placed on its own (InterNet: own wrist depth): the MRRPE vector is the
        rows["offset"] = _numpy(pred.offset) * M_TO_MM  # model's left - right wrist (Z_right + relative depth)
    if pred.vertices is not None:
        rows["verts"] = _numpy(pred.vertices) * M_TO_MM
    if pred.verts_2d is not None:
        rows["verts_2d"] = _numpy(pred.verts_2d)
    if pred.joints_2d is not None:
        rows["joints_2d"] = _numpy(pred.joints_2d)
    if pred.hand_prob is not None:
        rows["hand_prob"] = _numpy(pred.hand_prob)
    return rows


class ShardSampler(Sampler[int]):
    """Indices rank, rank + world, ... padded (with repeats) so every rank has the same count.

    `num_real` is how many leading indices of this rank are not padding.
    """

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))
        self.num_real = len(self.indices)
        per_rank = math.ceil(length / world_size)
        filler = self.indices[-1] if self.indices else 0
        self.indices += [filler] * (per_rank - self.num_real)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def worker_options(num_workers: int, persistent: bool) -> dict[str, Any]:
    """DataLoader options for worker processes.

    Workers are spawned (a clean interpreter), never forked from the training process: a fork
    after OpenCV's thread pool, OpenMP or an EGL context was used in the parent can hang the child
    (seen with cv2.setNumThreads in a forked worker). They are direct children that die with it
    and log through it (`runtime.worker_process_options`). Persistent workers pay the start-up
    once per loader.
    """
    if not num_workers:
        return {"num_workers": 0}
    return {
        "num_workers": num_workers,
        **worker_process_options(loader_worker_init),
        "persistent_workers": persistent,
    }


def make_eval_loader(dataset: Dataset, batch_size: int, num_workers: int, info: DistInfo,
                     persistent: bool = False) -> DataLoader:
    sampler = ShardSampler(len(dataset), info.rank, info.world_size)  # type: ignore[arg-type]
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, pin_memory=info.device.type == "cuda",
                      **worker_options(num_workers, persistent))


def loader_worker_init(worker_id: int) -> None:
    """One thread for torch and OpenCV per DataLoader worker (the workers are the parallelism)."""
    from dir_net.data import worker_init_fn

    worker_init_fn(worker_id)


def model_faces(model: nn.Module) -> torch.Tensor | None:
    """(2, F, 3) mesh faces of a model with meshes (`model.faces`, or its MANO layer's), else None."""
    faces = getattr(model, "faces", None)
    if faces is None:
        faces = getattr(getattr(model, "hands", None), "faces", None)
    return faces


def to_device(batch: Mapping[str, Any], device: torch.device, channels_last: bool = False) -> dict[str, Any]:
    out = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
    if channels_last and device.type == "cuda":
        out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
    return out


def batch_rows(model: nn.Module, output: Any, batch: Mapping[str, torch.Tensor], families: list[str],
               keep: int | None = None) -> tuple[Rows, dict[str, Rows]]:
    """(prediction rows, {family: ground-truth rows}) of the first `keep` samples of one batch:
    3D interchange rows from `model.predict`, or the 2D keypoint rows of `model.eval_rows`."""
    keep = len(batch["id"]) if keep is None else keep
    if groundtruth.HAND2D in families:
        eval_rows = getattr(model, "eval_rows", None)
        if eval_rows is None:
            raise ConfigError(f"key 'evaluation.protocols': {type(model).__name__} has no 2D keypoint "
                              "rows (eval_rows); use a 3D protocol")
        pred_rows, gt_rows = eval_rows(output, batch)
        return _head(pred_rows, keep), {groundtruth.HAND2D: _head(gt_rows, keep)}
    pred_rows = _head(prediction_rows(model.predict(output, batch), batch["id"]), keep)
    real = {k: v[:keep] if torch.is_tensor(v) and v.dim() else v for k, v in batch.items()}
    return pred_rows, {family: groundtruth.ROW_BUILDERS[family](real) for family in families}


@torch.no_grad()
def iterate_rows(model: nn.Module, loader: DataLoader, info: DistInfo, families: list[str],
                 precision: str = "fp32", channels_last: bool = False) -> Iterator[tuple[Rows, dict[str, Rows]]]:
    """(prediction rows, {family: ground-truth rows}) per batch of every rank, yielded on rank 0 only.

    Padding rows of the ShardSampler are dropped before gathering. Every rank must consume the
    iterator (the gathers are collective).
    """
    was_training = model.training
    model.eval()
    remaining = getattr(loader.sampler, "num_real", len(loader.dataset))  # type: ignore[arg-type]
    try:
        for batch in loader:
            batch = to_device(batch, info.device, channels_last)
            with autocast(info.device, precision):
                output = model(batch["image"])
            keep = min(remaining, len(batch["id"]))
            remaining -= keep
            pair = batch_rows(model, output, batch, families, keep)
            for pred_rows, gt_rows in distributed.gather_to_main(pair, info):
                if len(pred_rows["ids"]):
                    yield pred_rows, gt_rows
    finally:
        model.train(was_training)


def _head(rows: Rows, count: int) -> Rows:
    return {k: v[:count] for k, v in rows.items()}

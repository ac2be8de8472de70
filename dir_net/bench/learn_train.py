"""Training for a wall-clock budget (or a step count) and scoring on a split, for `dirnet bench learn`.

The step is the trainer's (dir_net.engine.trainer): the configured optimiser, forward, the model's
`losses`, backward, optional gradient clipping. The learning rate follows the configured schedule
as a function of the *fraction of the budget used* (cosine: warm-up then cosine decay to
`min_factor` at the end of the budget; multistep: milestones at `milestones / epochs` of the
budget), so a run of any length ends with its schedule complete. Evaluation pauses the budget clock.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dir_net.bench.mean_hand import Rows, concat_rows
from dir_net.engine import groundtruth, inference
from dir_net.engine.distributed import ResumableSampler, SeededDataset
from dir_net.engine.optim import make_schedule
from dir_net.engine.trainer import NonFiniteLossError

log = logging.getLogger(__name__)


@dataclass
class Budget:
    """When training stops: after `seconds` of training (evaluation excluded) or `steps` steps."""

    seconds: float | None = None
    steps: int | None = None

    def fraction(self, elapsed_s: float, step: int) -> float:
        """How much of the budget is used, in [0, 1]."""
        parts = []
        if self.seconds:
            parts.append(elapsed_s / self.seconds)
        if self.steps:
            parts.append(step / self.steps)
        return min(max(parts), 1.0) if parts else 1.0


_SCHEDULE_RESOLUTION = 10_000  # schedule steps per configured epoch: the budget maps onto a fine schedule


def lr_factor(train_cfg: Any, fraction: float) -> float:
    """LR multiplier of the configured schedule (dir_net.engine.optim) at `fraction` of the budget: the
    budget stands for the schedule's `epochs`, its warm-up for at most half of them (see the module doc)."""
    schedule = make_schedule(train_cfg, _SCHEDULE_RESOLUTION)
    schedule = dataclasses.replace(schedule, warmup_steps=min(schedule.warmup_steps, schedule.total_steps // 2))
    return schedule(fraction * schedule.total_steps)


@dataclass
class CurvePoint:
    images: int  # training images seen
    steps: int
    train_s: float  # training seconds so far (evaluation excluded)
    metrics: dict[str, dict[str, float]]  # {protocol: {metric: value}}


@dataclass
class TrainRecord:
    steps: int = 0
    images: int = 0
    train_s: float = 0.0  # seconds spent training (evaluation excluded)
    eval_s: float = 0.0
    ended: str = ""  # why training stopped
    final_loss: dict[str, float] = field(default_factory=dict)
    curve: list[CurvePoint] = field(default_factory=list)


def infinite_batches(dataset: Dataset, batch_size: int, num_workers: int, seed: int,
                     device: torch.device) -> Iterator[dict[str, Any]]:
    """Shuffled training batches, epoch after epoch, each sample's augmentation fixed by (seed, epoch, index)."""
    sampler = ResumableSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
    loader = DataLoader(SeededDataset(dataset), batch_size=batch_size, sampler=sampler, drop_last=True,
                        pin_memory=device.type == "cuda", **inference.worker_options(num_workers, persistent=True))
    epoch = 0
    while True:
        sampler.set_position(epoch)
        for batch in loader:
            yield inference.to_device(batch, device)
        epoch += 1


def train_for(model: nn.Module, optimizer: torch.optim.Optimizer, train_cfg: Any, batches: Iterator[dict],
              budget: Budget, evaluate: Callable[[], dict[str, dict[str, float]]] | None = None,
              eval_points: int = 0, progress: Callable[[str], None] | None = None,
              clip_grad_norm: float = 0.0) -> TrainRecord:
    """Train until the budget is used; evaluate `eval_points` times at evenly spaced fractions of it
    (the last at the end) and return the record with the learning curve."""
    record = TrainRecord()
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    marks = [(k + 1) / eval_points for k in range(eval_points)]
    next_report = 0.1
    sums: dict[str, float] = {}
    count = 0
    model.train()
    while True:
        fraction = budget.fraction(record.train_s, record.steps)
        if fraction >= 1.0:
            record.ended = (f"budget used: {record.train_s:.0f} s of training" if budget.seconds else
                            f"budget used: {record.steps} steps")
            break
        start = time.perf_counter()
        for group, lr in zip(optimizer.param_groups, base_lrs):
            group["lr"] = lr * lr_factor(train_cfg, fraction)
        batch = next(batches)
        output = model(batch["image"])
        losses = model.losses(output, batch)
        total = losses["total"]
        if not torch.isfinite(total):
            raise NonFiniteLossError(f"step {record.steps}: non-finite loss "
                                     f"({ {k: float(v) for k, v in losses.items() if '/' not in k} }); "
                                     "lower train.optimizer.lr")
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        optimizer.step()
        record.steps += 1
        record.images += len(batch["image"])
        for name, value in losses.items():
            if "/" not in name:
                sums[name] = sums.get(name, 0.0) + float(value.detach())
        count += 1
        record.train_s += time.perf_counter() - start
        fraction = budget.fraction(record.train_s, record.steps)
        if progress is not None and fraction >= next_report:
            mean = {k: v / count for k, v in sums.items()}
            progress(f"  {fraction:4.0%} of budget: step {record.steps}, {record.images} images, "
                     f"{record.train_s:.0f} s, loss {mean.get('total', float('nan')):.4g}")
            record.final_loss, sums, count = mean, {}, 0
            next_report += 0.1
        while evaluate is not None and marks and fraction >= marks[0] - 1e-9:
            marks.pop(0)
            eval_start = time.perf_counter()
            metrics = evaluate()
            record.eval_s += time.perf_counter() - eval_start
            record.curve.append(CurvePoint(record.images, record.steps, record.train_s, metrics))
            model.train()
            if progress is not None:
                progress(f"  eval after {record.images} images: " + format_metrics(metrics))
    if count:
        record.final_loss = {k: v / count for k, v in sums.items()}
    return record


def format_metrics(metrics: dict[str, dict[str, float]]) -> str:
    parts = []
    for protocol, values in metrics.items():
        shown = [f"{m}={values[m]:.1f}" for m in ("mpjpe", "mpvpe", "miaa") if m in values]
        parts.append(f"{protocol} " + " ".join(shown))
    return "; ".join(parts)


def ground_truth_rows(dataset: Dataset, families: list[str], batch_size: int = 32,
                      num_workers: int = 0) -> dict[str, Rows]:
    """{family: ground-truth rows} of every sample of `dataset` (no model involved)."""
    loader = DataLoader(dataset, batch_size=batch_size, **inference.worker_options(num_workers, persistent=False))
    parts: dict[str, list[Rows]] = {family: [] for family in families}
    for batch in loader:
        for family in families:
            parts[family].append(groundtruth.ROW_BUILDERS[family](batch))
    return {family: concat_rows(rows) for family, rows in parts.items()}


@torch.no_grad()
def predict_rows(model: nn.Module, loader: DataLoader, device: torch.device) -> Rows:
    """Interchange prediction rows (mm, crop px) of every sample the loader gives."""
    was_training = model.training
    model.eval()
    parts = []
    try:
        for batch in loader:
            batch = inference.to_device(batch, device)
            parts.append(inference.prediction_rows(model.predict(model(batch["image"]), batch), batch["id"]))
    finally:
        model.train(was_training)
    return concat_rows(parts)


def score(pred: Rows, gt_by_family: dict[str, Rows], protocols: list[str]) -> dict[str, dict[str, float]]:
    """{protocol: metrics}: each protocol on its own family's rows (the predictions matched by id)."""
    from eval import evaluate

    results: dict[str, dict[str, float]] = {}
    for family, names in groundtruth.group_protocols(protocols).items():
        gt = gt_by_family.get(family)
        if not gt:
            continue
        keep = np.isin(pred["ids"], gt["ids"])
        rows = {k: v[keep] for k, v in pred.items()}
        results.update(evaluate(rows, gt, names, iv=False).compute())
    return results

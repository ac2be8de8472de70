"""`dirnet eval run`: a checkpoint over a split -> interchange files, metrics, table, PCK plot.

Each protocol is scored on the ground truth it is defined on (dir_net.engine.groundtruth): the
`mano` family (wrist_scaled, mcp_scaled, mcp) on MANO-regressed joints of interacting frames with
both MANO fits, the `annot` family (moon) on the annotated joints with joint_valid over every frame
(data.hand_types / data.require_mano are relaxed for it), 2D keypoint protocols on per-hand rows.

Output directory:
  predictions.npz                    every evaluated sample (interchange format, millimetres)
  groundtruth_{family}.npz           one per scored family (mano, annot or hand2d): the rows and
                                     ground truth its protocols are scored on
  metrics.json                       {protocol: {metric: value}} (same as `dirnet eval score --json`)
  metrics.md                         markdown table, metrics x protocols, with each protocol's
                                     ground truth and row count
  metrics.csv                        header + one row (run, checkpoint, step, split, samples, then
                                     per protocol its ground truth, rows and metrics)
  pck.png                            PCK curves (0-50 mm) of every 3D protocol
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dir_net.config import Config, load_config
from dir_net.engine import checkpoint as ckpt_lib
from dir_net.engine import distributed, groundtruth, inference, runtime
from dir_net.engine.trainer import (
    DatasetFactory, ModelFactory, _default_dataset_factory, _default_model_factory, apply_model_pipeline,
)
from dir_net.errors import CheckpointError
from dir_net.utils.io import write_json, write_text

log = logging.getLogger(__name__)

Results = Mapping[str, Mapping[str, float]]
GroundTruthInfo = Mapping[str, tuple[str, int]]  # protocol -> (family, rows)


@dataclass
class EvalResult:
    out_dir: Path
    results: dict[str, dict[str, float]]
    num_samples: int  # evaluated samples (rows of predictions.npz)
    files: dict[str, Path]
    ground_truth: dict[str, tuple[str, int]] = field(default_factory=dict)  # protocol -> (family, rows)


def config_from_checkpoint(checkpoint: str | Path, overrides: list[str]) -> Config:
    """The resolved config stored in a checkpoint, re-checked against the current schema."""
    import yaml

    ckpt = ckpt_lib.read_checkpoint(checkpoint)
    if not isinstance(ckpt.get("config"), dict):
        raise CheckpointError(f"{checkpoint}: holds no config; pass --config")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"config_of_{Path(checkpoint).stem}.yaml"
        path.write_text(yaml.safe_dump(ckpt["config"], sort_keys=False))
        return load_config(path, overrides)


def default_out_dir(checkpoint: str | Path, split: str) -> Path:
    """`{run}/eval/{split}` for `{run}/checkpoints/*.pt`, else `{checkpoint dir}/eval/{split}`."""
    parent = Path(checkpoint).resolve().parent
    run_dir = parent.parent if parent.name == "checkpoints" else parent
    return run_dir / "eval" / split


def evaluate_checkpoint(cfg: Config, checkpoint: str | Path, split: str, out_dir: str | Path,
                        model_factory: ModelFactory | None = None,
                        dataset_factory: DatasetFactory | None = None) -> EvalResult:
    """Run the model of `checkpoint` over `split`, score it and write every output file."""
    runtime.check_engine_config(cfg)
    cfg = apply_model_pipeline(cfg)
    protocols = inference.protocols_for(cfg)
    groundtruth.check_ground_truth(cfg, protocols)
    cfg = groundtruth.select_frames(cfg, protocols)
    info = distributed.init_distributed(cfg.train.device)
    precision = runtime.resolve_precision(cfg.train.precision, info.device)
    dataset = (dataset_factory or _default_dataset_factory)(cfg, split, False)
    model = (model_factory or _default_model_factory)(cfg)
    ckpt = ckpt_lib.load_model_weights(checkpoint, model)
    model.to(info.device)
    evaluator = inference.evaluator_for(cfg, split, protocols)
    families = list(evaluator.groups)
    faces = None if groundtruth.HAND2D in families else inference.model_faces(model)
    faces_np = None if faces is None else faces.detach().cpu().numpy().astype(np.int64)
    loader = inference.make_eval_loader(dataset, cfg.evaluation.batch_size, cfg.train.num_workers, info)
    pred_parts: list[dict[str, np.ndarray]] = []
    gt_parts: dict[str, list[dict[str, np.ndarray]]] = {family: [] for family in families}
    for pred_rows, gt_rows in inference.iterate_rows(model, loader, info, families, precision):
        batch_pred = pred_rows if faces_np is None or not cfg.evaluation.iv else {**pred_rows, "faces": faces_np}
        evaluator.update(batch_pred, gt_rows, str(checkpoint), f"{split} split")
        pred_parts.append(pred_rows)
        for family, rows in gt_rows.items():
            gt_parts[family].append(rows)
    if not info.is_main:
        return EvalResult(Path(out_dir), {}, 0, {})
    results = evaluator.compute()
    ground_truth = evaluator.ground_truth()
    for protocol, (family, rows) in ground_truth.items():
        if not rows:
            log.warning("protocol %s: no sample of the %s split has its ground truth (%s)", protocol, split,
                        groundtruth.DESCRIPTIONS[family])
    predictions = _concat(pred_parts)
    if faces_np is not None:
        predictions["faces"] = faces_np
    predictions.update(inference.prediction_meta(cfg))  # crop size, model, crop convention
    groundtruths = {family: _concat(parts) for family, parts in gt_parts.items()
                    if sum(len(p["ids"]) for p in parts)}
    meta = {"run": cfg.experiment.name, "checkpoint": str(checkpoint), "step": ckpt.get("step", ""),
            "split": split, "samples": len(predictions["ids"])}
    files = write_outputs(Path(out_dir), predictions, groundtruths, results, evaluator.pck_curves(), meta,
                          ground_truth)
    return EvalResult(Path(out_dir), results, len(predictions["ids"]), files, ground_truth)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not parts:
        raise ValueError("no samples were evaluated")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def write_outputs(out_dir: Path, predictions: dict[str, np.ndarray],
                  groundtruths: Mapping[str, dict[str, np.ndarray]], results: Results,
                  curves: Mapping[str, Any], meta: Mapping[str, Any],
                  ground_truth: GroundTruthInfo) -> dict[str, Path]:
    """Write predictions.npz, groundtruth_{family}.npz, metrics.{json,md,csv} and pck.png."""
    from eval.io import save_npz
    from eval.plots import plot_pck_curves

    files = {"predictions.npz": out_dir / "predictions.npz"}
    save_npz(files["predictions.npz"], predictions)
    for family, rows in groundtruths.items():
        name = f"groundtruth_{family}.npz"
        files[name] = out_dir / name
        save_npz(files[name], rows)
    for name in ("metrics.json", "metrics.md", "metrics.csv"):
        files[name] = out_dir / name
    write_json(files["metrics.json"], {p: dict(m) for p, m in results.items()})
    write_text(files["metrics.md"], markdown_table(results, meta, ground_truth))
    write_text(files["metrics.csv"], csv_row(results, meta, ground_truth))
    if curves:
        files["pck.png"] = out_dir / "pck.png"
        plot_pck_curves(curves, files["pck.png"], title=f"PCK, {meta['run']} ({meta['split']})")
    return files


def _metric_names_units() -> tuple[list[str], dict[str, str]]:
    """Every metric of the toolkit in report order (3D, then 2D keypoints) and its unit."""
    from eval import METRIC_NAMES
    from eval.cli import UNITS
    from eval.keypoints2d import KEYPOINT_METRICS, UNITS_2D

    return list(dict.fromkeys([*METRIC_NAMES, *KEYPOINT_METRICS])), {**UNITS, **UNITS_2D}


def markdown_table(results: Results, meta: Mapping[str, Any], ground_truth: GroundTruthInfo) -> str:
    """Metrics as rows, protocols as columns, with units; a caption line names the run, two rows
    name each protocol's ground truth and row count, and a legend describes the ground truths."""
    names, units = _metric_names_units()
    protocols = list(results)
    metrics = [m for m in names if any(m in r for r in results.values())]
    families = [ground_truth[p][0] if p in ground_truth else "-" for p in protocols]
    lines = [
        f"**{meta['run']}**, checkpoint `{meta['checkpoint']}` (step {meta['step']}), "
        f"split {meta['split']}, {meta['samples']} samples",
        "",
        "| metric | unit | " + " | ".join(protocols) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in protocols) + " |",
        "| ground truth | - | " + " | ".join(families) + " |",
        "| rows | - | " + " | ".join(str(ground_truth[p][1]) if p in ground_truth else "-" for p in protocols) + " |",
    ]
    for metric in metrics:
        cells = [_fmt(results[p].get(metric), units[metric]) for p in protocols]
        lines.append(f"| {metric} | {units[metric] or '-'} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(f"- ground truth `{family}`: {groundtruth.DESCRIPTIONS[family]}"
                 for family in dict.fromkeys(f for f in families if f != "-"))
    return "\n".join(lines) + "\n"


def csv_row(results: Results, meta: Mapping[str, Any], ground_truth: GroundTruthInfo) -> str:
    """A header and one row: run metadata, then per protocol `protocol/ground_truth`,
    `protocol/rows` and `protocol/metric` columns."""
    names, _ = _metric_names_units()
    columns: list[str] = []
    values: list[str] = []
    for protocol, metrics in results.items():
        if protocol in ground_truth:
            family, rows = ground_truth[protocol]
            columns += [f"{protocol}/ground_truth", f"{protocol}/rows"]
            values += [family, str(rows)]
        for metric in (m for m in names if m in metrics):
            columns.append(f"{protocol}/{metric}")
            values.append(f"{metrics[metric]:.6g}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*meta.keys(), *columns])
    writer.writerow([*meta.values(), *values])
    return buffer.getvalue()


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if unit == "" else f"{value:.2f}"

"""`dirnet eval run`: a checkpoint over a split -> interchange files, metrics, table, PCK plot.

Output directory:
  predictions.npz, groundtruth.npz   interchange files (docs/EVALUATION.md, millimetres); the ground
                                     truth also has verts_valid (N, 2): hands with a GT (MANO) mesh
  metrics.json                       {protocol: {metric: value}} (same as `dirnet eval score --json`)
  metrics.md                         markdown table, metrics x protocols
  metrics.csv                        header + one row (run, checkpoint, step, split, samples, metrics)
  pck.png                            PCK curves (0-50 mm) of every protocol
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dir_net.config import Config, load_config
from dir_net.engine import checkpoint as ckpt_lib
from dir_net.engine import distributed, inference, runtime
from dir_net.engine.trainer import (
    DatasetFactory, ModelFactory, _default_dataset_factory, _default_model_factory, apply_model_pipeline,
)
from dir_net.errors import CheckpointError
from dir_net.utils.io import write_json, write_text

log = logging.getLogger(__name__)

Results = Mapping[str, Mapping[str, float]]


@dataclass
class EvalResult:
    out_dir: Path
    results: dict[str, dict[str, float]]
    num_samples: int
    files: dict[str, Path]


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


def warn_ground_truth(cfg: Config) -> None:
    """Log when a protocol's ground truth is not what the data pipeline provides as joints_3d."""
    protocols = inference.protocols_for(cfg)
    mano_joints = cfg.data.get("pipeline") == "dir" and cfg.data.get("dir", {}).get("joints_from_mano", False)
    if "moon" in protocols and mano_joints:
        log.warning("protocol 'moon' is defined on joint_3d.json joints, but the dir pipeline gives "
                    "MANO-regressed joints; pass data.dir.joints_from_mano=false to score it as published")
    dir_protocols = [p for p in protocols if p != "moon"]
    if dir_protocols and cfg.data.get("pipeline") == "internet":
        log.warning("protocols %s are defined on MANO-regressed joints; the internet pipeline gives "
                    "joint_3d.json joints", dir_protocols)


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
    warn_ground_truth(cfg)
    info = distributed.init_distributed(cfg.train.device)
    precision = runtime.resolve_precision(cfg.train.precision, info.device)
    dataset = (dataset_factory or _default_dataset_factory)(cfg, split, False)
    model = (model_factory or _default_model_factory)(cfg)
    ckpt = ckpt_lib.load_model_weights(checkpoint, model)
    model.to(info.device)
    protocols = inference.protocols_for(cfg)
    keypoints2d = inference.is_keypoints2d(protocols)
    evaluator = inference.make_evaluator(protocols, iv=cfg.evaluation.iv)
    faces = None if keypoints2d else inference.model_faces(model)
    faces_np = None if faces is None else faces.detach().cpu().numpy().astype(np.int64)
    loader = inference.make_eval_loader(dataset, cfg.evaluation.batch_size, cfg.train.num_workers, info)
    pred_parts: list[dict[str, np.ndarray]] = []
    gt_parts: list[dict[str, np.ndarray]] = []
    for pred_rows, gt_rows in inference.iterate_rows(model, loader, info, precision, keypoints2d=keypoints2d):
        batch_pred = pred_rows if faces_np is None or not cfg.evaluation.iv else {**pred_rows, "faces": faces_np}
        evaluator.update(batch_pred, gt_rows, str(checkpoint), f"{split} split")
        pred_parts.append(pred_rows)
        gt_parts.append(gt_rows)
    if not info.is_main:
        return EvalResult(Path(out_dir), {}, 0, {})
    results = evaluator.compute()
    predictions, groundtruth = _concat(pred_parts), _concat(gt_parts)
    if faces_np is not None:
        predictions["faces"] = faces_np
    curves = evaluator.pck_curves() if hasattr(evaluator, "pck_curves") else {}
    files = write_outputs(Path(out_dir), predictions, groundtruth, results, curves,
                          meta={"run": cfg.experiment.name, "checkpoint": str(checkpoint),
                                "step": ckpt.get("step", ""), "split": split,
                                "samples": len(groundtruth["ids"])})
    return EvalResult(Path(out_dir), results, len(groundtruth["ids"]), files)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not parts:
        raise ValueError("no samples were evaluated")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def write_outputs(out_dir: Path, predictions: dict[str, np.ndarray], groundtruth: dict[str, np.ndarray],
                  results: Results, curves: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Path]:
    from eval.io import save_npz
    from eval.plots import plot_pck_curves

    files = {name: out_dir / name for name in
             ("predictions.npz", "groundtruth.npz", "metrics.json", "metrics.md", "metrics.csv", "pck.png")}
    save_npz(files["predictions.npz"], predictions)
    save_npz(files["groundtruth.npz"], groundtruth)
    write_json(files["metrics.json"], {p: dict(m) for p, m in results.items()})
    write_text(files["metrics.md"], markdown_table(results, meta))
    write_text(files["metrics.csv"], csv_row(results, meta))
    if curves:
        plot_pck_curves(curves, files["pck.png"], title=f"PCK, {meta['run']} ({meta['split']})")
    else:
        del files["pck.png"]
    return files


def _metric_names_units() -> tuple[list[str], dict[str, str]]:
    """Every metric of the toolkit in report order (3D, then 2D keypoints) and its unit."""
    from eval import METRIC_NAMES
    from eval.cli import UNITS
    from eval.keypoints2d import KEYPOINT_METRICS, UNITS_2D

    return list(dict.fromkeys([*METRIC_NAMES, *KEYPOINT_METRICS])), {**UNITS, **UNITS_2D}


def markdown_table(results: Results, meta: Mapping[str, Any]) -> str:
    """Metrics as rows, protocols as columns, with units; a caption line names the run."""
    names, units = _metric_names_units()
    protocols = list(results)
    metrics = [m for m in names if any(m in r for r in results.values())]
    lines = [
        f"**{meta['run']}**, checkpoint `{meta['checkpoint']}` (step {meta['step']}), "
        f"split {meta['split']}, {meta['samples']} samples",
        "",
        "| metric | unit | " + " | ".join(protocols) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in protocols) + " |",
    ]
    for metric in metrics:
        cells = [_fmt(results[p].get(metric), units[metric]) for p in protocols]
        lines.append(f"| {metric} | {units[metric] or '-'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_row(results: Results, meta: Mapping[str, Any]) -> str:
    """A header and one row: run metadata, then `protocol/metric` columns."""
    names, _ = _metric_names_units()
    columns = [f"{p}/{m}" for p in results for m in names if m in results[p]]
    values = [results[c.split("/")[0]][c.split("/")[1]] for c in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*meta.keys(), *columns])
    writer.writerow([*meta.values(), *(f"{v:.6g}" for v in values)])
    return buffer.getvalue()


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if unit == "" else f"{value:.2f}"

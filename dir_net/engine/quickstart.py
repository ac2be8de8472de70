"""`dirnet quickstart` (scripts/train.sh without arguments): the whole loop on synthetic data.

1. generate the synthetic InterHand2.6M-format dataset at `data.root` if it is missing,
2. train (resuming the quickstart run if one exists),
3. evaluate the best (else last) checkpoint on the test split,
4. render a figure of test samples (input | prediction | ground truth),
and print where the metrics table, TensorBoard logs, checkpoint and figure are.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from dir_net.config import Config
from dir_net.engine import inference, preview
from dir_net.engine.checkpoint import load_model_weights
from dir_net.engine.evaluation import evaluate_checkpoint
from dir_net.engine.trainer import Trainer, _default_model_factory, apply_model_pipeline

log = logging.getLogger(__name__)

SYNTH_SEED = 0
SYNTH_CAMERAS = 2


def ensure_synthetic_data(root: Path, frames: int) -> None:
    """Write the synthetic dataset (train/val/test) unless `root` already holds annotations."""
    if (root / "annotations").is_dir():
        log.info("dataset found at %s", root)
        return
    from dir_net.data.synth import generate

    log.info("generating the synthetic dataset at %s (%d frames x %d cameras per split)", root, frames, SYNTH_CAMERAS)
    generate(root, frames=frames, seed=SYNTH_SEED, splits=["train", "val", "test"], cameras=SYNTH_CAMERAS)


def run_quickstart(cfg: Config, frames: int) -> dict[str, Path]:
    """Data -> training -> evaluation -> figure; returns (and prints) the output paths."""
    start = time.perf_counter()
    cfg = apply_model_pipeline(cfg)
    ensure_synthetic_data(Path(cfg.data.root), frames)
    result = Trainer(cfg, resume="auto").fit()
    checkpoint = result.best_checkpoint or result.last_checkpoint
    split = cfg.evaluation.split
    evaluation = evaluate_checkpoint(cfg, checkpoint, split, result.run_dir / "eval" / split)
    figure = result.run_dir / "figure.png"
    save_results_figure(cfg, checkpoint, split, figure)
    outputs = {
        "metrics table": evaluation.files["metrics.md"],
        "TensorBoard logs": result.run_dir / "tb",
        "checkpoint": checkpoint,
        "figure": figure,
    }
    print(evaluation.files["metrics.md"].read_text())
    print(f"quickstart finished in {time.perf_counter() - start:.0f} s")
    for name, path in outputs.items():
        print(f"  {name + ':':18s}{path.resolve()}")
    print(f"  (tensorboard --logdir {(result.run_dir / 'tb').resolve()})")
    return outputs


def save_results_figure(cfg: Config, checkpoint: Path, split: str, path: Path, count: int = 4) -> Path:
    """Rows of input | prediction | prediction side view | ground truth | ground truth side view."""
    from dir_net.data import build_dataset
    from dir_net.render.figures import grid, save_figure

    model = _default_model_factory(cfg)
    load_model_weights(checkpoint, model)
    model.eval()
    dataset = build_dataset(cfg, split, False)
    batch = _spread_batch(dataset, count)
    with torch.no_grad():
        pred = model.predict(model(batch["image"]), batch)
    faces = inference.model_faces(model)
    panels = _mesh_panels(batch, pred, faces) if faces is not None else None
    if panels is None:
        panels = _skeleton_panels(batch, pred)
    return save_figure(path, grid(panels, ncols=1))


def _spread_batch(dataset: Dataset, count: int) -> dict[str, torch.Tensor]:
    length = len(dataset)  # type: ignore[arg-type]
    indices = np.linspace(0, length - 1, num=min(count, length)).round().astype(int)
    return default_collate([dataset[int(i)] for i in indices])


def _mesh_panels(batch: dict, pred, faces: torch.Tensor) -> list[np.ndarray] | None:
    from dir_net import render
    from dir_net.render.figures import sample_panel

    faces_np = faces.cpu().numpy()
    size = batch["image"].shape[-1]
    try:
        with render.Renderer(size, size) as renderer:
            panels = []
            for i in range(len(batch["image"])):
                pred_present = preview.predicted_present(pred, i)
                found = preview.prediction_meshes(batch, pred, i, faces_np, size, pred_present)
                if found is None or not pred_present.any():
                    return None
                pred_meshes, pred_camera = found
                gt_present = preview.groundtruth_present(batch, i)
                gt_meshes = None
                if "verts_3d" in batch and gt_present.any():  # frames without a MANO fit have no GT mesh
                    gt_meshes = render.hand_meshes(batch["verts_3d"][i].numpy(), faces_np, gt_present)
                panels.append(sample_panel(renderer, preview.denormalize(batch["image"][i]), pred_camera,
                                           pred_meshes, gt_meshes, batch["K_crop"][i].numpy()))
            return panels
    except render.RenderUnavailableError as exc:
        log.warning("no OpenGL for mesh rendering (%s); the figure shows 2D skeletons", exc)
        return None


def _skeleton_panels(batch: dict, pred) -> list[np.ndarray]:
    from dir_net.render.figures import side_by_side

    panels = []
    for i in range(len(batch["image"])):
        image = preview.denormalize(batch["image"][i])
        columns, names = [image], ["input"]
        if pred.joints_2d is not None:
            columns.append(preview.draw_skeletons(image, pred.joints_2d[i].float().numpy(),
                                                  preview.predicted_present(pred, i)))
            names.append("prediction")
        columns.append(preview.draw_skeletons(image, batch["joints_2d"][i].numpy(),
                                              preview.groundtruth_present(batch, i)))
        names.append("ground truth")
        panels.append(side_by_side(columns, names))
    return panels

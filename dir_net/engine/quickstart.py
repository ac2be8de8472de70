"""`dirnet quickstart` (scripts/train.sh without arguments): the whole loop on synthetic data.

1. generate the synthetic InterHand2.6M-format dataset at `data.root` if it is missing,
2. prepare it as `dirnet data prepare` does: index and verify every split, render the train split's
   seg/dense maps (so every DIR loss term is active),
3. train (resuming the quickstart run if one exists),
4. evaluate the best (else last) checkpoint on the test split,
5. render a figure of test samples (input | predicted segmentation | meshes | ground truth),
and print where the metrics table, TensorBoard logs, checkpoint and figure are, and the time per step.
On the CPU, torch uses one thread fewer per loader worker than there are cores
(see `dir_net.engine.runtime.cpu_threads`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from dir_net.config import Config
from dir_net.engine import inference, preview
from dir_net.engine.checkpoint import load_model_weights
from dir_net.engine.evaluation import evaluate_checkpoint
from dir_net.engine.runtime import cpu_thread_limit
from dir_net.engine.trainer import Trainer, _default_model_factory, apply_model_pipeline
from dir_net.errors import DataError

log = logging.getLogger(__name__)

SYNTH_SEED = 0
SYNTH_CAMERAS = 4  # 4 views of every frame: 4x the training crops for the same rendered poses
# Every frame its own pose and background: with the generator's 8-frame sequences (one background per
# camera and sequence) a network memorises background -> pose (docs/BENCHMARKS.md, "Learning").
SYNTH_FRAMES_PER_SEQUENCE = 1
HELD_OUT_FRACTION = {"val": 0.25, "test": 0.5}  # frames of the val / test splits per training frame


def ensure_synthetic_data(cfg: Config, frames: int, splits: Sequence[str]) -> None:
    """Write the synthetic dataset at `data.root` unless it is there. A folder that already has
    content but no finished synthetic dataset is used as it is (e.g. InterHand2.6M) when it has
    every split, and is never written into: an interrupted generation is reported instead."""
    from dir_net.data import split_files
    from dir_net.data.synth import COMPLETE_MARKER, generate, is_complete

    root = Path(cfg.data.root)
    if is_complete(root):
        log.info("synthetic dataset found at %s", root)
        return
    if root.is_dir() and any(root.iterdir()):
        try:
            for split in splits:
                split_files(cfg, split)
        except DataError as exc:
            raise DataError(f"{exc}. {root} is not a finished synthetic dataset (no {COMPLETE_MARKER}; an "
                            "interrupted generation?): delete the folder to have it generated again, or set "
                            "data.root") from None
        log.info("dataset found at %s", root)
        return
    counts = split_frames(frames, splits)
    log.info("generating the synthetic dataset at %s (%s frames x %d cameras)", root,
             ", ".join(f"{split} {n}" for split, n in counts.items()), SYNTH_CAMERAS)
    for split, n in counts.items():  # the marker of a finished dataset is written by the last split only
        generate(root, frames=n, seed=SYNTH_SEED, splits=[split], cameras=SYNTH_CAMERAS,
                 frames_per_sequence=SYNTH_FRAMES_PER_SEQUENCE)
        if split != list(counts)[-1]:
            (root / COMPLETE_MARKER).unlink()


def split_frames(frames: int, splits: Sequence[str]) -> dict[str, int]:
    """Frames per split: `frames` for train, fewer for the held-out splits (HELD_OUT_FRACTION)."""
    return {split: max(1, round(frames * HELD_OUT_FRACTION.get(split, 1.0))) for split in dict.fromkeys(splits)}


def prepare_splits(cfg: Config, splits: Sequence[str]) -> None:
    """`dirnet data prepare` for the quickstart: index and verify each split (black-frame flags)
    and render the seg/dense maps of the train split, which the DIR losses seg_ce, seg_lovasz and
    dense need (validation and evaluation do not read them). Maps already on disk are kept."""
    from dir_net.data import split_files
    from dir_net.data.quality import prepare

    for split in dict.fromkeys(splits):
        report = prepare(cfg, split_files(cfg, split), aux=split == "train")
        if "aux_maps" in report:
            log.info("%s split seg/dense maps: %s", split,
                     ", ".join(f"{count} {outcome}" for outcome, count in report["aux_maps"].items()))


class QuickstartStopped(Exception):
    """A signal stopped training: no evaluation or figure; running the quickstart again resumes."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


@contextlib.contextmanager
def _timed(times: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    times[name] = time.perf_counter() - start


def run_quickstart(cfg: Config, frames: int) -> dict[str, Path]:
    """Data -> prepare -> training -> evaluation -> figure; returns (and prints) the output paths."""
    cfg = apply_model_pipeline(cfg)
    with cpu_thread_limit(cfg):
        return _run(cfg, frames)


def _run(cfg: Config, frames: int) -> dict[str, Path]:
    start = time.perf_counter()
    times: dict[str, float] = {}
    split = cfg.evaluation.split
    splits = ["train", cfg.train.val_split, split]
    with _timed(times, "data"):
        ensure_synthetic_data(cfg, frames, splits)
        prepare_splits(cfg, splits)
    with _timed(times, "training"):
        result = Trainer(cfg, resume="auto").fit()
    if result.stopped_by is not None:  # the trainer saved a checkpoint and logged how it ended
        raise QuickstartStopped(result.stopped_by)
    checkpoint = result.best_checkpoint or result.last_checkpoint
    with _timed(times, "evaluation"):
        evaluation = evaluate_checkpoint(cfg, checkpoint, split, result.run_dir / "eval" / split)
    figure = result.run_dir / "figure.png"
    with _timed(times, "figure"):
        save_results_figure(cfg, checkpoint, split, figure)
    outputs = {
        "metrics table": evaluation.files["metrics.md"],
        "TensorBoard logs": result.run_dir / "tb",
        "checkpoint": checkpoint,
        "figure": figure,
    }
    print(evaluation.files["metrics.md"].read_text())
    with _timed(times, "baseline"):
        print(judge_table(cfg, evaluation.files))
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items())
    print(f"quickstart finished in {time.perf_counter() - start:.0f} s ({steps})")
    for name, path in outputs.items():
        print(f"  {name + ':':18s}{path.resolve()}")
    print(f"  (tensorboard --logdir {(result.run_dir / 'tb').resolve()})")
    return outputs


def bone_length_ratio(pred_joints: np.ndarray, gt_joints: np.ndarray) -> float:
    """Median over bones and hands of |predicted bone| / |GT bone|; joints (N, 2, 21, 3), wrist-first.
    About 1 for hand-shaped predictions; well below 1 for meshes collapsed towards the wrist."""
    from mano.joints import BONES

    parent, child = np.array(BONES).T
    pred = np.linalg.norm(pred_joints[:, :, child] - pred_joints[:, :, parent], axis=-1)  # (N, 2, 20)
    gt = np.linalg.norm(gt_joints[:, :, child] - gt_joints[:, :, parent], axis=-1)
    return float(np.median(pred / np.maximum(gt, 1e-9)))


def judge_table(cfg: Config, files: dict[str, Path]) -> str:
    """How to judge the quickstart's figures: the model beside the mean hand of the training split
    (dir_net.bench.mean_hand) on the same test rows, and the bone-length ratio of its meshes."""
    from dir_net.bench.learn_train import ground_truth_rows
    from dir_net.bench.mean_hand import score_mean_hand
    from dir_net.data import build_dataset
    from dir_net.engine import groundtruth
    from eval import evaluate, load_npz

    protocols = inference.protocols_for(cfg)
    pred = load_npz(files["predictions.npz"], "pred")
    families = [f for f in groundtruth.group_protocols(protocols) if f"groundtruth_{f}.npz" in files]
    train_rows = ground_truth_rows(build_dataset(groundtruth.select_frames(cfg, protocols), "train", False), families)
    lines = ["| protocol | metric | model | mean hand | model / mean hand |", "| --- | --- | ---: | ---: | ---: |"]
    ratio_line = ""
    for family in families:
        names = groundtruth.group_protocols(protocols)[family]
        test_rows = dict(load_npz(files[f"groundtruth_{family}.npz"], "gt"))
        if not train_rows.get(family) or not len(test_rows["ids"]):
            continue
        keep = np.isin(pred["ids"], test_rows["ids"])
        model_rows = {k: v if k == "faces" else v[keep] for k, v in pred.items()}
        model = evaluate(model_rows, test_rows, names, iv=False).compute()
        mean = score_mean_hand(train_rows[family], {k: v for k, v in test_rows.items() if k != "faces"}, names)
        for name in names:
            for metric in ("mpjpe", "mpvpe", "miaa"):
                if metric in model.get(name, {}) and metric in mean.get(name, {}):
                    a, b = model[name][metric], mean[name][metric]
                    unit = "px" if metric == "miaa" else "mm"
                    lines.append(f"| {name} | {metric} ({unit}) | {a:.2f} | {b:.2f} | {a / b:.2f} |")
        if family == groundtruth.MANO:
            model_joints = model_rows["joints"][np.argsort(model_rows["ids"])]
            gt_joints = test_rows["joints"][np.argsort(test_rows["ids"])]
            ratio_line = (f"predicted / GT bone length, median over the test hands: "
                          f"{bone_length_ratio(model_joints, gt_joints):.2f} (1 = hand-shaped)")
    head = ("Judge the model against the mean hand (the training split's average hand, the same for "
            "every image): below 1 in the last column, it has learned something from the images.")
    return "\n".join([head, "", *lines, "", ratio_line]) + "\n"


def save_results_figure(cfg: Config, checkpoint: Path, split: str, path: Path, count: int = 4) -> Path:
    """Rows of input | predicted segmentation (DIR's aux head) | prediction | prediction side view |
    ground truth | ground truth side view (2D skeletons instead of meshes without OpenGL)."""
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


def segmentation_overlay(image: np.ndarray, seg_logits: torch.Tensor) -> np.ndarray:
    """Predicted segmentation (3, h, w) logits (background, right, left) blended over an RGB uint8
    image (H, W, 3) in the hand colours (right blue, left orange)."""
    import cv2

    from dir_net.render import HAND_COLORS

    labels = seg_logits.argmax(0).cpu().numpy().astype(np.uint8)  # (h, w)
    labels = cv2.resize(labels, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    palette = np.array([(0.0, 0.0, 0.0), *HAND_COLORS]) * 255.0
    out = image.astype(np.float64)
    hand = labels > 0
    out[hand] = 0.4 * out[hand] + 0.6 * palette[labels[hand]]
    return (out + 0.5).astype(np.uint8)


def _input_columns(image: np.ndarray, pred, i: int) -> tuple[list[np.ndarray], list[str]]:
    """The input crop, and the predicted segmentation over it when the model has one."""
    aux = getattr(pred, "aux", None) or {}
    if "seg" not in aux:
        return [image], ["input"]
    return [image, segmentation_overlay(image, aux["seg"][i])], ["input", "segmentation"]


def _mesh_panels(batch: dict, pred, faces: torch.Tensor) -> list[np.ndarray] | None:
    from dir_net import render
    from dir_net.render.figures import side_by_side

    faces_np = faces.cpu().numpy()
    size = batch["image"].shape[-1]
    blank = np.full((size, size, 3), 255, np.uint8)
    try:
        with render.Renderer(size, size) as renderer:
            panels = []
            for i in range(len(batch["image"])):
                pred_present = preview.predicted_present(pred, i)
                found = preview.prediction_meshes(batch, pred, i, faces_np, size, pred_present)
                if found is None or not pred_present.any():
                    return None
                pred_meshes, pred_camera = found
                image = preview.denormalize(batch["image"][i])
                columns, names = _input_columns(image, pred, i)
                columns += [renderer.overlay(image, pred_meshes, pred_camera), renderer.side_view(pred_meshes).rgb]
                names += ["prediction", "prediction (side)"]
                gt_present = preview.groundtruth_present(batch, i)
                if "verts_3d" in batch and gt_present.any():
                    gt_meshes = render.hand_meshes(batch["verts_3d"][i].numpy(), faces_np, gt_present)
                    columns += [renderer.overlay(image, gt_meshes, batch["K_crop"][i].numpy()),
                                renderer.side_view(gt_meshes).rgb]
                    names += ["ground truth", "ground truth (side)"]
                else:  # frames without a MANO fit have no GT mesh
                    columns += [blank, blank]
                    names += ["no GT mesh", ""]
                panels.append(side_by_side(columns, names))
            return panels
    except render.RenderUnavailableError as exc:
        log.warning("no OpenGL for mesh rendering (%s); the figure shows 2D skeletons", exc)
        return None


def _skeleton_panels(batch: dict, pred) -> list[np.ndarray]:
    from dir_net.render.figures import side_by_side

    panels = []
    for i in range(len(batch["image"])):
        image = preview.denormalize(batch["image"][i])
        columns, names = _input_columns(image, pred, i)
        if pred.joints_2d is not None:
            columns.append(preview.draw_skeletons(image, pred.joints_2d[i].float().numpy(),
                                                  preview.predicted_present(pred, i)))
            names.append("prediction")
        columns.append(preview.draw_skeletons(image, batch["joints_2d"][i].numpy(),
                                              preview.groundtruth_present(batch, i)))
        names.append("ground truth")
        panels.append(side_by_side(columns, names))
    return panels

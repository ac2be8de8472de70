"""`dirnet render`: qualitative figures of a predictions file on its dataset split.

For every selected annotation id: a panel (input crop | prediction overlay | prediction side view
| ground truth overlay | ground truth side view) as PNG/PDF, the predicted meshes as .obj/.ply
(right, left, both; camera frame, metres); then a grid of all panels, optionally a turntable of
one sample (GIF, or MP4) and the PCK curves of several runs on one axis. Predictions without
vertices (InterNet) are drawn as skeletons. Placement of root-relative predictions: see
dir_net/render/predictions.py (`--place`).

Output directory:
  panels/{id}.{png,pdf}   meshes/{id}_pred_{right,left,both}.{obj,ply}   grid.{png,pdf}
  turntable_{id}.gif|mp4  pck.{png,pdf}   render.json (ids, placement per id, files written)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dir_net.commands.config import add_config_arguments

FIGURE_FORMATS = ("png", "pdf")
CROPS = ("auto", "dir", "internet")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render", help="figures, meshes, turntables and PCK plots of a predictions file (scripts/render.sh)",
        description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pred", required=True, help="predictions.npz (docs/EVALUATION.md interchange format)")
    p.add_argument("--data", required=True, help="InterHand2.6M root the predictions were made on")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--ids", action="append", default=[], help="annotation ids, comma-separated or repeated "
                   "(default: --limit ids spread over the file)")
    p.add_argument("--limit", type=int, default=8, help="samples when --ids is absent (0 = all)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--formats", default="png", help="figure formats, comma-separated: png,pdf")
    p.add_argument("--size", type=int, default=0, help="side of each figure column, px (default: the crop size)")
    p.add_argument("--grid-cols", type=int, default=2, help="panels per row in grid.*")
    p.add_argument("--place", default="auto", choices=("auto", "camera", "fit2d", "gt-root"),
                   help="how root-relative predictions are put into the camera frame")
    p.add_argument("--crop", default="auto", choices=CROPS, help="evaluation crop (data pipeline) the "
                   "predictions' joints_2d refer to; auto: the crop recorded in the file by `dirnet eval` "
                   "(pipeline, crop size), else dir with vertices, internet without")
    p.add_argument("--no-gt", action="store_true", help="leave out the ground-truth columns")
    p.add_argument("--turntable", type=int, metavar="ID", help="write a turntable animation of this id")
    p.add_argument("--turntable-format", default="gif", choices=("gif", "mp4"))
    p.add_argument("--frames", type=int, default=36, help="turntable frames per turn")
    p.add_argument("--pck", action="append", default=[], metavar="PRED.npz", help="a run's predictions for "
                   "the PCK plot (repeat per run); scored against --gt")
    p.add_argument("--pck-label", action="append", default=[], help="legend label per --pck (default: file stem)")
    p.add_argument("--gt", help="ground truth for --pck (default: the file `dirnet eval` wrote beside --pred for "
                                "the protocol: groundtruth_annot.npz for moon, groundtruth_mano.npz otherwise)")
    p.add_argument("--protocol", default="mcp_scaled", help="evaluation protocol of the PCK curves")
    add_config_arguments(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from dir_net.render.predictions import PredictionFile
    from dir_net.utils.io import write_json

    out = Path(args.out)
    formats = parse_formats(args.formats)
    preds = PredictionFile(args.pred)
    ids = parse_ids(args.ids) or preds.default_ids(args.limit)
    preds.check_ids(ids + ([args.turntable] if args.turntable is not None else []))
    pck_inputs, gt_path = pck_inputs_of(args)  # checked before the slow part
    summary: dict[str, Any] = {"predictions": str(args.pred), "ids": ids, "placement": {}, "files": []}
    job = RenderJob(args, preds)
    job.source.check_ids(ids + ([args.turntable] if args.turntable is not None else []))
    with job:
        panels = []
        for ann_id in ids:
            image, mode, files = job.sample(ann_id, out, formats)
            panels.append(image)
            summary["placement"][str(ann_id)] = mode
            summary["files"] += files
        summary["files"] += job.grid(panels, out, formats)
        if args.turntable is not None:
            summary["files"].append(job.turntable(args.turntable, out))
    if pck_inputs:
        summary["files"] += plot_pck(pck_inputs, gt_path, args.protocol, out, formats)
    write_json(out / "render.json", summary)
    for path in summary["files"]:
        print(path)
    return 0


class RenderJob:
    """The dataset, renderer and hand model shared by every sample of one `dirnet render` run."""

    def __init__(self, args: argparse.Namespace, preds: Any) -> None:
        from dir_net.render.samples import DatasetSamples

        cfg = render_config(args, preds)
        cfg.data["root"] = str(args.data)  # set directly: an override value would be parsed as YAML
        self.args, self.preds = args, preds
        self.source = DatasetSamples(cfg, args.split)
        self.faces = self._pred_faces() if preds.has_verts else None
        self._renderer: Any = None

    def __enter__(self) -> "RenderJob":
        from dir_net.render.renderer import Renderer

        self._renderer = Renderer(64, 64)
        return self

    def __exit__(self, *exc: object) -> None:
        self._renderer.close()

    def _pred_faces(self) -> Any:
        from dir_net.errors import DirNetError

        faces = self.preds.faces
        if faces is not None:
            return faces
        num_verts = self.preds.arrays["verts"].shape[2]
        if int(self.source.faces.max()) + 1 != num_verts:
            raise DirNetError(f"{self.preds.path}: field 'verts' has {num_verts} vertices per hand and the file "
                              f"has no 'faces' field; add faces (2, F, 3) for that mesh")
        return self.source.faces

    def drawings(self, ann_id: int) -> tuple[Any, Any, Any, str]:
        """(sample, prediction drawing, GT drawing or None, placement mode) of one id."""
        from dir_net.render.panels import HandsDrawing
        from dir_net.render.predictions import place

        sample = self.source.sample(ann_id)
        row = self.preds.row(ann_id)
        present = row.present(sample.gt_present if sample.gt_present.any() else [True, True])
        t, mode = place(row, present, self.args.place, sample.K, sample.gt_joints, sample.gt_joint_valid)
        verts = None if row.verts is None else row.verts + t
        pred = HandsDrawing(row.joints + t, present, verts, self.faces)
        if self.args.size:
            sample = sample.resized(self.args.size)
        return sample, pred, None if self.args.no_gt else gt_drawing(sample, pred.is_mesh, self.source.faces), mode

    def sample(self, ann_id: int, out: Path, formats: list[str]) -> tuple[Any, str, list[str]]:
        """Panel image, placement mode and files written for one id."""
        from dir_net.render.export import export_hands
        from dir_net.render.figures import save_figure
        from dir_net.render.panels import panel

        sample, pred, gt, mode = self.drawings(ann_id)
        image = panel(self._renderer, sample.image, sample.K, pred, gt, f"input #{ann_id}")
        files = [str(save_figure(out / "panels" / f"{ann_id}.{fmt}", image)) for fmt in formats]
        if pred.is_mesh and pred.present.any():
            files += [str(p) for p in export_hands(out / "meshes", pred.verts, pred.faces, f"{ann_id}_pred",
                                                   present=pred.present)]
        return image, mode, files

    def grid(self, panels: list, out: Path, formats: list[str]) -> list[str]:
        from dir_net.render.figures import grid, save_figure

        image = grid(panels, max(1, min(self.args.grid_cols, len(panels))))
        return [str(save_figure(out / f"grid.{fmt}", image)) for fmt in formats]

    def turntable(self, ann_id: int, out: Path) -> str:
        from dir_net.render.figures import save_animation
        from dir_net.render.panels import turntable

        sample, pred, _, _ = self.drawings(ann_id)
        frames = turntable(self._renderer, pred, sample.image.shape[0], self.args.frames)
        return str(save_animation(out / f"turntable_{ann_id}.{self.args.turntable_format}", frames))


def render_config(args: argparse.Namespace, preds: Any) -> Any:
    """The config whose sample pipeline rebuilds the crop the predictions were made on.

    A predictions file written by `dirnet eval` records its crop (pipeline, crop side, box rules:
    field `crop`); those values are used, and a --config or override that contradicts one of them
    is refused (the drawing would be misplaced). An older file without the field is drawn on the
    crop of --config (defaults: 256 px) and --crop.
    """
    import logging

    from dir_net.config import load_config
    from dir_net.errors import DirNetError

    recorded = preds.crop
    if not recorded:
        crop = args.crop if args.crop != "auto" else ("dir" if preds.has_verts else "internet")
        cfg = load_config(args.config, [*args.overrides, f"data.pipeline={crop}"])
        logging.getLogger(__name__).warning(
            "%s records no crop (field 'crop', written by `dirnet eval`); drawing it on %d px %s crops "
            "(data.image_size, --crop): pass --config with the model's training config if it used others",
            preds.path, cfg.data.image_size, crop)
        return cfg
    if args.crop not in ("auto", recorded.get("data.pipeline")):
        raise DirNetError(f"--crop {args.crop}: {preds.path} was made on {recorded.get('data.pipeline')} crops "
                          "(field 'crop'); drop --crop")
    cfg = load_config(args.config, args.overrides)
    overridden = {text.split("=", 1)[0].strip() for text in args.overrides}
    for key, value in recorded.items():
        current = cfg.get_path(key)
        if (args.config or key in overridden) and not _same_value(current, value):
            source = f"override {key}={current}" if key in overridden else f"--config {args.config} ({key}={current})"
            raise DirNetError(f"{preds.path} was made on crops with {key}={value} (field 'crop'), but the {source} "
                              f"differs; drop it, or render predictions of a model trained with {key}={current}")
        *parents, leaf = key.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        node[leaf] = value
    return cfg


def _same_value(a: Any, b: Any) -> bool:
    import math

    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def gt_drawing(sample: Any, meshes: bool, faces: Any) -> Any:
    """Ground truth in the prediction's style: meshes when the prediction has them and every
    annotated hand has a MANO fit, else the joint_3d skeleton; None without annotated joints."""
    from dir_net.render.panels import HandsDrawing

    if meshes and sample.gt_verts is not None and (sample.gt_mesh_valid == sample.gt_present).all():
        return HandsDrawing(sample.gt_joints, sample.gt_present, sample.gt_verts, faces)
    if sample.gt_joint_valid.any():
        return HandsDrawing(sample.gt_joints, sample.gt_present, joint_valid=sample.gt_joint_valid)
    return None


def parse_ids(values: list[str]) -> list[int]:
    from dir_net.errors import DirNetError

    ids: list[int] = []
    for value in values:
        for text in value.split(","):
            if not text.strip():
                continue
            try:
                ids.append(int(text))
            except ValueError:
                raise DirNetError(f"--ids: expected integer annotation ids, got {text.strip()!r}") from None
    return list(dict.fromkeys(ids))


def parse_formats(text: str) -> list[str]:
    from dir_net.errors import DirNetError

    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad or not formats:
        raise DirNetError(f"--formats: use a comma-separated subset of {','.join(FIGURE_FORMATS)}, got {text!r}")
    return formats


def pck_inputs_of(args: argparse.Namespace) -> tuple[list[tuple[str, Path]], Path | None]:
    """((label, predictions path) per --pck, ground-truth path), checked before any rendering."""
    from dir_net.errors import DirNetError
    from eval import PROTOCOLS

    if not args.pck:
        return [], None
    if args.protocol not in PROTOCOLS:
        raise DirNetError(f"--protocol: unknown protocol {args.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    labels = args.pck_label or [Path(p).stem if Path(p).stem != "predictions" else Path(p).parent.name
                                for p in args.pck]
    if len(labels) != len(args.pck):
        raise DirNetError(f"--pck-label: got {len(labels)} labels for {len(args.pck)} --pck files; give one each")
    family = "annot" if PROTOCOLS[args.protocol].masking else "mano"  # moon, mmpose: annotated joints
    gt = Path(args.gt) if args.gt else Path(args.pred).with_name(f"groundtruth_{family}.npz")
    if not gt.is_file():
        raise DirNetError(f"{gt}: ground truth for --pck not found; pass --gt GROUNDTRUTH.npz")
    return list(zip(labels, (Path(p) for p in args.pck))), gt


def plot_pck(inputs: list[tuple[str, Path]], gt_path: Path, protocol: str, out: Path,
             formats: list[str]) -> list[str]:
    """PCK curves of every run against one ground truth, on one axis."""
    from dir_net.errors import DirNetError
    from eval import evaluate, load_npz
    from eval.io import InputError
    from eval.plots import plot_pck_curves

    try:
        gt = load_npz(gt_path, "gt")
        curves = {}
        for label, path in inputs:
            found = evaluate(load_npz(path, "pred"), gt, [protocol], iv=False, pred_source=str(path),
                             gt_source=str(gt_path)).pck_curves()
            if protocol not in found:
                raise DirNetError(f"{path}: no joint counts under protocol {protocol}")
            curves[label] = found[protocol]
        files = []
        for fmt in formats:
            plot_pck_curves(curves, out / f"pck.{fmt}", title=f"PCK, protocol {protocol}")
            files.append(str(out / f"pck.{fmt}"))
    except InputError as exc:
        raise DirNetError(str(exc)) from None
    return files

"""Regenerate the example figures in docs/figures/ (run through scripts/make_doc_figures.sh).

Everything is synthetic: a small InterHand2.6M-format dataset from `dirnet data synth`, and, as no
trained model exists here, "predictions" that are the ground-truth MANO fits with noise added to
the finger and root rotations, written in DIR's interchange form (right wrist at the origin,
joints_2d in crop pixels) so `dirnet render` places them by fitting their 2D joints. The demo
figure runs `dirnet demo` with untrained weights and says so in its title.

    python scripts/make_doc_figures.py [--out docs/figures] [--work DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from dir_net import cli

SEED = 3
FRAMES = 8
CAMERAS = 2
POSE_NOISE = (0.15, 0.3)  # rad: std of the finger-pose noise of the two example "runs"
ROOT_NOISE = 0.06  # rad: std of the root-rotation noise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "figures"))
    parser.add_argument("--work", help="scratch folder (default: a temporary one, removed at the end)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="dirnet_doc_figures_"))
    try:
        make_all(out, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def make_all(out: Path, work: Path) -> None:
    data = work / "data"
    run(["data", "synth", str(data), "--frames", str(FRAMES), "--cameras", str(CAMERAS), "--seed", str(SEED),
         "--splits", "test"])
    ids, pick = write_predictions(data, work)
    common = ["--data", str(data), "--split", "test", "--gt", str(work / "groundtruth.npz")]
    run(["render", "--pred", str(work / "noise_a.npz"), *common, "--ids", str(pick), "--size", "160",
         "--out", str(work / "panel"), "--pck", str(work / "noise_a.npz"), "--pck", str(work / "noise_b.npz"),
         "--pck-label", f"pose noise {POSE_NOISE[0]} rad", "--pck-label", f"pose noise {POSE_NOISE[1]} rad"])
    copy(work / "panel" / "panels" / f"{pick}.png", out / "render_panel.png")
    copy(work / "panel" / "pck.png", out / "render_pck.png")
    grid_ids = ",".join(str(i) for i in ids[:: max(1, len(ids) // 4)][:4])
    run(["render", "--pred", str(work / "noise_a.npz"), *common, "--ids", grid_ids, "--size", "112",
         "--grid-cols", "2", "--out", str(work / "grid")])
    copy(work / "grid" / "grid.png", out / "render_grid.png")
    image, bbox = demo_input(data, pick)
    torch.manual_seed(0)  # the untrained weights, reproducibly
    run(["demo", "--image", str(image), f"--bbox={bbox}", "--out", str(work / "demo")])
    copy(work / "demo" / "panel.png", out / "demo_panel.png")
    save_hand_gallery(work / "synthetic_hands.png")
    copy(work / "synthetic_hands.png", out / "synthetic_hands.png")


def run(argv: list[str]) -> None:
    print("dirnet", " ".join(argv), flush=True)
    if cli.main(argv) != 0:
        raise SystemExit(f"dirnet {argv[0]} failed")


def copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    print(f"wrote {dst} ({dst.stat().st_size // 1024} KB)")


def write_predictions(data: Path, work: Path) -> tuple[list[int], int]:
    """Two noisy "runs" and the ground truth, interchange format; returns (ids, an interacting id)."""
    from dir_net.config import load_config
    from dir_net.data.camera import aa_to_matrix, matrix_to_aa
    from dir_net.render.samples import DatasetSamples

    source = DatasetSamples(load_config(None, [f"data.root={data}"]), "test")
    rng = np.random.default_rng(SEED)
    rows: dict[str, dict[str, list]] = {name: {k: [] for k in ("ids", "joints", "verts", "joints_2d")}
                                        for name in ("noise_a", "noise_b")}
    gt_rows: dict[str, list] = {k: [] for k in ("ids", "joints", "hand_type")}
    for ann_id in source.ids:
        record, sample = source.record(ann_id), source.sample(ann_id)
        if record.mano is None or not sample.gt_present[0] or not sample.gt_mesh_valid[sample.gt_present].all():
            continue  # DIR's form needs the right wrist; keep frames with it and every fit
        gt = source.hands.camera_frame(record.mano, record.camera)
        gt_rows["ids"].append(ann_id)
        gt_rows["joints"].append(gt["joints"] * 1000.0)
        gt_rows["hand_type"].append(2 if sample.gt_present.all() else 0)
        for name, noise in zip(rows, POSE_NOISE):
            fit = dict(record.mano, pose=np.array(record.mano["pose"], np.float64))
            fit["pose"][:, 3:] += rng.normal(0.0, noise, (2, 45))
            tilt = matrix_to_aa(aa_to_matrix(rng.normal(0.0, ROOT_NOISE, (2, 3))) @ aa_to_matrix(fit["pose"][:, :3]))
            fit["pose"][:, :3] = tilt
            hands = source.hands.camera_frame(fit, record.camera)
            wrist = hands["joints"][0, 0]
            p = hands["joints"] @ sample.K.T
            rows[name]["ids"].append(ann_id)
            rows[name]["joints"].append((hands["joints"] - wrist) * 1000.0)
            rows[name]["verts"].append((hands["vertices"] - wrist) * 1000.0)
            rows[name]["joints_2d"].append(p[..., :2] / p[..., 2:])
    for name, fields in rows.items():
        np.savez(work / f"{name}.npz", faces=source.faces, **{k: np.array(v) for k, v in fields.items()})
    np.savez(work / "groundtruth.npz", **{k: np.array(v) for k, v in gt_rows.items()})
    interacting = [i for i, t in zip(gt_rows["ids"], gt_rows["hand_type"]) if t == 2]
    return gt_rows["ids"], interacting[len(interacting) // 2]


def demo_input(data: Path, ann_id: int) -> tuple[Path, str]:
    """An image of the synthetic set and its annotated box, for `dirnet demo`."""
    from dir_net.config import load_config
    from dir_net.render.samples import DatasetSamples

    source = DatasetSamples(load_config(None, [f"data.root={data}"]), "test")
    row = source.ids.index(ann_id)
    x, y, w, h = (float(v) for v in source.index.col("bbox")[row])
    return source.index.image_path(row), f"{x:.1f},{y:.1f},{w:.1f},{h:.1f}"


def save_hand_gallery(path: Path, size: int = 176) -> None:
    """Both synthetic hands, front and side views, in four poses (columns)."""
    import mano
    from dir_net.data.camera import matrix_to_aa, mirror_aa
    from dir_net.render.figures import grid, save_figure, side_by_side
    from dir_net.render.renderer import Renderer, hand_meshes

    layer = mano.load_hands()
    mean = layer.hand_mean.numpy()  # (2, 45): the mean pose; finger poses are relative to it
    pca = layer.pca_to_axis_angle(torch.tensor(np.random.default_rng(7).normal(0, 1.2, (1, 2, 6)),
                                               dtype=torch.float32))[0].numpy()
    pca[1] = mirror_aa(pca[0].reshape(15, 3)).reshape(45)  # left: the right pose mirrored
    poses = {"flat": -mean, "mean pose": np.zeros_like(mean), "PCA sample": pca, "closing (1.7 x mean)": 0.7 * mean}
    # Right hand: fingers up (-y), palm to the camera (-z); the left hand is its mirror image.
    right_root = matrix_to_aa(np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    root = np.stack([right_root, mirror_aa(right_root)]).astype(np.float32)
    wrists = np.array([[-0.07, 0.06, 0.55], [0.07, 0.06, 0.63]])  # left hand further back: visible from the side
    front, side = [], []
    with Renderer(size, size) as renderer:
        for finger in poses.values():
            verts, joints = layer.forward_numpy(root, finger.astype(np.float32))
            verts = verts + (wrists - joints[:, 0])[:, None]
            meshes = hand_meshes(verts, layer.faces.numpy())
            renderer.resize(size, size)
            front.append(renderer.render_view(meshes, "y", 0.0, fill=0.85).rgb)
            side.append(renderer.render_view(meshes, "y", 90.0, fill=0.85).rgb)
    names = list(poses)
    rows = [side_by_side(front, [f"{n}: front" for n in names]), side_by_side(side, [f"{n}: side" for n in names])]
    save_figure(path, grid(rows, ncols=1))


if __name__ == "__main__":
    raise SystemExit(main())

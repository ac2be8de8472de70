"""Qualitative figures: per-sample panels, grids of panels, turntable animations.

A panel is one row: input | prediction overlay | prediction side view [| GT overlay | GT side
view], each column the size of the input crop, with a title strip on top. Images are RGB uint8
numpy arrays throughout; `save_figure` writes PNG/JPEG (OpenCV) or PDF (matplotlib, Agg).
PCK curves live in eval/plots.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from dir_net.render.renderer import MeshLike, Renderer, to_numpy
from dir_net.utils.io import atomic_path, write_bytes

IMAGE_FORMATS = (".png", ".jpg", ".jpeg")


def title_strip(width: int, text: str, height: int | None = None) -> np.ndarray:
    """A white (height, width, 3) strip with centred black text."""
    height = height or max(16, width // 10)
    strip = np.full((height, width, 3), 255, np.uint8)
    if not text:
        return strip
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    scale = 0.6 * height / 22.0
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    if tw > width - 4:  # shrink long titles to fit the column
        scale *= (width - 4) / tw
        (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    org = ((width - tw) // 2, (height + th) // 2)
    cv2.putText(strip, text, org, font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return strip


def side_by_side(
    images: Sequence[np.ndarray], titles: Sequence[str] | None = None, pad: int = 2
) -> np.ndarray:
    """Concatenate equally tall RGB uint8 images horizontally (white gaps), titled if given."""
    if not images:
        raise ValueError("side_by_side needs at least one image")
    height = images[0].shape[0]
    columns = []
    for i, img in enumerate(images):
        img = _rgb_uint8(img)
        if img.shape[0] != height:
            raise ValueError(f"image {i} is {img.shape[0]} px tall, expected {height}")
        if titles is not None:
            img = np.concatenate([title_strip(img.shape[1], titles[i]), img])
        columns.append(img)
        if i < len(images) - 1 and pad:
            columns.append(np.full((img.shape[0], pad, 3), 255, np.uint8))
    return np.concatenate(columns, axis=1)


def sample_panel(
    renderer: Renderer,
    image: Any,
    camera: Any,
    pred_meshes: Sequence[MeshLike],
    gt_meshes: Sequence[MeshLike] | None = None,
    gt_camera: Any = None,
    titles: bool = True,
) -> np.ndarray:
    """input | prediction overlay | prediction side view [| GT overlay | GT side view].

    image: RGB uint8 (H, W, 3); camera: PinholeCamera or (3, 3) K of that image; meshes in its
    camera frame (see renderer.hand_meshes / weak_perspective_meshes). gt_camera defaults to
    `camera`.
    """
    img = _rgb_uint8(image)
    columns = [img, renderer.overlay(img, pred_meshes, camera), renderer.side_view(pred_meshes).rgb]
    names = ["input", "prediction", "prediction (side)"]
    if gt_meshes is not None:
        gt_cam = camera if gt_camera is None else gt_camera
        columns += [renderer.overlay(img, gt_meshes, gt_cam), renderer.side_view(gt_meshes).rgb]
        names += ["ground truth", "ground truth (side)"]
    return side_by_side(columns, names if titles else None)


def grid(images: Sequence[np.ndarray], ncols: int, pad: int = 4) -> np.ndarray:
    """Tile RGB uint8 images row-major into `ncols` columns; cells take the largest image size
    (smaller images are top-left aligned on white)."""
    if not images:
        raise ValueError("grid needs at least one image")
    if ncols < 1:
        raise ValueError(f"grid ncols must be >= 1, got {ncols}")
    imgs = [_rgb_uint8(i) for i in images]
    cell_h, cell_w = max(i.shape[0] for i in imgs), max(i.shape[1] for i in imgs)
    nrows = -(-len(imgs) // ncols)
    out = np.full(
        (nrows * cell_h + (nrows - 1) * pad, ncols * cell_w + (ncols - 1) * pad, 3), 255, np.uint8
    )
    for k, img in enumerate(imgs):
        y, x = (k // ncols) * (cell_h + pad), (k % ncols) * (cell_w + pad)
        out[y : y + img.shape[0], x : x + img.shape[1]] = img
    return out


def save_figure(path: str | os.PathLike, image: Any, dpi: int = 200) -> Path:
    """Write an RGB uint8 image as .png/.jpg (pixel-exact) or .pdf (at `dpi`), atomically."""
    path = Path(path)
    img = _rgb_uint8(image)
    suffix = path.suffix.lower()
    if suffix in IMAGE_FORMATS:
        ok, buf = cv2.imencode(suffix, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"{path}: OpenCV could not encode the image as {suffix}")
        write_bytes(path, buf.tobytes())
    elif suffix == ".pdf":
        _save_pdf(path, img, dpi)
    else:
        raise ValueError(
            f"{path}: unsupported figure format {path.suffix!r}; use .png, .jpg or .pdf"
        )
    return path


def _save_pdf(path: Path, img: np.ndarray, dpi: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(img.shape[1] / dpi, img.shape[0] / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(img, interpolation="nearest")
    ax.set_axis_off()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="pdf", dpi=dpi)


def turntable_frames(
    renderer: Renderer,
    meshes: Iterable[MeshLike],
    n_frames: int = 36,
    axis: str = "y",
    fill: float = 0.8,
) -> list[np.ndarray]:
    """RGB frames of the meshes rotating a full turn about `axis` through their centre."""
    specs = list(meshes)
    angles = np.linspace(0.0, 360.0, n_frames, endpoint=False)
    return [renderer.render_view(specs, axis, float(a), fill).rgb for a in angles]


def save_animation(
    path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float = 12.0
) -> Path:
    """Write RGB frames as a looping GIF with imageio; without imageio (or for a .mp4 path) as an
    MP4 via OpenCV, with the suffix changed to .mp4. Returns the path written."""
    path = Path(path)
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    if path.suffix.lower() == ".gif":
        try:
            import imageio.v3 as iio
        except ImportError:
            path = path.with_suffix(".mp4")
        else:
            with atomic_path(path) as tmp:
                iio.imwrite(tmp, np.stack(frames), extension=".gif",
                            duration=int(round(1000.0 / fps)), loop=0)
            return path
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"{path}: unsupported animation format {path.suffix!r}; use .gif or .mp4")
    _write_mp4(path, frames, fps)
    return path


def _write_mp4(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    h, w = frames[0].shape[:2]
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            raise RuntimeError(f"{path}: OpenCV cannot open an mp4v video writer")
        try:
            for f in frames:
                writer.write(cv2.cvtColor(_rgb_uint8(f), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()


def turntable(
    renderer: Renderer,
    meshes: Iterable[MeshLike],
    path: str | os.PathLike,
    n_frames: int = 36,
    fps: float = 12.0,
    axis: str = "y",
) -> Path:
    """Render a turntable of one sample's meshes and save it (GIF, or MP4 fallback)."""
    return save_animation(path, turntable_frames(renderer, meshes, n_frames, axis), fps)


def _rgb_uint8(image: Any) -> np.ndarray:
    img = to_numpy(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}; convert with np.uint8 first")
    return img

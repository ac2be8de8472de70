"""Single-image demo: crop around a box, run DIR, draw and export the result.

The crop follows the data layer's convention (dir_net.data.transforms.make_view): a square of side
max(w, h) / data.dir.crop_ratio centred on the box, resampled to data.image_size. The image's own
intrinsics are unknown; none are needed because the crop is a pure scale + shift of the image.

DIR gives, per hand, MANO parameters and a weak-perspective camera (s, tx, ty) of the crop. The
overlay converts each camera to an equivalent pinhole one (render.camera.weak_perspective_to_pinhole)
and maps that camera through the inverse crop onto the full image. The side view and the exported
meshes use the model's 3D output: right wrist at the origin, left hand at the predicted offset
(metres, camera-frame orientation).

Files in the output directory: overlay.png (full image), panel.png (crop | overlay | side view),
side.png, meshes/hands_{right,left,both}.{obj,ply}, mano_params.json.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dir_net.errors import DirNetError

log = logging.getLogger(__name__)

UNTRAINED_NOTE = ("untrained: no --checkpoint was given, the weights are a random initialisation "
                  "and the hands are meaningless")
HAND_NAMES = ("right", "left")


@dataclass
class DemoCrop:
    image: np.ndarray  # (S, S, 3) uint8 RGB
    crop_to_image: np.ndarray  # (2, 3) affine, crop px -> image px
    size: int


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; a missing or undecodable file raises DirNetError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DirNetError(f"{path}: --image not found")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DirNetError(f"{path}: --image is not a readable image (corrupt, or not PNG/JPEG/...)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def parse_bbox(text: str) -> np.ndarray:
    """'x,y,w,h' (pixels, top-left corner and size) -> (4,) float64."""
    try:
        box = np.array([float(v) for v in text.split(",")], np.float64)
    except ValueError:
        box = np.zeros(0)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise DirNetError(f"--bbox: expected four numbers x,y,w,h in pixels, got {text!r}")
    if box[2] <= 0 or box[3] <= 0:
        raise DirNetError(f"--bbox: width and height must be > 0, got {text!r}")
    return box


def check_bbox(box: np.ndarray, image_path: str | Path, width: int, height: int) -> None:
    x, y, w, h = box
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise DirNetError(
            f"--bbox {x:g},{y:g},{w:g},{h:g}: the box must lie inside {image_path} ({width}x{height} px); "
            "clip it to the image")


def crop_image(image: np.ndarray, box: np.ndarray, size: int, crop_ratio: float) -> DemoCrop:
    from dir_net.data.transforms import box_of_xywh, make_view

    height, width = image.shape[:2]
    f = float(max(width, height))  # any focal works: no rotation, so the crop does not depend on it
    K_img = np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
    center, side = box_of_xywh(box)
    view = make_view(K_img, center, side / crop_ratio, size)
    return DemoCrop(view.warp(image), view.crop_to_image, size)


def image_camera(crop_camera: Any, crop_to_image: np.ndarray) -> Any:
    """A pinhole camera of the crop mapped onto the full image through the inverse crop affine
    (scale + shift, no rotation)."""
    from dir_net.render.camera import PinholeCamera

    C = np.vstack([crop_to_image, [0.0, 0.0, 1.0]])
    K = C @ crop_camera.K
    if abs(K[0, 1]) > 1e-9 or abs(K[1, 0]) > 1e-9:
        raise ValueError("the crop is rotated; its camera is not a pinhole camera of the image")
    return PinholeCamera.from_K(K)


def load_model(cfg: Any, checkpoint: str | None) -> Any:
    """DIR built from cfg, with the checkpoint's weights when one is given (eval mode, CPU)."""
    from dir_net.models import build_model

    if cfg.model.name != "dir":
        raise DirNetError(f"model.name: the demo runs DIR, the config names {cfg.model.name!r}; "
                          "pass a DIR config or checkpoint")
    model = build_model(cfg)
    if checkpoint is not None:
        from dir_net.engine.checkpoint import load_model_weights

        load_model_weights(checkpoint, model)
    else:
        log.warning("the DIR weights are %s", UNTRAINED_NOTE)
    return model.eval()


def predict(model: Any, crop: DemoCrop) -> Any:
    """The model's Prediction (with stages) for one crop."""
    import torch

    from dir_net.data.transforms import to_tensor_image

    images = torch.from_numpy(to_tensor_image(crop.image))[None]
    with torch.no_grad():
        return model.predict(model(images), {"image": images})


def mano_parameters(model: Any, pred: Any) -> dict[str, Any]:
    """Per hand: root axis-angle (from 6D), finger pose (PCA and axis-angle, relative to the mean
    hand), betas, weak-perspective cam; and the right -> left wrist offset."""
    from mano.rotations import matrix_to_axis_angle, rot6d_to_matrix

    stage = pred.stages[-1]
    root_aa = matrix_to_axis_angle(rot6d_to_matrix(stage.root_6d[0]))  # (2, 3)
    finger_aa = model.hands.pca_to_axis_angle(stage.finger_pose)[0]  # (2, 45)
    hands = {}
    for h, name in enumerate(HAND_NAMES):
        s, tx, ty = stage.cam[0, h].tolist()
        hands[name] = {
            "root_axis_angle": _floats(root_aa[h]),
            "finger_pose_axis_angle": _floats(finger_aa[h]),
            "finger_pose_pca": _floats(stage.finger_pose[0, h]),
            "betas": _floats(stage.betas[0, h]),
            "cam": {"s": s, "tx": tx, "ty": ty},
        }
    return {"hands": hands, "offset_m": _floats(stage.offset[0])}


def _floats(t: Any) -> list[float]:
    return [float(v) for v in t.reshape(-1).tolist()]


def read_inputs(image_path: str | Path, bbox: str) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8 RGB, box (4,)), checked: raises DirNetError naming the bad input."""
    image = read_image(image_path)
    box = parse_bbox(bbox)
    check_bbox(box, image_path, image.shape[1], image.shape[0])
    return image, box


def run_demo(cfg: Any, image_path: str | Path, bbox: str, out_dir: str | Path,
             checkpoint: str | None = None) -> dict[str, Any]:
    """Everything `dirnet demo` writes; returns the JSON record (also written as mano_params.json)."""
    from dir_net.utils.io import write_json

    image, box = read_inputs(image_path, bbox)
    model = load_model(cfg, checkpoint)
    crop = crop_image(image, box, int(cfg.data.image_size), float(cfg.data.dir.crop_ratio))
    pred = predict(model, crop)
    out_dir = Path(out_dir)
    files = draw_and_export(model, pred, image, crop, out_dir, untrained=checkpoint is None)
    record = {
        "image": str(image_path),
        "bbox_xywh": box.tolist(),
        "weights": str(checkpoint) if checkpoint is not None else UNTRAINED_NOTE,
        "untrained": checkpoint is None,
        "hand_model": "synthetic MANO-format hand" if model.hands.is_synthetic else "MANO",
        "units": "axis-angle radians in the camera frame; offset metres (left wrist - right wrist); "
                 "cam (s, tx, ty): crop uv in [-1, 1] = s * xy + t",
        "crop": {"size": crop.size, "crop_to_image": crop.crop_to_image.tolist()},
        **mano_parameters(model, pred),
        "files": {k: str(v) for k, v in files.items()},
    }
    path = out_dir / "mano_params.json"
    write_json(path, record)
    record["files"]["mano_params"] = str(path)
    return record


def draw_and_export(model: Any, pred: Any, image: np.ndarray, crop: DemoCrop, out_dir: Path,
                    untrained: bool) -> dict[str, Path]:
    from dir_net.render.export import export_hands
    from dir_net.render.figures import save_figure, side_by_side
    from dir_net.render.renderer import Renderer, hand_meshes, weak_perspective_meshes

    stage = pred.stages[-1]
    faces = model.hands.faces.cpu().numpy()
    cams = stage.cam[0].cpu().numpy()  # (2, 3)
    drawable = cams[:, 0] > 0
    for h in np.flatnonzero(~drawable):
        log.warning("the %s hand has a weak-perspective scale s <= 0 (%.3g): not drawn", HAND_NAMES[h], cams[h, 0])
    meshes, crop_camera = weak_perspective_meshes(stage.vertices[0].cpu().numpy(), faces, cams, crop.size,
                                                  present=drawable)
    verts_3d = pred.vertices[0].cpu().numpy()  # (2, V, 3) right wrist at the origin
    files: dict[str, Path] = {}
    with Renderer(crop.size, crop.size) as renderer:
        full = renderer.overlay(image, meshes, image_camera(crop_camera, crop.crop_to_image))
        crop_overlay = renderer.overlay(crop.image, meshes, crop_camera)
        renderer.resize(crop.size, crop.size)
        side = renderer.side_view(hand_meshes(verts_3d, faces)).rgb
    files["overlay"] = save_figure(out_dir / "overlay.png", full)
    files["side"] = save_figure(out_dir / "side.png", side)
    files["panel"] = save_figure(out_dir / "panel.png", side_by_side(
        [crop.image, crop_overlay, side],
        ["input crop", "untrained weights" if untrained else "prediction", "prediction (side)"]))
    for path in export_hands(out_dir / "meshes", verts_3d, faces, "hands"):
        files[f"mesh_{path.stem.split('_', 1)[1]}_{path.suffix[1:]}"] = path
    return files

"""One sample's raw data from the index: image, camera, joints in the camera frame, MANO fit, aux maps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dir_net.data.camera import Camera
from dir_net.data.index import InterHandIndex, aux_dir_for
from mano.joints import interhand_to_hands


class BadImage(Exception):
    """An image is missing or cannot be decoded (the dataset skips the sample)."""


@dataclass
class Record:
    ann_id: int
    image: np.ndarray  # (H, W, 3) uint8 BGR (converted to RGB after the crop)
    camera: Camera
    joints_cam: np.ndarray  # (2, 21, 3) metres, camera frame, wrist-first, right first
    joint_valid: np.ndarray  # (2, 21) float32
    hand_type: int  # 0 right, 1 left, 2 interacting, -1 unknown
    hand_type_valid: float
    bbox: np.ndarray  # (4,) x, y, w, h px
    mano: dict[str, np.ndarray] | None  # NeuralAnnot fit (world, metres): pose (2, 48), shape, trans, present
    aux: tuple[np.ndarray, np.ndarray] | None  # full-image seg (H, W) uint8, dense (H, W, 3) uint8 RGB


def hands_of_type(hand_type: int) -> np.ndarray:
    """(2,) bool: right / left hand present for a hand_type code."""
    return np.array([hand_type in (0, 2), hand_type in (1, 2)])


def load_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise BadImage(f"{path}: image missing")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise BadImage(f"{path}: image unreadable (corrupt or not an image)")
    return image


def aux_path(aux_dir: Path, ann_id: int) -> Path:
    return aux_dir / f"{ann_id // 10000:05d}" / f"{ann_id}.png"


def load_aux(aux_dir: Path, ann_id: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(seg (H, W) uint8, dense (H, W, 3) uint8 RGB) from the BGRA PNG written by prepare, or None."""
    path = aux_path(aux_dir, ann_id)
    if not path.is_file():
        return None
    bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgra is None or bgra.ndim != 3 or bgra.shape[2] != 4:
        return None
    return np.ascontiguousarray(bgra[..., 3]), np.ascontiguousarray(bgra[..., 2::-1])


def read_record(index: InterHandIndex, row: int, with_mano: bool = True, aux_dir: Path | None = None) -> Record:
    """Everything a pipeline needs for index row `row` (raises BadImage for a missing image)."""
    image = load_image(index.image_path(row))
    camera = index.camera(row)
    world_mm, valid = index.world_joints(row)
    joints_cam = camera.world_to_camera(world_mm) / 1000.0
    ann_id = int(index.col("ann_id")[row])
    return Record(
        ann_id=ann_id,
        image=image,
        camera=camera,
        joints_cam=interhand_to_hands(joints_cam),
        joint_valid=interhand_to_hands(valid.astype(np.float32), joint_axis=-1),
        hand_type=int(index.col("hand_type")[row]),
        hand_type_valid=float(index.col("hand_type_valid")[row]),
        bbox=np.array(index.col("bbox")[row], np.float64),
        mano=index.mano(row) if with_mano else None,
        aux=load_aux(aux_dir, ann_id) if aux_dir is not None else None,
    )

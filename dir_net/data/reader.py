"""One sample's raw data from the index: image, camera, joints in the camera frame, MANO fit, aux maps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dir_net.data.camera import Camera
from dir_net.data.index import InterHandIndex, aux_dir_for
from dir_net.errors import DataError
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


JPEG_SOI, JPEG_SOS, JPEG_EOI = b"\xff\xd8", b"\xff\xda", b"\xff\xd9"  # start of image / scan, end


def jpeg_truncated(data: bytes) -> bool:
    """A JPEG cut short: no end-of-image marker after its last scan. (libjpeg decodes such a file,
    fills the missing rows grey and only prints "Premature end of JPEG file".) Inside scan data 0xFF
    is always followed by 0x00 or a restart marker, so FF D9 after the last FF DA is the real end;
    bytes after it (padding) are fine."""
    return data[:2] == JPEG_SOI and data.rfind(JPEG_EOI) < data.rfind(JPEG_SOS)


def load_image(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decoded image (BGR uint8 for the default flags); BadImage names the file when it is missing,
    truncated or not decodable."""
    if not path.is_file():
        raise BadImage(f"{path}: image missing")
    data = path.read_bytes()
    if jpeg_truncated(data):
        raise BadImage(f"{path}: image truncated (JPEG without its end marker); copy or extract it again")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None or image.size == 0:
        raise BadImage(f"{path}: image unreadable (corrupt or not an image)")
    return image


def aux_path(aux_dir: Path, ann_id: int) -> Path:
    return aux_dir / f"{ann_id // 10000:05d}" / f"{ann_id}.png"


# The seg/dense maps are only valid for the hand model they were drawn with: `dirnet data prepare`
# writes AUX_STAMP into the maps folder and re-renders every map when it does not match.
AUX_STAMP = "hand_model.json"
AUX_FORMAT = 2  # 2: interacting frames with one MANO fit get no map (version 1 drew one hand)


def aux_stamp(hand_fingerprint: str) -> dict[str, Any]:
    return {"format": AUX_FORMAT, "hand_model": hand_fingerprint}


def read_aux_stamp(aux_dir: Path) -> dict[str, Any] | None:
    try:
        stamp = json.loads((aux_dir / AUX_STAMP).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def has_aux_maps(aux_dir: Path) -> bool:
    """Any map folder (NNNNN/) under aux_dir."""
    return aux_dir.is_dir() and any(p.is_dir() for p in aux_dir.iterdir())


def check_aux_maps(aux_dir: Path, hand_fingerprint: str) -> None:
    """DataError when aux_dir holds maps drawn with another hand model (or by an older version)."""
    if not has_aux_maps(aux_dir) or read_aux_stamp(aux_dir) == aux_stamp(hand_fingerprint):
        return
    stamp = read_aux_stamp(aux_dir) or {}
    drawn = stamp.get("hand_model")
    drawn = f"hand model {drawn[:12]}" if isinstance(drawn, str) else "an unrecorded hand model"
    raise DataError(f"{aux_dir}: the seg/dense maps were drawn with {drawn} (map format "
                    f"{stamp.get('format', 1)}), not with the hand model mano.model_dir gives now "
                    f"({hand_fingerprint[:12]}, format {AUX_FORMAT}); run `dirnet data prepare` with the "
                    "same config to re-render them")


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

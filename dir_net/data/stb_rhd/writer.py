"""Writing the parsed STB / RHD format (COCO json, skeleton.txt, RootNet output): the layout only.

The converters (`originals.py`) and the synthetic sets (`dir_net/data/synth_stb_rhd.py`) compute
their joints independently and share this writer, so the loader reads both unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dir_net.data.stb_rhd.joints import JOINT_ORDERS, PALM
from dir_net.utils.io import write_text

ROUND_MM = 4  # decimals kept in joint_cam (mm) and joint_img (px)


def project(joint_cam_mm: np.ndarray, focal: np.ndarray, princpt: np.ndarray) -> np.ndarray:
    """(21, 3) camera mm -> (21, 2) px (joint_img is the projection of joint_cam)."""
    return joint_cam_mm[:, :2] / joint_cam_mm[:, 2:] * np.asarray(focal) + np.asarray(princpt)


def tight_box(uv: np.ndarray) -> list[float]:
    """xywh px of the tight box around (K, 2) points (at least 1 px wide and high)."""
    lo, hi = uv.min(0), uv.max(0)
    return [float(lo[0]), float(lo[1]), float(max(hi[0] - lo[0], 1.0)), float(max(hi[1] - lo[1], 1.0))]


def padded_square_box(bbox: list[float], pad: float = 1.25) -> list[float]:
    """The official process_bbox: keep the centre, widen the shorter side to a square, times pad."""
    x, y, w, h = bbox
    side = max(w, h) * pad
    return [x + w / 2 - side / 2, y + h / 2 - side / 2, side, side]


def image_entry(image_id: int, file_name: str, width: int, height: int, focal: np.ndarray,
                princpt: np.ndarray, seq_name: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": int(image_id), "file_name": file_name, "width": int(width), "height": int(height),
                             "cam_param": {"focal": [float(v) for v in focal], "princpt": [float(v) for v in princpt]}}
    if seq_name is not None:
        entry["seq_name"] = seq_name
    return entry


def annotation_entry(ann_id: int, image_id: int, hand_type: str, joint_cam_mm: np.ndarray, focal: np.ndarray,
                     princpt: np.ndarray, joint_valid: np.ndarray) -> dict[str, Any]:
    """One hand: joint_cam (21, 3) mm in the json's joint order; joint_img and bbox from its projection."""
    uv = project(joint_cam_mm, focal, princpt)
    return {
        "id": int(ann_id), "image_id": int(image_id), "bbox": tight_box(uv),
        "joint_img": np.round(uv, ROUND_MM).tolist(), "joint_cam": np.round(joint_cam_mm, ROUND_MM).tolist(),
        "joint_valid": [int(v > 0) for v in joint_valid], "hand_type": hand_type,
    }


def write_parsed_json(path: Path, images: list[dict], annotations: list[dict]) -> None:
    write_text(path, json.dumps({"images": images, "annotations": annotations}))


def skeleton_text(order: str) -> str:
    """skeleton.txt for a joint order: 'name index parent', left hand (0-20) then right (21-41)."""
    names = JOINT_ORDERS[order]
    root = PALM if PALM in names else "wrist"
    lines = ["# joint_name joint_id parent_id"]
    for offset, side in ((0, "l"), (21, "r")):
        for i, name in enumerate(names):
            if name == root:
                parent = -1
            else:
                finger, k = name[:-1], int(name[-1])
                parent = offset + names.index(root if k == 1 else f"{finger}{k - 1}")
            lines.append(f"{side}_{name} {offset + i} {parent}")
    return "\n".join(lines) + "\n"


def write_skeleton(path: Path, order: str) -> None:
    write_text(path, skeleton_text(order))


def rootnet_entries(annotations: list[dict], root_depth_mm: list[float]) -> list[dict]:
    """Official RootNet output layout: {annot_id, bbox (square, padded), abs_depth (scalar mm)}."""
    return [{"annot_id": a["id"], "bbox": padded_square_box(a["bbox"]), "abs_depth": float(d)}
            for a, d in zip(annotations, root_depth_mm)]

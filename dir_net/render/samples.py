"""Dataset samples for figures: the evaluation crop of an annotation id and its ground truth.

The crop comes from the data layer's sample pipeline (`data.pipeline`, no augmentation), so it is
the crop the model saw and `K` maps camera-frame points to its pixels. Ground truth: joint_3d
joints and, where the frame has NeuralAnnot fits, MANO meshes moved into the camera frame with
the data layer's camera maths (`dir_net.data.mano_gt.GTHands`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dir_net.errors import DataError

_SAMPLE_PREFIX = "test_interhand2.6m"


@dataclass
class FigureSample:
    ann_id: int
    image: np.ndarray  # (S, S, 3) uint8 RGB, the evaluation crop
    K: np.ndarray  # (3, 3) camera frame -> crop px
    gt_joints: np.ndarray  # (2, 21, 3) metres, camera frame
    gt_joint_valid: np.ndarray  # (2, 21) bool
    gt_present: np.ndarray  # (2,) bool, hands named by hand_type
    gt_verts: np.ndarray | None  # (2, V, 3) metres, camera frame (hands with a fit)
    gt_mesh_valid: np.ndarray  # (2,) bool, present hands with a NeuralAnnot fit

    def resized(self, size: int) -> "FigureSample":
        """The same sample with the crop resampled to size x size (K follows; pixel centres at
        integers, so u' = s (u + 0.5) - 0.5)."""
        s = size / self.image.shape[1]
        if s == 1.0:
            return self
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        image = cv2.resize(self.image, (size, size), interpolation=interp)
        scale = np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]])
        return FigureSample(self.ann_id, image, scale @ self.K, self.gt_joints, self.gt_joint_valid,
                            self.gt_present, self.gt_verts, self.gt_mesh_valid)


def split_files_for(root: str | Path, split: str, cfg: Any) -> Any:
    """SplitFiles of an InterHand2.6M root (or of a folder of test_interhand2.6m_*.json samples)."""
    from dir_net.data.layout import locate_split, sample_files

    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: dataset root not found (pass --data ROOT)")
    if (root / f"{_SAMPLE_PREFIX}_data.json").is_file():
        return sample_files(root)
    return locate_split(root, split, fps=int(cfg.data.fps), annot_subset=cfg.data.annot_subset)


class DatasetSamples:
    """Annotation id -> FigureSample for one split (the index is built on first use)."""

    def __init__(self, cfg: Any, split: str) -> None:
        from dir_net.data.index import open_index
        from dir_net.data.mano_gt import GTHands
        from dir_net.data.pipelines import build_pipeline

        self.files = split_files_for(cfg.data.root, split, cfg)
        self.index = open_index(self.files, cfg.data.cache_dir)
        self.pipeline = build_pipeline(cfg, train=False)
        self.hands = GTHands(cfg.mano.model_dir, cfg.mano.tips)
        ann_ids = np.asarray(self.index.col("ann_id"), np.int64)
        self._row = {int(a): r for r, a in enumerate(ann_ids)}

    @property
    def faces(self) -> np.ndarray:
        """(2, F, 3) faces of the hand model the ground-truth meshes are built with."""
        return self.hands.faces

    def check_ids(self, ids: list[int]) -> None:
        missing = [i for i in ids if int(i) not in self._row]
        if missing:
            shown = ", ".join(str(i) for i in missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise DataError(f"{self.files.data}: no annotation with id(s) {shown} in the "
                            f"'{self.files.split}' split; check --split / --ids")

    @property
    def ids(self) -> list[int]:
        """Annotation ids of the split, in index order."""
        return list(self._row)

    def record(self, ann_id: int) -> Any:
        """The data layer's Record (image, camera, joints, MANO fit) of one id."""
        from dir_net.data.reader import BadImage, read_record

        self.check_ids([ann_id])
        try:
            return read_record(self.index, self._row[int(ann_id)], with_mano=True)
        except BadImage as exc:
            raise DataError(f"annotation id {ann_id}: {exc}") from None

    def sample(self, ann_id: int) -> FigureSample:
        from dir_net.data.reader import hands_of_type

        record = self.record(ann_id)
        item = self.pipeline(record, np.random.default_rng(0))
        present = hands_of_type(record.hand_type)
        verts, mesh_valid = None, np.zeros(2, bool)
        if record.mano is not None:
            mesh_valid = present & (np.asarray(record.mano["present"]) > 0)
            if mesh_valid.any():
                verts = self.hands.camera_frame(record.mano, record.camera)["vertices"]
        return FigureSample(
            ann_id=int(ann_id),
            image=denormalize(item["image"]),
            K=np.asarray(item["K_crop"], np.float64),
            gt_joints=np.asarray(record.joints_cam, np.float64),
            gt_joint_valid=(np.asarray(record.joint_valid) > 0) & present[:, None],
            gt_present=present,
            gt_verts=verts,
            gt_mesh_valid=mesh_valid,
        )


def denormalize(image_chw: np.ndarray) -> np.ndarray:
    """(3, S, S) ImageNet-normalised RGB float -> (S, S, 3) uint8."""
    from dir_net.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    rgb = np.asarray(image_chw, np.float32).transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

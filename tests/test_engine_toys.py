"""Toy HandModel and dataset for the engine tests (importable by the other test_engine_* files).

The dataset follows the batch contract of docs/DESIGN.md (the dir pipeline's ground-truth keys:
interacting frames with both MANO fits) with a tiny image; its "augmentation"
draws from torch's global RNG, and the model has dropout, so exact-resume tests notice any RNG
or data-order drift. Hands are realistic in size (bones of ~2-4 cm) so the evaluation toolkit's
unit checks accept the predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from dir_net.config import Config, load_config
from dir_net.structures import Prediction

IMAGE_SIZE = 32


def template_hand() -> np.ndarray:
    """(21, 3) metres, wrist-first: five straight fingers fanned out from the wrist."""
    joints = np.zeros((21, 3), dtype=np.float32)
    for finger in range(5):
        angle = np.deg2rad(-40 + 20 * finger)
        direction = np.array([np.sin(angle), -np.cos(angle), 0.0], dtype=np.float32)
        for k in range(4):
            joints[1 + 4 * finger + k] = direction * (0.04 + 0.025 * k)
    return joints


class ToyHands(Dataset):
    """`length` deterministic two-hand samples; train=True adds image noise from the global RNG."""

    def __init__(self, length: int, train: bool, seed: int = 0) -> None:
        self.length, self.train = length, train
        rng = np.random.default_rng(seed)
        base = template_hand()
        self.joints = (base[None, None] + rng.normal(0, 0.004, (length, 2, 21, 3))).astype(np.float32)
        self.joints[:, 1, :, 0] += 0.12  # left hand 12 cm to the right of the right hand
        self.joints[..., 2] += 0.6  # 60 cm in front of the camera
        self.images = rng.normal(0, 1, (length, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        image = torch.from_numpy(self.images[index]).clone()
        if self.train:
            image += 0.1 * torch.randn_like(image)
        joints = torch.from_numpy(self.joints[index])
        focal = 400.0
        uv = focal * joints[..., :2] / joints[..., 2:] + IMAGE_SIZE / 2
        return {
            "image": image,
            "id": torch.tensor(1000 + index),
            "hand_type": torch.tensor(2),
            "hand_type_valid": torch.tensor(1.0),
            "joints_3d": joints,
            "joint_valid": torch.ones(2, 21),
            "joints_2d": uv,
            "K_crop": torch.tensor([[focal, 0, IMAGE_SIZE / 2], [0, focal, IMAGE_SIZE / 2], [0, 0, 1.0]]),
            "crop_to_image": torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]),
            # as the dir pipeline: both hands have a MANO fit, the annotated joints are the same
            "mano_valid": torch.ones(2),
            "joints_3d_annot": joints.clone(),
            "joint_valid_annot": torch.ones(2, 21),
        }


class ToyModel(nn.Module):
    """Conv + BatchNorm + dropout regressor of root-relative joint offsets from a template."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(0.2),
        )
        self.head = nn.Linear(width * 16, 2 * 21 * 3 + 3)
        self.register_buffer("template", torch.from_numpy(template_hand()))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        out = self.head(self.features(images))
        joints = self.template + 0.01 * out[:, :126].view(-1, 2, 21, 3)  # (B, 2, 21, 3) m about each wrist
        offset = out.new_tensor([0.12, 0.0, 0.0]) + 0.01 * out[:, 126:]  # (B, 3) m
        return {"joints": joints, "offset": offset}

    def losses(self, output: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        gt = batch["joints_3d"] - batch["joints_3d"][:, :, :1]
        gt_offset = batch["joints_3d"][:, 1, 0] - batch["joints_3d"][:, 0, 0]
        joints = (output["joints"] - gt).abs().mean() * 100
        offset = (output["offset"] - gt_offset).abs().mean() * 100
        return {"joints": joints, "offset": offset, "total": joints + offset}

    def predict(self, output: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Prediction:
        shift = torch.stack([torch.zeros_like(output["offset"]), output["offset"]], dim=1)[:, :, None]
        joints = (output["joints"] + shift).detach()
        uv = 400.0 * joints[..., :2] / 0.6 + IMAGE_SIZE / 2
        return Prediction(joints=joints, offset=output["offset"].detach(), joints_2d=uv)


def toy_model_factory(cfg: Config) -> nn.Module:
    torch.manual_seed(cfg.experiment.seed)  # same initial weights whatever the caller did before
    return ToyModel()


def toy_dataset_factory(cfg: Config, split: str, train: bool) -> Dataset:
    return ToyHands(24 if split == "train" else 10, train, seed={"train": 0}.get(split, 1))


def toy_config(output_dir: Path, *overrides: str) -> Config:
    """Small, fast, deterministic engine settings for the tests."""
    return load_config(None, [
        f"experiment.output_dir={output_dir}", "experiment.name=toy", "experiment.deterministic=true",
        "train.device=cpu", "train.epochs=2", "train.batch_size=4", "train.num_workers=0",
        "train.log_every=1", "train.image_every=0", "train.progress_bar=false",
        "train.optimizer.lr=0.01", "train.schedule.warmup_epochs=0.5", "evaluation.batch_size=4",
        *overrides,
    ])

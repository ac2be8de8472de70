"""Training learns pose from images: a tiny DIR trained for a few hundred steps on a tiny fixed
synthetic set brings the held-out error below that of the mean hand (dir_net.bench.mean_hand), and
does not when the labels no longer match the crops (about two minutes of CPU for the two trainings).

Held out: every 4th frame of each synthetic sequence, in every camera (the frames before and after
it are trained on: the poses in between are interpolated). Scored with the standard toolkit: MIAA
(2D vertices, crop px) and MPJPE under mcp_scaled, on the interacting frames with both MANO fits,
as `dirnet bench learn` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from dir_net.bench.learn_train import Budget, ground_truth_rows, infinite_batches, predict_rows, score, train_for
from dir_net.bench.mean_hand import score_mean_hand
from dir_net.config import load_config
from dir_net.data.synth import FRAME_STEP

REPO = Path(__file__).resolve().parents[1]
FRAMES, CAMERAS = 32, 4  # 128 images: 96 trained on, 32 held out
STEPS = 240
# the CPU benchmark's reduced DIR at 64 px; no augmentation, so a few hundred steps suffice (the
# "mirrored" case below checks that labels follow the image without relying on it)
TINY = ["data.image_size=64", "train.batch_size=16", "train.num_workers=0", "evaluation.batch_size=32",
        "data.dir.rotation=0", "data.dir.flip=0", "data.dir.scale=0", "data.dir.translation=0", "data.dir.color=0",
        "data.dir.blur_prob=0"]
PROTOCOL = "mcp_scaled"


class Part(Dataset):
    """The samples `indices` of a dataset, keeping its seeded `get_sample` (optionally with a label bug)."""

    def __init__(self, dataset: Any, indices: np.ndarray, mirror_image_only: bool = False) -> None:
        self.dataset, self.indices, self.mirror_image_only = dataset, indices, mirror_image_only

    def __len__(self) -> int:
        return len(self.indices)

    def get_sample(self, i: int, rng: np.random.Generator) -> dict:
        sample = self.dataset.get_sample(int(self.indices[i]), rng)
        if self.mirror_image_only:  # an image flip the labels do not follow (a broken flip augmentation)
            sample = {**sample, "image": np.ascontiguousarray(sample["image"][:, :, ::-1])}
        return sample

    def __getitem__(self, i: int) -> dict:
        return self.get_sample(i, np.random.default_rng(i))


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> dict[str, Any]:
    from dir_net.data import build_dataset
    from dir_net.data.synth import generate
    from dir_net.engine.trainer import apply_model_pipeline

    root = tmp_path_factory.mktemp("learn") / "synth"
    generate(root, frames=FRAMES, seed=0, splits=["train"], cameras=CAMERAS)
    cfg = apply_model_pipeline(load_config(REPO / "configs" / "learn_dir_cpu.yaml", [f"data.root={root}", *TINY]))
    plain = build_dataset(cfg, "train", False)
    index = plain.index
    frame_idx = np.asarray(index.col("img_frame"))[np.asarray(index.col("image_row"))[plain.rows]]
    held = (frame_idx // FRAME_STEP) % 4 == 2  # every 4th frame of each sequence, in every camera
    held_out, train = np.flatnonzero(held), np.flatnonzero(~held)
    gt_train = ground_truth_rows(Part(plain, train), ["mano"])["mano"]
    gt_test = ground_truth_rows(Part(plain, held_out), ["mano"])
    return {"cfg": cfg, "train": train, "held_out": held_out, "gt_test": gt_test,
            "mean": score_mean_hand(gt_train, gt_test["mano"], [PROTOCOL])[PROTOCOL]}


def train_and_score(tiny_set: dict[str, Any], mirror_image_only: bool = False) -> dict[str, float]:
    from dir_net.data import build_dataset
    from dir_net.engine import optim, runtime
    from dir_net.models import build_model

    cfg = tiny_set["cfg"]
    runtime.seed_everything(0)
    model = build_model(cfg)
    optimizer = optim.build_optimizer(cfg.train, model)
    train_set = Part(build_dataset(cfg, "train", True), tiny_set["train"], mirror_image_only)
    batches = infinite_batches(train_set, int(cfg.train.batch_size), 0, 0, torch.device("cpu"))
    train_for(model, optimizer, cfg.train, batches, Budget(steps=STEPS))
    test = DataLoader(Part(build_dataset(cfg, "train", False), tiny_set["held_out"]), batch_size=32)
    return score(predict_rows(model, test, torch.device("cpu")), tiny_set["gt_test"], [PROTOCOL])[PROTOCOL]


def test_training_beats_the_mean_hand_on_held_out_images(tiny_set, one_thread):
    mean = tiny_set["mean"]
    got = train_and_score(tiny_set)
    assert got["miaa"] < 0.9 * mean["miaa"], (got, mean)
    assert got["mpjpe"] < 0.97 * mean["mpjpe"], (got, mean)


def test_labels_that_do_not_follow_the_image_do_not_beat_the_mean_hand(tiny_set, one_thread):
    """The same training with every image mirrored and its labels left as they were: the first
    test's margin is out of reach, so it fails when the labels stop matching the crops (also
    checked by hand with the labels of another image of the set: no better than the mean hand)."""
    mean = tiny_set["mean"]
    got = train_and_score(tiny_set, mirror_image_only=True)
    assert got["miaa"] > 0.9 * mean["miaa"], (got, mean)

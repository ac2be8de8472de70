"""`dirnet bench probe`: is it the data or the model? A plain CNN that regresses root-relative
joints directly, trained on the crops the DIR pipeline makes of a dataset, against the mean hand.

When `dirnet bench learn` shows a model at the mean hand, this separates the two causes: if a plain
regressor learns from the same crops and labels, the crops, labels and their alignment are right
and the model (its parameterisation, backbone, loss) is the slow learner. `--head mano` regresses
DIR's per-hand parameters and poses them with the MANO layer as DIR does, so the gap between the
two heads is the cost of DIR's parameterisation alone. No augmentation, crops
cached in memory once (`--cache`), one thread, cosine learning rate over the `--minutes` budget.

Errors, on every valid hand: 3D = mean per-joint distance of middle-MCP-relative joints in the
camera frame (mm, unscaled); 2D = mean per-joint distance in crop pixels, both divided by the
mean hand's (the per-joint mean over the training crops), on the test split and on the first
`TRAIN_EVAL` training crops (memorising shows as train << test).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dir_net.bench.learn_train import Budget
from dir_net.engine.optim import LrSchedule
from dir_net.errors import DirNetError
from mano.joints import MIDDLE_MCP

log = logging.getLogger(__name__)

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "learn_dir_cpu.yaml"
TRAIN_EVAL = 512  # training crops scored at each evaluation
BATCH = 32
LR = 1e-3
OUT_PER_HAND = 21 * 5  # 3D (x, y, z) + 2D (u, v) per joint
HEADS = ("direct", "mano")
NUM_PCA = 45  # the mano head: the full finger basis, as DIR
CROP_PX = 128.0  # side of the crops the 2D labels refer to
# the trainer's cosine decay (no warm-up, to 0) on a fine grid over the budget
COSINE = LrSchedule(name="cosine", total_steps=10_000, warmup_steps=0, warmup_factor=1.0, min_factor=0.0,
                    milestone_steps=(), gamma=1.0)


@dataclass
class ProbeOptions:
    root: str  # a dataset in the InterHand2.6M layout with train and test splits (e.g. bench learn's)
    minutes: float = 5.0
    size: int = 64  # input px (the crops are made at 128 and resized)
    backbone: str = "plain"  # plain | resnet50
    head: str = "direct"  # direct (joints as offsets from the mean hand) | mano (DIR's parameters + MANO)
    width: int = 32  # plain: first stage channels; resnet50: stem width (64 = the real one)
    evals: int = 4
    cache: str | None = None  # .pt file of the cached crops (written when absent)
    seed: int = 0


@dataclass
class Crops:
    image: Tensor  # (N, 3, S, S) normalised
    joints_mm: Tensor  # (N, 2, 21, 3) middle-MCP-relative, camera frame
    joints_px: Tensor  # (N, 2, 21, 2) crop px at 128
    hand_valid: Tensor  # (N, 2) bool: every joint of the hand valid

    def head(self, n: int) -> "Crops":
        return Crops(self.image[:n], self.joints_mm[:n], self.joints_px[:n], self.hand_valid[:n])


def cache_crops(root: str, path: Path | None) -> dict[str, dict[str, Tensor]]:
    """The un-augmented DIR-pipeline crops of the train and test splits of `root`."""
    if path is not None and path.is_file():
        return torch.load(path, weights_only=True)
    from dir_net.config import load_config
    from dir_net.data import build_dataset
    from dir_net.engine.trainer import apply_model_pipeline

    cfg = apply_model_pipeline(load_config(CONFIG, [f"data.root={root}", "train.num_workers=0"]))
    out = {}
    for split in ("train", "test"):
        dataset = build_dataset(cfg, split, False)
        samples = [dataset.get_sample(i, np.random.default_rng(i)) for i in range(len(dataset))]
        out[split] = {key: torch.as_tensor(np.stack([s[key] for s in samples]))
                      for key in ("image", "joints_3d", "joints_2d", "joint_valid")}
        log.info("probe: cached %d %s crops", len(samples), split)
    if path is not None:
        from dir_net.utils.io import torch_save

        torch_save(path, out)
    return out


def to_crops(raw: dict[str, Tensor], size: int) -> Crops:
    image = raw["image"].float()
    if image.shape[-1] != size:
        image = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    joints = raw["joints_3d"].double() * 1000.0  # (N, 2, 21, 3) m -> mm
    return Crops(image, (joints - joints[:, :, MIDDLE_MCP:MIDDLE_MCP + 1]).float(), raw["joints_2d"].float(),
                 raw["joint_valid"].bool().all(-1))


class Regressor(nn.Module):
    """A backbone, global average pooling and one linear layer, then a head to absolute
    (B, 2, 21, 5): middle-MCP-relative 3D joints in mm and 2D joints in 128-px crop pixels.

    direct: the linear layer's output is the offset from the mean hand (3D / 100 mm, 2D / 128 px).
    mano: the linear layer's output is DIR's per-hand parameter vector (6D root, 45 finger PCA
    coefficients, betas, weak-perspective camera; biases at DIR's neutral prior), posed by the MANO
    layer as DIR decodes it: the probe of DIR's parameterisation without the rest of DIR.
    """

    def __init__(self, backbone: str, width: int, size: int, head: str = "direct",
                 mean_mm: Tensor | None = None, mean_px: Tensor | None = None) -> None:
        super().__init__()
        from dir_net.models.backbone import PlainNet, ResNet50

        if backbone == "plain":  # the CPU benchmark's `model.backbone.name: plain`; full resolution at <= 64 px
            trunk: nn.Module = PlainNet(width, stem_stride=2 if size > 64 else 1)
        elif backbone == "resnet50":
            trunk = ResNet50(width=width)  # DIR's and InterNet's backbone
        else:
            raise ValueError(f"--backbone: {backbone!r}; choose plain or resnet50")
        if head not in HEADS:
            raise ValueError(f"--head: {head!r}; choose one of {', '.join(HEADS)}")
        self.backbone = trunk
        self.kind = head
        self.register_buffer("mean_mm", torch.zeros(2, 21, 3) if mean_mm is None else mean_mm.clone())
        self.register_buffer("mean_px", torch.zeros(2, 21, 2) if mean_px is None else mean_px.clone())
        channels = trunk.channels["c4"]
        if head == "direct":
            self.head = nn.Linear(channels, 2 * OUT_PER_HAND)
            return
        from dir_net.models.dir import load_model_hands
        from dir_net.models.heads import param_dim, params_prior
        from mano.layer import load_arrays

        self.head = nn.Linear(channels, 2 * param_dim(NUM_PCA))
        nn.init.normal_(self.head.weight, 0.0, 1e-3)  # as DIR's init_regressor
        with torch.no_grad():
            self.head.bias.copy_(params_prior(NUM_PCA).repeat(2))
        arrays, source = load_arrays(None)  # the embedded synthetic hand, as the generated sets use
        self.__dict__["hands"] = load_model_hands(arrays, NUM_PCA, source)  # not a submodule: no parameters

    def forward(self, image: Tensor) -> Tensor:
        feat = self.head(self.backbone(image)["c4"].mean((2, 3)))
        if self.kind == "direct":
            out = feat.view(-1, 2, 21, 5)
            return torch.cat([out[..., :3] * 100.0 + self.mean_mm, out[..., 3:] * CROP_PX + self.mean_px], dim=-1)
        return self._pose(feat.view(len(feat), 2, -1))

    def _pose(self, params: Tensor) -> Tensor:
        """(B, 2, D) DIR parameters (right, left) -> (B, 2, 21, 5) mm and crop px (dir_net.models.dir.pose_hands)."""
        from dir_net.models.dir import pose_hands

        _, joints, _, uv, _ = pose_hands(self.hands, params, NUM_PCA)  # m about each wrist; [-1, 1]
        joints_mm = (joints - joints[:, :, MIDDLE_MCP:MIDDLE_MCP + 1]) * 1000.0
        return torch.cat([joints_mm, (uv + 1.0) * 0.5 * CROP_PX], dim=-1)


def hand_errors(pred_mm: Tensor, pred_px: Tensor, crops: Crops) -> tuple[float, float]:
    """Mean per-joint 3D (mm) and 2D (px) error over the valid hands."""
    valid = crops.hand_valid
    e3 = (pred_mm - crops.joints_mm).norm(dim=-1).mean(-1)[valid].mean()
    e2 = (pred_px - crops.joints_px).norm(dim=-1).mean(-1)[valid].mean()
    return float(e3), float(e2)


def check_options(opts: ProbeOptions) -> None:
    """One-line DirNetError for an option outside its range."""
    bad = [f"--{name} {value} (must be {rule})" for name, value, ok, rule in (
        ("minutes", opts.minutes, opts.minutes > 0, "> 0"), ("evals", opts.evals, opts.evals >= 1, ">= 1"),
        ("size", opts.size, opts.size >= 32, ">= 32"), ("width", opts.width, opts.width >= 1, ">= 1"),
        ("head", opts.head, opts.head in HEADS, " | ".join(HEADS))) if not ok]
    if bad:
        raise DirNetError(f"bench probe: {'; '.join(bad)}")


def run(opts: ProbeOptions, say: Callable[[str], None] = functools.partial(print, flush=True)) -> dict:
    """Train the probe for the budget; the learning curve as ratios to the mean hand."""
    check_options(opts)
    torch.manual_seed(opts.seed)
    raw = cache_crops(opts.root, Path(opts.cache) if opts.cache else None)
    train, test = to_crops(raw["train"], opts.size), to_crops(raw["test"], opts.size)
    weight = train.hand_valid[..., None, None].float()  # (N, 2, 1, 1)
    mean_mm = (train.joints_mm * weight).sum(0) / weight.sum(0)  # (2, 21, 3)
    mean_px = (train.joints_px * weight).sum(0) / weight.sum(0)
    seen = train.head(TRAIN_EVAL)
    base = {"test": hand_errors(mean_mm, mean_px, test), "train": hand_errors(mean_mm, mean_px, seen)}
    say(f"probe: {len(train.image)} train / {len(test.image)} test crops at {opts.size} px; mean hand test "
        f"3D {base['test'][0]:.1f} mm, 2D {base['test'][1]:.1f} px")
    model = Regressor(opts.backbone, opts.width, opts.size, opts.head, mean_mm, mean_px)
    optimizer = torch.optim.AdamW(model.parameters(), LR, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(opts.seed)

    def predict(crops: Crops) -> tuple[Tensor, Tensor]:
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(crops.image[i:i + 64]) for i in range(0, len(crops.image), 64)])
        model.train()
        return out[..., :3], out[..., 3:]

    budget, curve, steps, train_s = Budget(seconds=opts.minutes * 60.0), [], 0, 0.0
    marks = [(k + 1) / opts.evals for k in range(opts.evals)]  # fractions of the budget
    while marks:
        start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = LR * COSINE(budget.fraction(train_s, steps) * COSINE.total_steps)
        idx = torch.randint(0, len(train.image), (BATCH,), generator=generator)
        out = model(train.image[idx])
        w = train.hand_valid[idx][..., None, None].float()
        error = (((out[..., :3] - train.joints_mm[idx]) / 100.0).abs()
                 + 5.0 * ((out[..., 3:] - train.joints_px[idx]) / CROP_PX).abs().mean(-1, keepdim=True))
        loss = (error * w).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
        train_s += time.perf_counter() - start
        if budget.fraction(train_s, steps) >= marks[0]:
            marks.pop(0)
            point = {"steps": steps, "images": steps * BATCH, "train_s": round(train_s, 1)}
            for name, crops in (("test", test), ("train", seen)):
                e3, e2 = hand_errors(*predict(crops), crops)
                point.update({f"{name}_3d_mm": e3, f"{name}_2d_px": e2, f"{name}_ratio_3d": e3 / base[name][0],
                              f"{name}_ratio_2d": e2 / base[name][1]})
            curve.append(point)
            say(f"  {steps} steps, {point['images']} images, {train_s:.0f} s: test 3D {point['test_ratio_3d']:.2f}x, "
                f"2D {point['test_ratio_2d']:.2f}x of the mean hand (train {point['train_ratio_3d']:.2f}x, "
                f"{point['train_ratio_2d']:.2f}x)")
    return {"options": asdict(opts), "mean_hand": {k: {"3d_mm": v[0], "2d_px": v[1]} for k, v in base.items()},
            "curve": curve}

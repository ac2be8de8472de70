"""Image encoders returning multi-scale features {"c1": 1/4, "c2": 1/8, "c3": 1/16, "c4": 1/32}.

`ResNet50` (`model.backbone.name: resnet50`, the papers' backbone) is shared by DIR, InterNet and
SimpleBaseline2D. `PlainNet` (`name: plain`) is a VGG-like stack of 3x3 convolutions for the CPU-sized
learning benchmark only: from scratch on a few thousand crops it runs faster and learns pose faster per
image than a thin ResNet-50 (docs/BENCHMARKS.md, "Is it the data or the model?").

ResNet50: Parameter names are exactly torchvision's
`resnet50` names (conv1, bn1, layer1..4.N.{conv1,bn1,conv2,bn2,conv3,bn3,downsample.0,downsample.1})
without the classifier `fc`, so an ImageNet weights file loads directly. Nothing is ever
downloaded: pass a local file with `model.backbone.weights`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from dir_net.errors import DirNetError

log = logging.getLogger(__name__)

LAYERS_R50 = (3, 4, 6, 3)
EXPANSION = 4


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride, as torchvision's v1.5), 1x1 expand x4."""

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = planes * EXPANSION
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet-50 trunk. `forward` returns {"c1": 1/4, "c2": 1/8, "c3": 1/16, "c4": 1/32} maps.

    `width` is the stem width (64 = the real ResNet-50; 256, 512, 1024, 2048 output channels);
    smaller widths scale every layer proportionally and exist for fast tests only.
    `frozen_bn` keeps every BatchNorm in eval mode with fixed affine parameters.
    """

    def __init__(self, width: int = 64, frozen_bn: bool = False) -> None:
        super().__init__()
        self.frozen_bn = frozen_bn
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_ch = width
        self.channels: dict[str, int] = {}
        for i, blocks in enumerate(LAYERS_R50):
            planes = width * 2**i
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(
                *[Bottleneck(in_ch if b == 0 else planes * EXPANSION, planes, stride if b == 0 else 1)
                  for b in range(blocks)]
            )
            setattr(self, f"layer{i + 1}", layer)
            in_ch = planes * EXPANSION
            self.channels[f"c{i + 1}"] = in_ch
        self._init_weights()
        if frozen_bn:
            self._freeze_bn()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero the last BN of each residual branch: every block starts as the identity.
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)

    def _freeze_bn(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
                m.weight.requires_grad_(False)
                m.bias.requires_grad_(False)

    def train(self, mode: bool = True) -> "ResNet50":
        super().train(mode)
        if self.frozen_bn:
            self._freeze_bn()
        return self

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return {"c1": c1, "c2": c2, "c3": c3, "c4": c4}

    def load_pretrained(self, path: str | Path) -> None:
        """Load a torchvision-layout state_dict file (classifier `fc.*` keys are ignored)."""
        path = Path(path)
        if not path.is_file():
            raise DirNetError(
                f"model.backbone.weights: file not found: {path} "
                "(give a local torchvision ResNet-50 state_dict .pth; nothing is downloaded)"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DirNetError(f"model.backbone.weights: cannot read {path}: {first_line}") from None
        if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
            state = state["state_dict"]
        if not isinstance(state, Mapping):
            raise DirNetError(f"model.backbone.weights: {path} does not hold a state_dict")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        self._check_keys(state, path)
        self.load_state_dict(state, strict=True)
        log.info("backbone: loaded %d tensors from %s", len(state), path)

    def _check_keys(self, state: Mapping[str, Tensor], path: Path) -> None:
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        wrong_shape = sorted(
            f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
            for k in set(own) & set(state)
            if tuple(state[k].shape) != tuple(own[k].shape)
        )
        problems = []
        for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if keys:
                shown = ", ".join(keys[:10]) + (f", ... ({len(keys)} in all)" if len(keys) > 10 else "")
                problems.append(f"{name} keys: {shown}")
        if problems:
            raise DirNetError(
                f"model.backbone.weights: {path} does not match a torchvision ResNet-50 "
                f"(width {self.conv1.out_channels}): " + "; ".join(problems)
            )


def conv_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU layers, the first carrying the stride."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PlainNet(nn.Module):
    """A 3x3 conv stem (stride `stem_stride`) and four stride-2 `conv_block`s of width w, 2w, 4w, 8w;
    with the default stem stride 2 the blocks give c1..c4 at 1/4..1/32 like `ResNet50`."""

    def __init__(self, width: int = 32, stem_stride: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        self.channels = {f"c{i + 1}": width * 2**i for i in range(4)}
        self.blocks = nn.ModuleList(conv_block(width * 2 ** max(i - 1, 0), width * 2**i, 2) for i in range(4))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out, x = {}, self.stem(x)
        for i, block in enumerate(self.blocks):
            x = out[f"c{i + 1}"] = block(x)
        return out


def build_backbone(cfg_backbone: Mapping) -> nn.Module:
    """The `model.backbone` config section's encoder (ResNet-50 weights loaded when a path is given)."""
    if cfg_backbone.get("name", "resnet50") == "plain":
        if cfg_backbone.get("weights") or cfg_backbone.get("frozen_bn"):
            raise DirNetError("model.backbone: weights and frozen_bn apply to name=resnet50 only; "
                              "the plain backbone trains from scratch (set them to null / false)")
        return PlainNet(width=int(cfg_backbone["width"]))
    net = ResNet50(width=int(cfg_backbone["width"]), frozen_bn=bool(cfg_backbone["frozen_bn"]))
    if cfg_backbone.get("weights"):
        net.load_pretrained(cfg_backbone["weights"])
    return net

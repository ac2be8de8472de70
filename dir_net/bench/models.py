"""Building the benchmarked models (config, device, memory format, compilation) and counting FLOPs."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
from torch import nn

from dir_net.bench.batch import BENCH_MODELS
from dir_net.errors import DirNetError

# Per-model settings layered under the user's overrides: the paper's optimiser for InterNet
# (the schema defaults are DIR's) and the data pipeline each model's batch follows.
MODEL_OVERRIDES = {
    "dir": ("model.name=dir", "data.pipeline=dir"),
    "internet": ("model.name=internet", "data.pipeline=internet", "train.optimizer.name=adam",
                 "train.optimizer.weight_decay=0.0"),
}

# A few-MB DIR / InterNet for smoke runs and tests (`dirnet bench all --smoke`).
SMOKE_OVERRIDES = (
    "model.backbone.width=8", "model.dir.attention=paper", "model.dir.width=16", "model.dir.joint_dim=16",
    "model.dir.plane_dim=8", "model.dir.gcn_layers=1", "model.dir.tf_layers=1",
    "model.internet.deconv_channels=16", "model.internet.depth_bins=8", "model.internet.root_bins=8",
    "model.internet.hidden=16",
)


def registered_models() -> list[str]:
    """Benchmarkable models present in the model registry (InterNet only once it is registered)."""
    from dir_net.models import MODELS

    return [name for name in BENCH_MODELS if name in MODELS]


def resolve_models(requested: str | Sequence[str] | None) -> list[str]:
    """'dir,internet' (or a list) -> names, checked against the registry; None -> all registered."""
    available = registered_models()
    if requested is None or requested == "" or requested == "all":
        return available
    names = [n.strip() for n in requested.split(",")] if isinstance(requested, str) else list(requested)
    for name in names:
        if name not in BENCH_MODELS:
            raise DirNetError(f"--models: {name!r} cannot be benchmarked; choose from {', '.join(BENCH_MODELS)}")
        if name not in available:
            raise DirNetError(f"--models: {name!r} is not in the model registry (dir_net.models.MODELS) yet")
    return names


def model_config(name: str, config: str | None = None, overrides: Iterable[str] = ()) -> Any:
    """Config of model `name`: defaults <- `config` <- per-model settings <- `overrides`."""
    from dir_net.config import load_config

    return load_config(config, [*MODEL_OVERRIDES[name], *overrides])


def build(cfg: Any, device: torch.device, channels_last: bool, train: bool, explicit_mfp: bool = False) -> nn.Module:
    """The configured model on `device`; `explicit_mfp`: see `use_explicit_mfp`."""
    from dir_net.models import build_model

    model = build_model(cfg).to(device)
    if explicit_mfp:
        use_explicit_mfp(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train(train)


def use_explicit_mfp(model: nn.Module) -> int:
    """Make DIR's MFP projections build the explicit 2 x 20 x C planes (the paper's / official
    code's formulation, same output) instead of the factorised conv; returns the modules switched."""
    switched = 0
    for module in model.modules():
        if hasattr(module, "factorised") and getattr(module, "multi_plane", False):
            module.factorised = False
            switched += 1
    return switched


def compile_model(model: nn.Module, cuda_graphs: bool) -> nn.Module:
    """torch.compile with static shapes; CUDA graphs through mode='reduce-overhead' when asked."""
    return torch.compile(model, mode="reduce-overhead" if cuda_graphs else None, dynamic=False)


def count_flops(fn: Any) -> int:
    """FLOPs (2 per multiply-accumulate) of one call of `fn`, by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def hand_layer(cfg: Any) -> Any:
    """The configured two-hand MANO layer (for the synthetic batches)."""
    import mano

    return mano.load_hands(cfg.mano.model_dir, tips=cfg.mano.tips)

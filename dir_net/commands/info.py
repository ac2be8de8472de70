"""`dirnet info`: parameter counts, FLOPs and output shapes of the configured model (JSON)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dir_net.commands.config import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info", help="model size: parameters, GFLOPs for one image, output shapes (JSON)"
    )
    add_config_arguments(parser)
    parser.add_argument("--image-size", type=int, default=None, help="square input side (default: data.image_size)")
    parser.set_defaults(func=_info)


def _info(args: argparse.Namespace) -> int:
    from dir_net.config import load_config

    cfg = load_config(args.config, args.overrides)
    size = args.image_size or int(cfg.data.image_size)
    print(json.dumps(model_info(cfg, size), indent=2))
    return 0


def model_info(cfg: Any, image_size: int) -> dict[str, Any]:
    """Build the model on the CPU and measure it on one (1, 3, S, S) image in eval mode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dir_net.models import build_model

    model = build_model(cfg).eval()
    images = torch.zeros(1, 3, image_size, image_size)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        output = model(images)
    reference, used = _reference_flops(model, images)
    total = sum(p.numel() for p in model.parameters())
    params = {
        "total": total,
        "used": used,  # owned by modules the forward calls (explicit MFP form)
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "modules": {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()},
    }
    info = {
        "model": cfg.model.name,
        "input": "x".join(str(n) for n in images.shape),
        "parameters": params,
        "parameters_millions": round(total / 1e6, 2),
        "gflops": round(counter.get_total_flops() / 1e9, 2),
        "gflops_reference": round(reference / 1e9, 2),
        "flops_note": "torch.utils.flop_counter: 2 FLOPs per multiply-accumulate (conv, matmul, attention). "
                      "gflops: as executed (MFP factorised, same output); gflops_reference: with the explicit "
                      "2 x 20 x C MFP planes, as the official code computes it",
        "outputs": _shapes(output),
    }
    if cfg.model.name == "dir":
        info["official_checkpoint"] = _official_equivalent(model, cfg, params)
    return info


class _RanModules:
    """Context that records which modules ran; `parameter_count()`: parameters owned by them."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.ran: set[int] = set()
        self.handles: list[Any] = []

    def __enter__(self) -> "_RanModules":
        for module in self.model.modules():
            self.handles.append(module.register_forward_pre_hook(lambda m, _a: self.ran.add(id(m))))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()

    def parameter_count(self) -> int:
        return sum(p.numel() for m in self.model.modules() if id(m) in self.ran for p in m.parameters(recurse=False))


def _official_equivalent(model: Any, cfg: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The official checkpoint's way of counting this model: it also holds the ResNet's ImageNet
    classifier and, per refinement stage, a transformer block it never runs (docs/DIR_OFFICIAL.md)."""
    import torch

    from dir_net.models.transformer import Block, JointTransformer

    c4 = model.backbone.channels["c4"]
    unused = {"backbone.fc": c4 * 1000 + 1000}
    d = cfg.model.dir
    stages = [m for m in model.modules() if isinstance(m, JointTransformer)]
    if stages:
        with torch.device("meta"):
            block = Block(int(d.joint_dim), int(d.tf_heads), float(d.tf_mlp_ratio))
        unused["interaction.STEblocks.0"] = len(stages) * sum(p.numel() for p in block.parameters())
    total = params["total"] + sum(unused.values())
    return {
        "total": total,
        "used": params["used"],
        "total_millions": round(total / 1e6, 2),
        "used_millions": round(params["used"] / 1e6, 2),
        "unused": unused,
        "note": "the official state_dict's count: this model plus the tensors the official forward never "
                "uses (converter drops them); 92.7M total / 90.4M used for the official configuration",
    }


def _reference_flops(model: Any, images: Any) -> tuple[float, int]:
    """FLOPs with every MFP projection building its explicit planes (comparable with the paper),
    and the parameters of the modules that pass calls (all used in the forward)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    projections = [m for m in model.modules() if getattr(m, "multi_plane", False) and hasattr(m, "factorised")]
    for m in projections:
        m.factorised = False
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter, _RanModules(model) as ran:
            model(images)
    finally:
        for m in projections:
            m.factorised = True
    return counter.get_total_flops(), ran.parameter_count()


def _shapes(obj: Any) -> Any:
    """Nested shapes of a model output (tensors -> "1x2x21x3"; dataclasses/dicts/lists recursed)."""
    import dataclasses

    import torch

    if isinstance(obj, torch.Tensor):
        return "x".join(str(n) for n in obj.shape)
    if dataclasses.is_dataclass(obj):
        return {f.name: _shapes(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: _shapes(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_shapes(v) for v in obj]
    return obj

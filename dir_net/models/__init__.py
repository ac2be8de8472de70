"""Models: `build_model(cfg)` picks the class registered under `model.name`.

Every model is a `HandModel` (forward / losses / predict, see base.py and docs/DESIGN.md).
Register a new model by adding its class to `MODELS`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from dir_net.errors import ConfigError
from dir_net.models.base import HandModel
from dir_net.models.dir import DIRModel
from dir_net.models.internet import InterNet
from dir_net.models.simple_baseline import SimpleBaseline2D

MODELS: dict[str, Callable[[Mapping[str, Any]], HandModel]] = {
    "dir": DIRModel,
    "internet": InterNet,
    "simple_baseline2d": SimpleBaseline2D,
}


def build_model(cfg: Mapping[str, Any]) -> HandModel:
    """The model named by `cfg.model.name`, built from the whole config."""
    name = cfg["model"]["name"]
    if name not in MODELS:
        raise ConfigError(f"model.name: no model registered as {name!r}; available: {sorted(MODELS)}")
    return MODELS[name](cfg)


__all__ = ["HandModel", "MODELS", "build_model"]

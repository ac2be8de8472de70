"""The interface every model implements (DIR, InterNet, SimpleBaseline2D)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Mapping

from torch import Tensor, nn

from dir_net.structures import Prediction


class HandModel(nn.Module, ABC):
    """forward(images) -> model-specific output; losses(output, batch) -> named scalars with
    "total"; predict(output, batch) -> Prediction in metres (for evaluation and rendering)."""

    @abstractmethod
    def forward(self, images: Tensor) -> Any:
        """images (B, 3, S, S) float32, ImageNet-normalised RGB."""

    @abstractmethod
    def losses(self, output: Any, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Named scalar loss terms (unweighted) and "total" (the weighted sum to optimise)."""

    @abstractmethod
    def predict(self, output: Any, batch: Mapping[str, Tensor]) -> Prediction:
        """Detached `Prediction` for evaluation and rendering."""

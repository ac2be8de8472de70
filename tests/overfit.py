"""Memorising one fixed batch: the end-to-end trainability check of every model."""

import torch


def fit_one_batch(model, batch: dict, steps: int, lr: float) -> tuple[list[float], dict]:
    """`steps` Adam steps on `batch`; returns the total loss of every step and the last loss dict."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        losses = model.losses(model(batch["image"]), batch)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        history.append(losses["total"].item())
    return history, losses

"""The slowest DIR test (~10 s): a reduced-width DIR memorises one fixed synthetic batch.

Checks that the whole chain (encoder, refinement stages, MANO layer, projections, every loss term)
is trainable end to end: the total loss falls by >= 90% and the final meshes approach the targets.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dir_net.config import load_config
from dir_net.models import build_model
from test_losses_dir import make_batch

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "dir_r50_interhand.yaml"
SMALL = ["model.backbone.width=8", "model.dir.width=32", "model.dir.joint_dim=32", "model.dir.plane_dim=8",
         "model.dir.regressor_hidden=64"]
STEPS = 80


@pytest.fixture
def one_thread():
    """Single-threaded math: much faster than oversubscribed threads on a shared small machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _vertex_error(model, batch) -> float:
    """Mean final-stage vertex error (m) of the root-relative meshes."""
    with torch.no_grad():
        out = model(batch["image"])
    target = batch["verts_3d"] - batch["joints_3d"][:, :, :1]
    return (out.stages[-1].vertices - target).norm(dim=-1).mean().item()


def test_overfits_one_batch(one_thread):
    torch.manual_seed(0)
    model = build_model(load_config(CONFIG, SMALL))
    batch = make_batch(model.hands, batch=2, image_size=64, aux_size=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    error_before = _vertex_error(model, batch)
    history = []
    for _ in range(STEPS):
        losses = model.losses(model(batch["image"]), batch)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        history.append(losses["total"].item())
    assert min(history[-10:]) <= 0.1 * history[0], history[::10]
    error_after = _vertex_error(model, batch)
    assert error_after <= 0.1 * error_before, (error_before, error_after)

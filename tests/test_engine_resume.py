"""Exact resume: a run killed (or stopped by train.max_steps) after step k and resumed produces
the same losses from step k+1 on, and the same final weights, as an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dir_net.engine.checkpoint import read_checkpoint
from dir_net.engine.trainer import Trainer
from test_engine_toys import ToyModel, toy_config, toy_dataset_factory, toy_model_factory

STEPS = 12  # 24 samples / batch 4 = 6 steps per epoch, 2 epochs


def read_losses(run_dir: Path, tag: str = "train/total") -> dict[int, float]:
    """step -> value of a TensorBoard scalar (the latest write wins, as TensorBoard shows it)."""
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return {event.step: event.value for event in acc.Scalars(tag)}


def train(cfg, resume=None, model_factory=toy_model_factory, resumes_at=None):
    """Fit; `resumes_at` = (epoch, batch_in_epoch, step) the run must continue from (a resume that
    loaded nothing would restart at 0 and, being deterministic, still match the losses)."""
    trainer = Trainer(cfg, resume=resume, model_factory=model_factory, dataset_factory=toy_dataset_factory)
    if resumes_at is not None:
        state = trainer.state
        assert (state.epoch, state.batch_in_epoch, state.step) == resumes_at
    return trainer.fit()


class SimulatedKill(RuntimeError):
    pass


class CrashingModel(ToyModel):
    """Raises in forward number `crash_at` (1-based), like a process killed mid-step."""

    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.crash_at, self.calls = crash_at, 0

    def forward(self, images):
        self.calls += 1
        if self.training and self.calls == self.crash_at:
            raise SimulatedKill(f"forward {self.calls}")
        return super().forward(images)


def crashing_factory(crash_at: int):
    def build(cfg):
        torch.manual_seed(cfg.experiment.seed)
        return CrashingModel(crash_at)
    return build


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    cfg = toy_config(tmp_path_factory.mktemp("full"), "train.val_every=0", "train.checkpoint_steps=4")
    result = train(cfg)
    return read_losses(result.run_dir), read_checkpoint(result.last_checkpoint)["model"]


def assert_same_weights(state_a, state_b):
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        torch.testing.assert_close(state_a[key], state_b[key], rtol=0, atol=0, msg=key)


def test_killed_run_resumes_with_identical_losses(tmp_path, uninterrupted):
    full_losses, full_weights = uninterrupted
    cfg = toy_config(tmp_path, "train.val_every=0", "train.checkpoint_steps=4")
    with pytest.raises(SimulatedKill):
        train(cfg, model_factory=crashing_factory(crash_at=10))  # dies during step 10
    ckpt_dir = tmp_path / "toy" / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.glob("step_*.pt")) == [
        "step_00000004.pt", "step_00000006.pt", "step_00000008.pt"]  # 6 = end of epoch 1
    assert max(read_losses(tmp_path / "toy")) == 9  # steps 1..9 were logged before the kill

    result = train(cfg, resume="auto", resumes_at=(1, 2, 8))  # step 8 = 2 batches into epoch 2
    resumed = read_losses(result.run_dir)
    assert result.step == STEPS
    assert sorted(resumed) == list(range(1, STEPS + 1))
    for step in range(9, STEPS + 1):  # step 9 was redone from the step-8 checkpoint
        assert resumed[step] == pytest.approx(full_losses[step], rel=1e-6, abs=0), step
    assert_same_weights(read_checkpoint(result.last_checkpoint)["model"], full_weights)


@pytest.mark.parametrize("workers", [0, 2])
def test_max_steps_stop_mid_epoch_then_resume(tmp_path, uninterrupted, workers):
    """With loader workers too: per-sample seeding makes augmentation independent of them."""
    full_losses, full_weights = uninterrupted
    first = train(toy_config(tmp_path, "train.val_every=0", "train.max_steps=7", f"train.num_workers={workers}"))
    assert first.step == 7 and first.last_checkpoint.name == "step_00000007.pt"
    ckpt = read_checkpoint(first.last_checkpoint)
    assert (ckpt["epoch"], ckpt["batch_in_epoch"], ckpt["step"]) == (1, 1, 7)  # 1 batch into epoch 2

    result = train(toy_config(tmp_path, "train.val_every=0", f"train.num_workers={workers}"),
                   resume=str(first.last_checkpoint), resumes_at=(1, 1, 7))
    resumed = read_losses(result.run_dir)
    assert resumed[8] == pytest.approx(full_losses[8], rel=1e-6, abs=0)
    assert [resumed[s] for s in range(8, STEPS + 1)] == pytest.approx(
        [full_losses[s] for s in range(8, STEPS + 1)], rel=1e-6, abs=0)
    assert_same_weights(read_checkpoint(result.last_checkpoint)["model"], full_weights)


def test_resume_continues_the_learning_rate_schedule(tmp_path):
    full = read_losses(train(toy_config(tmp_path / "a", "train.val_every=0")).run_dir, "train/lr")
    train(toy_config(tmp_path / "b", "train.val_every=0", "train.max_steps=5"))
    resumed = read_losses(train(toy_config(tmp_path / "b", "train.val_every=0"), resume="auto",
                                resumes_at=(0, 5, 5)).run_dir, "train/lr")
    assert [resumed[s] for s in range(1, STEPS + 1)] == pytest.approx([full[s] for s in range(1, STEPS + 1)])
    assert full[1] < full[2] < full[3]  # linear warm-up over the first half epoch (3 steps) ...
    assert full[4] > full[8] > full[STEPS]  # ... then cosine decay


def test_resume_is_exact_on_the_synthetic_dataset_with_augmentation(tmp_path):
    from dir_net.data.synth import generate

    generate(tmp_path / "data", frames=6, seed=0, splits=["train"], cameras=2)  # 12 crops
    extra = (f"data.root={tmp_path / 'data'}", "data.image_size=32", "data.aux_size=8", "train.val_every=0",
             "train.batch_size=2", "train.epochs=2")
    dataset_factory = None  # the real InterHand2.6M reader and DIR pipeline, training augmentation on

    def fit(root, *more, resume=None, resumes_at=None):
        trainer = Trainer(toy_config(root, *extra, *more), resume=resume, model_factory=toy_model_factory,
                          dataset_factory=dataset_factory)
        if resumes_at is not None:
            assert (trainer.state.epoch, trainer.state.batch_in_epoch, trainer.state.step) == resumes_at
        return trainer.fit()

    full = read_losses(fit(tmp_path / "full").run_dir)
    fit(tmp_path / "part", "train.max_steps=8")
    resumed_run = fit(tmp_path / "part", resume="auto", resumes_at=(1, 2, 8)).run_dir  # 6 steps/epoch
    resumed = read_losses(resumed_run)
    assert "train: 12 of 12 samples selected" in (resumed_run / "train.log").read_text()  # logged before it opened
    assert [resumed[s] for s in range(9, 13)] == pytest.approx([full[s] for s in range(9, 13)], rel=1e-6, abs=0)

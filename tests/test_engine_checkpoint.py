"""Checkpoints: contents, keep-last-N and best copy, truncated and incompatible files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from dir_net.engine import checkpoint as ck
from dir_net.engine.trainer import Trainer
from dir_net.errors import CheckpointError, DirNetError
from test_engine_toys import ToyModel, toy_config, toy_dataset_factory, toy_model_factory


def make_trainer(cfg, resume=None, model_factory=toy_model_factory):
    return Trainer(cfg, resume=resume, model_factory=model_factory, dataset_factory=toy_dataset_factory)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 2-epoch toy run with validation, step checkpoints every 2 steps, keep_last 3."""
    cfg = toy_config(tmp_path_factory.mktemp("run"), "train.checkpoint_steps=2", "train.keep_last=3")
    return cfg, make_trainer(cfg).fit()


def truncate(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def test_run_directory_layout_and_checkpoint_contents(trained):
    cfg, result = trained
    run = result.run_dir
    assert (run / "config.yaml").is_file() and (run / "train.log").is_file()
    assert list((run / "tb").glob("events.out.tfevents.*"))
    names = sorted(p.name for p in (run / "checkpoints").glob("step_*.pt"))
    assert names == ["step_00000008.pt", "step_00000010.pt", "step_00000012.pt"]  # keep_last 3
    ckpt = ck.read_checkpoint(result.last_checkpoint)
    assert ckpt["format"] == ck.FORMAT
    assert (ckpt["epoch"], ckpt["batch_in_epoch"], ckpt["step"]) == (2, 0, 12)
    assert ckpt["config"] == cfg.to_dict()
    assert set(ckpt["rng"][0]) >= {"python", "numpy", "torch"}
    assert ckpt["optimizer"]["state"] and ckpt["scheduler"]["last_epoch"] == 12
    assert len(ckpt["val_history"]) == 2 and ckpt["best"]["metric"] == "wrist_scaled/mpjpe"
    assert "step 12/12" in (run / "train.log").read_text()


def test_best_copy_matches_the_best_validation(trained):
    _, result = trained
    history = result.val_history
    values = [h["metrics"]["wrist_scaled"]["mpjpe"] for h in history]
    best = ck.read_checkpoint(result.best_checkpoint)
    assert best["best"]["value"] == pytest.approx(min(values))
    assert best["step"] == history[int(np.argmin(values))]["step"]


def test_rng_state_round_trip():
    state = ck.capture_rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(123), np.random.seed(123), torch.manual_seed(123)
    ck.restore_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_truncated_checkpoint_is_rejected_naming_the_file(trained, tmp_path):
    _, result = trained
    bad = tmp_path / "step_00000012.pt"
    bad.write_bytes(result.last_checkpoint.read_bytes())
    truncate(bad)
    with pytest.raises(CheckpointError, match=r"step_00000012\.pt: unreadable checkpoint, probably truncated"):
        ck.read_checkpoint(bad)


def test_resume_falls_back_to_the_newest_loadable_checkpoint(tmp_path, caplog):
    cfg = toy_config(tmp_path, "train.val_every=0", "train.checkpoint_steps=2", "train.max_steps=6")
    make_trainer(cfg).fit()
    ckpt_dir = tmp_path / "toy" / "checkpoints"
    truncate(ckpt_dir / "step_00000006.pt")
    assert ck.read_checkpoint(ckpt_dir / "step_00000004.pt")["step"] == 4  # the earlier one still loads
    with caplog.at_level("WARNING"):
        trainer = make_trainer(toy_config(tmp_path, "train.val_every=0"), resume="auto")
    assert trainer.state.step == 4 and trainer.last_checkpoint.name == "step_00000004.pt"
    assert "step_00000006.pt: unreadable checkpoint" in caplog.text
    trainer.close()
    # the run goes on from step 4 as a new lineage: the unreadable later file was set aside
    assert sorted(p.name for p in ckpt_dir.glob("step_*.pt")) == ["step_00000002.pt", "step_00000004.pt"]
    (aside,) = ckpt_dir.glob("abandoned_*/step_00000006.pt")
    with pytest.raises(DirNetError, match=r"step_00000006\.pt: unreadable"):
        make_trainer(toy_config(tmp_path, "train.val_every=0"), resume=str(aside))


def test_incompatible_checkpoint_names_the_mismatched_keys(trained):
    _, result = trained

    class Wider(ToyModel):
        def __init__(self):
            super().__init__(width=6)
            self.extra = torch.nn.Linear(2, 2)

    with pytest.raises(CheckpointError) as err:
        ck.load_model_weights(result.last_checkpoint, Wider())
    message = str(err.value)
    assert str(result.last_checkpoint) in message
    assert "missing keys [extra.weight, extra.bias] (2)" in message
    assert "shape mismatch" in message and "features.0.weight (checkpoint (8, 3, 3, 3), model (6, 3, 3, 3))" in message
    model = ToyModel()
    state = ck.read_checkpoint(result.last_checkpoint)["model"]
    state["stray.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"unexpected keys \[stray.weight\] \(1\)"):
        ck.check_model_state("ckpt.pt", model, state)


def test_fresh_run_refuses_a_run_directory_with_checkpoints(trained):
    cfg, _ = trained
    with pytest.raises(DirNetError, match="already has checkpoints .* pass --resume"):
        make_trainer(cfg)


def test_finished_run_resumed_does_nothing(trained):
    cfg, result = trained
    again = make_trainer(cfg, resume="auto").fit()
    assert again.step == result.step == 12


class DivergingModel(ToyModel):
    """ToyModel whose `joints` loss turns NaN from the `diverge_at`-th loss computation on."""

    def __init__(self, diverge_at: int) -> None:
        super().__init__()
        self.calls, self.diverge_at = 0, diverge_at

    def losses(self, output, batch):
        self.calls += 1
        terms = super().losses(output, batch)
        if self.calls >= self.diverge_at:
            terms["joints"] = terms["joints"] * float("nan")
            terms["total"] = terms["joints"] + terms["offset"]
        return terms


@pytest.mark.parametrize("log_every", [1, 0])
def test_non_finite_loss_names_the_step_and_terms_and_keeps_the_last_checkpoint(tmp_path, log_every):
    """Step 3 diverges: the error is a one-line DirNetError (from the log line, or, without logging,
    from the checkpoint that would have saved NaN weights); checkpoints 1 and 2 are intact."""
    from dir_net.engine.trainer import NonFiniteLossError

    cfg = toy_config(tmp_path, "train.checkpoint_steps=1", f"train.log_every={log_every}", "train.val_every=0")
    trainer = make_trainer(cfg, model_factory=lambda c: DivergingModel(diverge_at=3))
    with pytest.raises(NonFiniteLossError) as exc:
        trainer.fit()
    message = str(exc.value)
    assert isinstance(exc.value, DirNetError) and "\n" not in message
    assert message.startswith("step 3: non-finite loss (joints=nan, total=nan)")
    assert "offset" not in message.split(";")[0]  # only the non-finite terms are named
    assert "step_00000002.pt" in message and "train.optimizer.lr (now 0.01)" in message
    assert "dirnet data verify" in message
    saved = sorted(p.name for p in (tmp_path / "toy" / "checkpoints").glob("step_*.pt"))
    assert saved == ["step_00000001.pt", "step_00000002.pt"]
    weights = ck.read_checkpoint(tmp_path / "toy" / "checkpoints" / "step_00000002.pt")["model"]
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())

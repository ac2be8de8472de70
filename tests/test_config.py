"""The config system: schema checks, `_base_` chains, overrides, saving; CLI failures happen
before any work (no run directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dir_net.cli import main as dirnet
from dir_net.config import load_config, parse_overrides, save_config
from dir_net.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_load_and_have_every_section():
    cfg = load_config()
    assert {"experiment", "data", "model", "loss", "train", "evaluation"} <= set(cfg)
    assert cfg.train.optimizer.name == "adamw" and cfg.get_path("train.schedule.name") == "cosine"


def test_unknown_key_in_file_names_key_file_and_suggestion(tmp_path):
    cfg_file = write(tmp_path / "exp.yaml", "train:\n  epochz: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_file)
    assert str(cfg_file) in str(err.value)
    assert "unknown key 'train.epochz'" in str(err.value) and "did you mean 'train.epochs'" in str(err.value)


def test_unknown_top_level_and_override_keys():
    with pytest.raises(ConfigError, match="command line: unknown key 'trian'"):
        load_config(None, ["trian.epochs=3"])
    with pytest.raises(ConfigError, match="unknown key 'train.optimizer.momentum'"):
        load_config(None, ["train.optimizer.momentum=0.9"])


@pytest.mark.parametrize("override, key, expected", [
    ("train.epochs=ten", "train.epochs", "int"),
    ("train.epochs=2.5", "train.epochs", "int"),
    ("train.compile=1", "train.compile", "bool"),
    ("train.optimizer.lr=fast", "train.optimizer.lr", "float"),
    ("train.schedule.milestones=15", "train.schedule.milestones", "list"),
    ("train.optimizer=adam", "train.optimizer", "dict"),
])
def test_wrong_type_names_key_and_expected_type(override, key, expected):
    with pytest.raises(ConfigError, match=f"key '{key}' expects {expected}"):
        load_config(None, [override])


def test_choices_are_enforced():
    with pytest.raises(ConfigError, match=r"key 'model.name' must be one of \['dir', 'internet'"):
        load_config(None, ["model.name=resnet"])
    assert load_config(None, ["model.name=internet"]).model.name == "internet"


def test_int_for_float_is_coerced_and_null_clears():
    cfg = load_config(None, ["train.optimizer.lr=1", "train.max_steps=50"])
    assert cfg.train.optimizer.lr == 1.0 and isinstance(cfg.train.optimizer.lr, float)
    assert load_config(None, ["train.max_steps=50", "train.max_steps="]).train.max_steps is None


def test_base_chain_order_and_relative_paths(tmp_path):
    write(tmp_path / "base" / "root.yaml", "train:\n  epochs: 10\n  batch_size: 8\nexperiment:\n  seed: 1\n")
    write(tmp_path / "base" / "mid.yaml", "_base_: root.yaml\ntrain:\n  epochs: 20\n")
    write(tmp_path / "other.yaml", "experiment:\n  seed: 7\n  name: other\n")
    leaf = write(tmp_path / "exp" / "leaf.yaml",
                 "_base_: [../base/mid.yaml, ../other.yaml]\ntrain:\n  batch_size: 16\n")
    cfg = load_config(leaf, ["train.epochs=30"])
    assert cfg.train.batch_size == 16  # the file beats its bases
    assert cfg.experiment.seed == 7 and cfg.experiment.name == "other"  # later base beats earlier
    assert cfg.train.epochs == 30  # overrides beat everything
    assert load_config(leaf).train.epochs == 20  # mid beats root
    assert cfg.train.optimizer.name == "adamw"  # untouched keys keep their defaults


def test_base_errors(tmp_path):
    a = write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="_base_ cycle"):
        load_config(a)
    missing = write(tmp_path / "m.yaml", "_base_: nowhere.yaml\n")
    with pytest.raises(ConfigError) as err:  # names the file that refers to the missing base
        load_config(missing)
    assert str(err.value).startswith(f"{missing.resolve()}: _base_ file 'nowhere.yaml' not found")
    assert str(tmp_path.resolve() / "nowhere.yaml") in str(err.value) and "\n" not in str(err.value)
    bad_key_in_base = write(tmp_path / "c.yaml", "_base_: d.yaml\n")
    write(tmp_path / "d.yaml", "model:\n  nmae: dir\n")
    with pytest.raises(ConfigError, match=r"d\.yaml: unknown key 'model.nmae'"):
        load_config(bad_key_in_base)


def test_malformed_files_and_overrides(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path / "x.yaml", "train: [unclosed\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path / "y.yaml", "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["train.epochs"])
    assert parse_overrides(["a.b=[1, 2]", "a.c=x", "d=true"]) == {"a": {"b": [1, 2], "c": "x"}, "d": True}


def test_saved_config_reloads_identically(tmp_path):
    cfg = load_config(None, ["train.epochs=3", "experiment.name=saved", "train.schedule.milestones=[1, 2]"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic write left no temporary file


@pytest.mark.parametrize("overrides, message", [
    (["train.epochz=1"], "unknown key 'train.epochz'"),
    (["train.batch_size=big"], "key 'train.batch_size' expects int"),
    (["train.precision=fp8"], "key 'train.precision' must be one of"),
])
def test_cli_rejects_bad_config_before_creating_the_run_dir(tmp_path, capsys, overrides, message):
    cfg_file = write(tmp_path / "exp.yaml", f"experiment:\n  output_dir: {tmp_path / 'work'}\n  name: run\n")
    code = dirnet(["train", "--config", str(cfg_file), *overrides])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("dirnet: error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "work").exists()


def test_cli_config_show_prints_the_resolved_config(tmp_path, capsys):
    cfg_file = write(tmp_path / "exp.yaml", "train:\n  epochs: 4\n")
    assert dirnet(["config", "show", "--config", str(cfg_file), "train.batch_size=2"]) == 0
    shown = capsys.readouterr().out
    assert "epochs: 4" in shown and "batch_size: 2" in shown


def test_cli_missing_dataset_fails_before_creating_the_run_dir(tmp_path, capsys):
    code = dirnet(["train", "--config", str(Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"),
                   f"data.root={tmp_path / 'nowhere'}", f"experiment.output_dir={tmp_path / 'work'}"])
    assert code == 2
    assert "nowhere: data root not found" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def test_exponent_floats_without_a_dot_parse_as_floats(tmp_path):
    """YAML 1.1 reads `1e-4` as a string; the config loader reads it as the float researchers mean."""
    cfg = load_config(None, ["train.optimizer.lr=1e-4"])
    assert cfg.train.optimizer.lr == pytest.approx(1e-4) and isinstance(cfg.train.optimizer.lr, float)
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  optimizer:\n    lr: 5E-4\n")
    assert load_config(path).train.optimizer.lr == pytest.approx(5e-4)
    assert load_config(None, ["experiment.name=1e5x"]).experiment.name == "1e5x"  # not a number


def test_engine_choices_are_checked_at_load_time():
    with pytest.raises(ConfigError, match="train.precision"):
        load_config(None, ["train.precision=fp64"])


def test_duplicate_keys_are_rejected(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("train:\n  epochs: 3\n  epochs: 4\n")
    with pytest.raises(ConfigError, match="duplicate key 'epochs'"):
        load_config(path)

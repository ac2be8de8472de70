"""Data-layer edge cases: empty MANO files, stale prepared maps, bad `data synth` arguments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dir_net.cli import main as dirnet
from dir_net.data.index import aux_dir_for, open_index
from dir_net.data.layout import locate_split
from dir_net.data.subsets import mano_complete
from dir_net.data.synth import generate, is_complete


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    generate(root, frames=2, seed=3, splits=["test"], cameras=1)
    return root


def test_generate_marks_a_finished_dataset(tiny):
    assert is_complete(tiny)
    assert json.loads((tiny / "dirnet_synth.json").read_text())["test"]["frames"] == 2


def test_a_mano_file_without_frames_means_no_fits_not_a_crash(tiny, tmp_path, capsys):
    files = locate_split(tiny, "test")
    files.mano.write_text("{}")
    index = open_index(files, tmp_path / "cache")
    assert not mano_complete(index).any()
    capsys.readouterr()
    # readable data without fits is a finding of the report (exit 0), not bad input (exit 2)
    assert dirnet(["data", "verify", str(tiny), "--split", "test"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["annotations"]["hand without MANO fit"] == report["samples"] > 0


def test_rebuilding_an_index_drops_maps_of_the_old_annotations(tmp_path):
    root = tmp_path / "ds"
    generate(root, frames=2, seed=0, splits=["test"], cameras=1)
    files = locate_split(root, "test")
    index = open_index(files, tmp_path / "cache")
    stale = aux_dir_for(index.dir) / "00000" / "1.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old map")
    generate(root, frames=2, seed=1, splits=["test"], cameras=1)  # same path, new annotations
    open_index(locate_split(root, "test"), tmp_path / "cache")
    assert not stale.exists()


@pytest.mark.parametrize("args, message", [
    (["--frames", "0"], "--frames"),
    (["--cameras", "0"], "--cameras"),
    (["--frames-per-sequence", "0"], "--frames-per-sequence"),
    (["--gestures", "0"], "--gestures"),
])
def test_synth_rejects_bad_sizes(tmp_path, capsys, args, message):
    assert dirnet(["data", "synth", str(tmp_path / "out"), *args]) == 2
    assert message in capsys.readouterr().err


def test_synth_rejects_a_file_as_output(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("x")
    assert dirnet(["data", "synth", str(target), "--frames", "1"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_a_data_json_without_annotations_is_a_one_line_error(tiny, tmp_path, capsys):
    root = tmp_path / "copy"
    shutil.copytree(tiny, root)
    files = locate_split(root, "test")
    files.data.write_text("{}")
    assert dirnet(["data", "index", str(root), "--split", "test"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(files.data) in err and "\n" not in err

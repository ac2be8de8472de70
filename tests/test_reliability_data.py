"""Data reliability: seg/dense maps tied to the hand model, maps of interacting frames with one MANO
fit, truncated JPEGs (verify and training)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from dir_net.cli import main as dirnet
from dir_net.config import load_config
from dir_net.data import build_dataset
from dir_net.data.index import QUALITY_OK, QUALITY_UNREADABLE, aux_dir_for, open_index
from dir_net.data.layout import locate_split
from dir_net.data.quality import image_status, prepare
from dir_net.data.reader import BadImage, aux_path, load_image
from dir_net.data.synth import generate
from dir_net.errors import DataError
from mano.convert import model_npz_bytes, write_atomic
from mano.synthetic import build_hands


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    """A tiny synthetic split ('test', two interacting frames, one camera)."""
    root = tmp_path / "ds"
    generate(root, frames=2, seed=3, splits=["test"], cameras=1)
    return root


def _prepare(root: Path, *overrides: str) -> dict:
    return prepare(load_config(None, list(overrides)), locate_split(root, "test"))


def _aux_maps(root: Path) -> dict[str, bytes]:
    index = open_index(locate_split(root, "test"))
    return {p.name: p.read_bytes() for p in sorted(aux_dir_for(index.dir).rglob("*.png"))}


def _bigger_hand(folder: Path) -> Path:
    """A valid MANO-format model folder whose hands are 20 % larger than the synthetic ones."""
    for side, arrays in build_hands().items():
        arrays = dict(arrays, v_template=arrays["v_template"] * 1.2)
        write_atomic(folder / f"MANO_{side.upper()}.npz", model_npz_bytes(arrays))
    return folder


# -- item 4: maps keyed by the hand model --------------------------------------------------------


def test_prepare_rerenders_maps_of_another_hand_model(dataset: Path, tmp_path: Path) -> None:
    first = _prepare(dataset)
    assert first["aux_maps"]["written"] == 2
    before = _aux_maps(dataset)
    model = _bigger_hand(tmp_path / "mano")
    again = _prepare(dataset, f"mano.model_dir={model}")
    assert again["aux_maps"].get("written") == 2, again["aux_maps"]  # not "already present"
    after = _aux_maps(dataset)
    assert set(after) == set(before) and all(after[k] != before[k] for k in before)
    assert _prepare(dataset, f"mano.model_dir={model}")["aux_maps"] == {"already present": 2}


def test_training_refuses_maps_of_another_hand_model(dataset: Path, tmp_path: Path) -> None:
    _prepare(dataset)
    model = _bigger_hand(tmp_path / "mano")
    common = [f"data.root={dataset}", "data.image_size=64", "data.aux_size=8"]
    assert build_dataset(load_config(None, common), "test", False)[0]["aux_valid"] == 1.0  # same model
    with pytest.raises(DataError) as err:
        build_dataset(load_config(None, [*common, f"mano.model_dir={model}"]), "test", False)
    message = str(err.value)
    assert "hand model" in message and "dirnet data prepare" in message and "\n" not in message


def test_maps_without_a_hand_model_stamp_are_rerendered(dataset: Path) -> None:
    """Maps of an older cache (no record of the model they were drawn with) are not trusted."""
    _prepare(dataset)
    index = open_index(locate_split(dataset, "test"))
    stamps = [p for p in aux_dir_for(index.dir).iterdir() if p.is_file()]
    assert len(stamps) == 1
    stamps[0].unlink()
    assert _prepare(dataset)["aux_maps"].get("written") == 2


# -- item 5: interacting frame with one MANO fit ----------------------------------------------------


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_interacting_frame_with_one_fit_gets_no_map(dataset: Path, missing) -> None:
    files = locate_split(dataset, "test")
    fits = json.loads(files.mano.read_text())
    capture, frames = next(iter(fits.items()))
    frame = next(iter(frames))
    if missing is None:
        fits[capture][frame]["left"] = None
    else:
        fits[capture][frame]["left"]["trans"][0] = missing
    files.mano.write_text(json.dumps(fits))  # NaN is written as the bare token NaN
    counts = _prepare(dataset)["aux_maps"]
    assert counts.get("written") == 1 and counts.get("interacting frame with one MANO fit") == 1, counts
    index = open_index(files)
    rows = [i for i in range(len(index)) if index.mano(i)["present"].sum() == 1]
    assert len(rows) == 1 and int(index.col("hand_type")[rows[0]]) == 2
    one_fit = int(index.col("ann_id")[rows[0]])
    assert not aux_path(aux_dir_for(index.dir), one_fit).exists()
    ds = build_dataset(load_config(None, [f"data.root={dataset}", "data.image_size=64", "data.aux_size=8"]),
                       "test", False)
    valid = {int(ds[i]["id"]): float(ds[i]["aux_valid"]) for i in range(len(ds))}
    assert valid[one_fit] == 0.0 and sorted(valid.values()) == [0.0, 1.0]


def test_forced_prepare_removes_an_old_one_hand_map(dataset: Path) -> None:
    """A map drawn with one hand by an older version is deleted when --force re-renders the frame."""
    _prepare(dataset)
    files = locate_split(dataset, "test")
    fits = json.loads(files.mano.read_text())
    capture, frames = next(iter(fits.items()))
    fits[capture][next(iter(frames))]["right"] = None
    files.mano.write_text(json.dumps(fits))
    index = open_index(files)  # rebuilt: the annotations changed, the old maps are dropped
    aux = aux_dir_for(index.dir)
    one_fit = [int(index.col("ann_id")[i]) for i in range(len(index)) if index.mano(i)["present"].sum() == 1]
    assert len(one_fit) == 1
    stale = aux_path(aux, one_fit[0])
    _prepare(dataset)
    shutil.copy(next(p for p in aux.rglob("*.png") if p != stale), stale)  # as an old version drew it
    counts = prepare(load_config(None, []), files, force=True)["aux_maps"]
    assert counts.get("interacting frame with one MANO fit") == 1 and not stale.exists()


# -- item 6: truncated JPEGs ---------------------------------------------------------------------------


def _truncate_first_image(dataset: Path) -> Path:
    """Cut the first image to 60 % of its bytes (as an interrupted copy would) and return its path."""
    path = open_index(locate_split(dataset, "test")).image_path(0)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def test_verify_counts_truncated_jpeg_as_unreadable(dataset: Path, capsys) -> None:
    index = open_index(locate_split(dataset, "test"))
    good = index.image_path(1)
    assert image_status(str(good))[0] == QUALITY_OK
    path = _truncate_first_image(dataset)
    assert image_status(str(path))[0] == QUALITY_UNREADABLE
    assert dirnet(["data", "verify", str(dataset), "--split", "test"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"]["unreadable"] == 1 and report["images"]["ok"] == 1


def test_jpeg_with_trailing_bytes_after_the_end_marker_is_fine(dataset: Path) -> None:
    path = open_index(locate_split(dataset, "test")).image_path(0)
    path.write_bytes(path.read_bytes() + b"\x00" * 16)
    assert image_status(str(path))[0] == QUALITY_OK
    assert load_image(path).shape[2] == 3


def test_training_skips_truncated_jpeg_with_its_name(dataset: Path, caplog) -> None:
    path = _truncate_first_image(dataset)
    with pytest.raises(BadImage, match="truncated"):
        load_image(path)
    ds = build_dataset(load_config(None, [f"data.root={dataset}", "data.image_size=64", "data.aux_size=8",
                                         "data.pipeline=internet"]), "test", False)
    with caplog.at_level(logging.WARNING, logger="dir_net.data.dataset"):
        ids = {int(ds.get_sample(i, np.random.default_rng(i))["id"]) for i in range(len(ds))}
    assert len(ids) == 1 and len(ds.bad_images) == 1
    assert any(str(path) in r.getMessage() and "truncated" in r.getMessage() for r in caplog.records)

"""Streaming JSON, the columnar index and bad input, on copies of the four real InterHand2.6M samples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dir_net.config import load_config
from dir_net.data.index import QUALITY_BLACK, open_index
from dir_net.data.jsonstream import iter_items
from dir_net.data.layout import locate_split, sample_files
from dir_net.data.subsets import select_rows
from dir_net.errors import DataError
from real_samples import SAMPLES, needs_samples

# The four real samples (mmpose test data) live in the shared folder beside the checkout.
PREFIX = "test_interhand2.6m"
pytestmark = needs_samples


@pytest.fixture()
def samples(tmp_path: Path) -> Path:
    """A writable copy of the sample set."""
    d = tmp_path / "samples"
    shutil.copytree(SAMPLES, d)
    return d


def _load(d: Path, kind: str) -> dict:
    return json.loads((d / f"{PREFIX}_{kind}.json").read_text())


def _save(d: Path, kind: str, obj: dict) -> None:
    (d / f"{PREFIX}_{kind}.json").write_text(json.dumps(obj))


def test_iter_items_across_chunk_boundaries(tmp_path: Path) -> None:
    obj = {"images": [{"id": i, "v": [i * 0.25, 12345678901234], "s": "x" * (i % 37)} for i in range(500)],
           "annotations": [{"id": i} for i in range(300)], "info": 7}
    path = tmp_path / "a.json"
    path.write_text(json.dumps(obj, indent=1))
    items = list(iter_items(path, 2, chunk_chars=61))
    assert [v for k, v in items if k[0] == "images"] == obj["images"]
    assert [v for k, v in items if k[0] == "annotations"] == obj["annotations"]
    assert (("info",), 7) in items


def test_index_equals_json(samples: Path, tmp_path: Path) -> None:
    index = open_index(sample_files(samples), tmp_path / "cache")
    data, joints, cams = _load(samples, "data"), _load(samples, "joint_3d"), _load(samples, "camera")
    images = {img["id"]: img for img in data["images"]}
    assert len(index) == len(data["annotations"]) == 4
    for ann in data["annotations"]:
        i = int(np.flatnonzero(np.asarray(index.col("ann_id")) == ann["id"])[0])
        img = images[ann["image_id"]]
        assert index.file_name(i) == img["file_name"]
        np.testing.assert_allclose(index.col("bbox")[i], ann["bbox"], rtol=1e-6)
        assert index.col("hand_type")[i] == ("right", "left", "interacting").index(ann["hand_type"])
        world, valid = index.world_joints(i)
        frame = joints[str(img["capture"])][str(img["frame_idx"])]
        np.testing.assert_allclose(world, frame["world_coord"], rtol=1e-6)
        np.testing.assert_array_equal(valid, np.asarray(ann["joint_valid"]).reshape(42))
        cam = index.camera(i)
        c = cams[str(img["capture"])]
        np.testing.assert_allclose(cam.R, c["camrot"][img["camera"]])
        np.testing.assert_allclose(cam.campos, c["campos"][img["camera"]])
        np.testing.assert_allclose(cam.focal, c["focal"][img["camera"]])


def test_index_is_memory_mapped_and_rebuilt_when_a_source_changes(samples: Path, tmp_path: Path) -> None:
    files = sample_files(samples)
    index = open_index(files, tmp_path / "cache")
    assert isinstance(index.col("world"), np.memmap)
    mtime = (index.dir / "meta.json").stat().st_mtime_ns
    assert open_index(files, tmp_path / "cache").dir == index.dir
    assert (index.dir / "meta.json").stat().st_mtime_ns == mtime  # current: not rebuilt
    data = _load(samples, "data")
    data["annotations"] = data["annotations"][:3]
    _save(samples, "data", data)
    assert len(open_index(files, tmp_path / "cache")) == 3


def test_truncated_json_names_the_file(samples: Path, tmp_path: Path) -> None:
    path = samples / f"{PREFIX}_joint_3d.json"
    path.write_text(path.read_text()[:-300])
    with pytest.raises(DataError, match=f"{PREFIX}_joint_3d.json.*truncated"):
        open_index(sample_files(samples), tmp_path / "cache")


def test_missing_camera_names_capture_and_camera(samples: Path, tmp_path: Path) -> None:
    cams = _load(samples, "camera")
    for field in ("campos", "camrot", "focal", "princpt"):
        del cams["2"][field]["400012"]
    _save(samples, "camera", cams)
    with pytest.raises(DataError, match="capture 2 camera 400012"):
        open_index(sample_files(samples), tmp_path / "cache")


def test_nan_coordinates_are_counted_and_skipped(samples: Path, tmp_path: Path) -> None:
    joints = _load(samples, "joint_3d")
    joints["3"]["69148"]["world_coord"][5][1] = float("nan")
    _save(samples, "joint_3d", joints)
    index = open_index(sample_files(samples), tmp_path / "cache")
    assert index.meta["counts"]["nonfinite_world_coord"] == 1
    rows = select_rows(index, load_config().data)
    kept = set(np.asarray(index.col("ann_id"))[rows].tolist())
    assert kept == {286291, 471953, 680801}


def test_unknown_split_lists_valid_splits(samples: Path) -> None:
    with pytest.raises(DataError, match="valid splits are train, val, test"):
        locate_split(samples, "training")


def test_subsets_and_quality_flags(samples: Path, tmp_path: Path) -> None:
    index = open_index(sample_files(samples), tmp_path / "cache")
    ids = np.asarray(index.col("ann_id"))

    def kept(*overrides: str) -> set[int]:
        return set(ids[select_rows(index, load_config(None, overrides).data)].tolist())

    assert kept("data.hand_types=interacting") == {286291, 326750}
    assert kept("data.hand_types=single") == {471953, 680801}
    assert kept("data.require_mano=true") == set()  # the samples have no NeuralAnnot file
    (tmp_path / "exclude.txt").write_text("# bad\n286291\n")
    assert kept(f"data.exclude_ids={tmp_path / 'exclude.txt'}") == {326750, 471953, 680801}
    status = np.zeros(len(index), np.uint8)
    status[ids == 680801] = QUALITY_BLACK
    index.write_quality(status)
    assert kept() == {286291, 326750, 471953}
    assert kept("data.drop_black=false") == set(ids.tolist())


def test_v1_layout_and_rootnet(samples: Path, tmp_path: Path) -> None:
    root = tmp_path / "ih26m"
    ann = root / "annotations" / "val"
    ann.mkdir(parents=True)
    for kind in ("data", "camera", "joint_3d"):
        shutil.copy(samples / f"{PREFIX}_{kind}.json", ann / f"InterHand2.6M_val_{kind}.json")
    (root / "rootnet_output").mkdir()
    rootnet = [{"annot_id": 326750, "bbox": [1, 2, 3, 4], "abs_depth": [1000.0, 1010.0], "root_valid": [1.0]}]
    (root / "rootnet_output" / "rootnet_interhand2.6m_output_val.json").write_text(json.dumps(rootnet))
    files = locate_split(root, "val")
    assert files.rootnet is not None and files.image_dir == root / "images" / "val"
    index = open_index(files)  # default cache: ROOT/dirnet_cache
    assert index.dir.parent.parent == root / "dirnet_cache"
    i = int(np.flatnonzero(np.asarray(index.col("ann_id")) == 326750)[0])
    np.testing.assert_allclose(index.col("rootnet_depth")[i], [1000.0, 1010.0])
    assert index.col("rootnet_valid")[i] == 1.0 and index.col("rootnet_valid").sum() == 1.0
    assert locate_split(root, "val", fps=30).rootnet is None  # 30 fps looks for the _30fps file


def test_verify_reports_missing_and_black_images(samples: Path, tmp_path: Path) -> None:
    import cv2

    from dir_net.cli import main
    from dir_net.data.quality import verify

    (samples / "image2017.jpg").unlink()
    cv2.imwrite(str(samples / "image29590.jpg"), np.full((512, 334, 3), 4, np.uint8))
    index = open_index(sample_files(samples), tmp_path / "cache")
    report = verify(index)
    assert report["images"] == {"ok": 2, "missing": 1, "unreadable": 0, "black": 1}
    bad = (index.dir / "bad_ids.txt").read_text()
    assert "471953\tmissing image" in bad and "680801\tblack image" in bad
    ids = np.asarray(index.col("ann_id"))
    assert set(ids[select_rows(index, load_config().data)].tolist()) == {286291, 326750}
    assert main(["data", "verify", str(samples), f"data.cache_dir={tmp_path / 'cache'}"]) == 0
    assert main(["data", "index", str(tmp_path / "nowhere"), "--split", "dev"]) == 2


def test_v0_layout_and_annotation_subsets(samples: Path, tmp_path: Path) -> None:
    root = tmp_path / "v0"
    for sub in ("all", "human_annot"):
        d = root / "annotations" / sub
        d.mkdir(parents=True)
        for kind in ("data", "camera", "joint_3d"):
            shutil.copy(samples / f"{PREFIX}_{kind}.json", d / f"InterHand2.6M_test_{kind}.json")
    files = locate_split(root, "test", annot_subset="human")
    assert files.layout == "v0.0" and files.data.parent.name == "human_annot"
    with pytest.raises(DataError, match="machine"):
        locate_split(root, "test", annot_subset="machine")
    # v1.0: the subset is an id list beside the split's annotations
    v1 = tmp_path / "v1" / "annotations" / "test"
    v1.mkdir(parents=True)
    for kind in ("data", "camera", "joint_3d"):
        shutil.copy(samples / f"{PREFIX}_{kind}.json", v1 / f"InterHand2.6M_test_{kind}.json")
    (v1 / "aid_human_annot_test.txt").write_text("326750\n471953\n")
    files = locate_split(tmp_path / "v1", "test", annot_subset="human")
    index = open_index(files, tmp_path / "cache")
    rows = select_rows(index, load_config().data, files.aid_list)
    assert set(np.asarray(index.col("ann_id"))[rows].tolist()) == {326750, 471953}

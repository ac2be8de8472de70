"""STB / RHD: synthetic sets in the parsed format -> index -> records and InterNet samples; the
original-release converters round-trip the synthetic originals; bad files are one-line errors;
the InterNet STB / RHD configs train two steps."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from dir_net.cli import main as dirnet
from dir_net.config import load_config
from dir_net.data import build_dataset
from dir_net.data.reader import read_record
from dir_net.data.stb_rhd.originals import convert_rhd, convert_stb, load_pickle, load_stb_labels
from dir_net.data.stb_rhd.parsed import locate, open_parsed_index
from dir_net.errors import ConfigError, DataError
from mano.joints import WRIST_FIRST_NAMES
from gl import no_gl

REPO = Path(__file__).resolve().parent.parent
STB_FRAMES, RHD_FRAMES = 2, 4  # per split: STB -> 2 sequences x 1 frame x 2 views; RHD -> 4 images


def _generate(root: Path, dataset: str, frames: int) -> Path:
    from dir_net.data.synth_stb_rhd import generate
    from dir_net.render.renderer import RenderUnavailableError

    try:
        generate(root, dataset, frames=frames, seed=3)
    except RenderUnavailableError as exc:
        no_gl(exc)
    return root


@pytest.fixture(scope="module")
def stb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("stb"), "stb", STB_FRAMES)


@pytest.fixture(scope="module")
def rhd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("rhd"), "rhd", RHD_FRAMES)


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _rows_by_id(index) -> dict[int, int]:
    return {int(a): r for r, a in enumerate(np.asarray(index.col("ann_id")))}


def _slot(name: str) -> int:
    return WRIST_FIRST_NAMES.index(name)


# -- loader ----------------------------------------------------------------------------------------
def test_stb_left_hand_goes_to_hand_axis_1_in_wrist_first_order(stb_root: Path) -> None:
    files = locate(stb_root, "stb", "test")
    index = open_parsed_index(files)
    data = _json(stb_root / "data" / "STB_test.json")
    images = {im["id"]: im for im in data["images"]}
    rows = _rows_by_id(index)
    assert len(index) == len(data["annotations"]) == 2 * 2 * 1
    for ann in data["annotations"]:
        rec = read_record(index, rows[ann["id"]], with_mano=False)
        cam = np.asarray(ann["joint_cam"])  # STB: 0 palm, pinky 1-4, ring 5-8, middle 9-12, index 13-16, thumb 17-20
        assert rec.hand_type == 1
        left = rec.joints_cam[1] * 1000.0
        np.testing.assert_allclose(left[0], cam[0], atol=1e-3)  # the palm centre is the root (slot 0)
        np.testing.assert_allclose(left[_slot("thumb1")], cam[17], atol=1e-3)
        np.testing.assert_allclose(left[_slot("thumb4")], cam[20], atol=1e-3)
        np.testing.assert_allclose(left[_slot("index1")], cam[13], atol=1e-3)
        np.testing.assert_allclose(left[_slot("middle1")], cam[9], atol=1e-3)
        np.testing.assert_allclose(left[_slot("pinky1")], cam[1], atol=1e-3)
        np.testing.assert_allclose(left[_slot("pinky4")], cam[4], atol=1e-3)
        assert rec.joint_valid[1].all() and not rec.joint_valid[0].any()
        image = images[ann["image_id"]]
        assert index.image_path(rows[ann["id"]]) == (stb_root / "data" / "images" / image["seq_name"] /
                                                     image["file_name"]).resolve()
        np.testing.assert_allclose(rec.camera.K[[0, 1], [0, 1]], image["cam_param"]["focal"])
        np.testing.assert_allclose(rec.camera.project(rec.joints_cam[1]), np.asarray(ann["joint_img"])[
            [0, 17, 18, 19, 20, 13, 14, 15, 16, 9, 10, 11, 12, 5, 6, 7, 8, 1, 2, 3, 4]], atol=1e-2)


def test_rhd_hands_go_to_their_side_with_tips_last(rhd_root: Path) -> None:
    index = open_parsed_index(locate(rhd_root, "rhd", "train"))
    data = _json(rhd_root / "data" / "RHD_training.json")
    rows = _rows_by_id(index)
    sides = set()
    for ann in data["annotations"]:
        rec = read_record(index, rows[ann["id"]], with_mano=False)
        h = {"right": 0, "left": 1}[ann["hand_type"]]
        sides.add(h)
        assert rec.hand_type == h
        cam, valid = np.asarray(ann["joint_cam"]), np.asarray(ann["joint_valid"])  # RHD: wrist, thumb4..1, ...
        hand = rec.joints_cam[h] * 1000.0
        np.testing.assert_allclose(hand[_slot("wrist")], cam[0], atol=1e-3)
        np.testing.assert_allclose(hand[_slot("thumb4")], cam[1], atol=1e-3)
        np.testing.assert_allclose(hand[_slot("thumb1")], cam[4], atol=1e-3)
        np.testing.assert_allclose(hand[_slot("pinky1")], cam[20], atol=1e-3)
        assert rec.joint_valid[h, _slot("thumb1")] == valid[4]
        assert rec.joint_valid[h, _slot("index4")] == valid[5]
        assert not rec.joint_valid[1 - h].any()
    assert sides == {0, 1}  # seed 3 draws both sides


def test_stb_root_and_joint_order_are_configurable(stb_root: Path) -> None:
    files = locate(stb_root, "stb", "train")
    palm = open_parsed_index(files)
    wrist = open_parsed_index(files, stb_root="wrist")
    raw = open_parsed_index(files, joint_order="wrist_first")
    assert len({palm.dir, wrist.dir, raw.dir}) == 3  # one index per convention
    ann = _json(stb_root / "data" / "STB_train.json")["annotations"][0]
    cam = np.asarray(ann["joint_cam"])
    row = _rows_by_id(palm)[ann["id"]]
    est = read_record(wrist, row, with_mano=False).joints_cam[1] * 1000.0
    np.testing.assert_allclose(est[0], 2 * cam[0] - cam[9], atol=1e-3)  # wrist = 2 palm - middle MCP
    np.testing.assert_allclose(est[1:], read_record(palm, row, with_mano=False).joints_cam[1, 1:] * 1000.0)
    np.testing.assert_allclose(read_record(raw, row, with_mano=False).joints_cam[1] * 1000.0, cam, atol=1e-3)
    with pytest.raises(ConfigError, match="joint_order"):
        open_parsed_index(files, joint_order="interhand")


def _cfg(root: Path, dataset: str, *overrides: str):
    return load_config(REPO / "configs" / f"internet_r50_{dataset}.yaml", [f"data.root={root}", *overrides])


@pytest.mark.parametrize("dataset", ["stb", "rhd"])
def test_internet_pipeline_consumes_the_samples(dataset: str, request: pytest.FixtureRequest) -> None:
    root = request.getfixturevalue(f"{dataset}_root")
    cfg = _cfg(root, dataset, "data.pipeline=internet")
    test_set = build_dataset(cfg, "test", train=False)
    name = "STB_test.json" if dataset == "stb" else "RHD_evaluation.json"
    anns = {a["id"]: a for a in _json(root / "data" / name)["annotations"]}
    assert len(test_set) == len(anns)
    for i in range(len(test_set)):
        s = test_set.get_sample(i, np.random.default_rng(0))
        ann = anns[int(s["id"])]
        h = int(s["hand_type"])
        assert h == {"right": 0, "left": 1}[ann["hand_type"]]
        np.testing.assert_array_equal(s["hand_present"], np.eye(2)[h])
        assert s["root_valid"] == 0 and not s["joint_valid"][1 - h].any()
        # crop pixels back to the original image land on the json's joint_img (root slot 0 = json joint 0)
        uv = s["joints_2d"][h] @ s["crop_to_image"][:, :2].T + s["crop_to_image"][:, 2]
        np.testing.assert_allclose(uv[0], ann["joint_img"][0], atol=0.05)
        assert np.isfinite(s["joints_25d"]).all() and np.isfinite(s["joints_3d"]).all()
    train_set = build_dataset(cfg, "train", train=True)
    for i in range(len(train_set)):
        s = train_set.get_sample(i, np.random.default_rng(i))
        for key, value in s.items():
            assert np.isfinite(np.asarray(value, np.float64)).all(), key


def test_dir_pipeline_and_unknown_dataset_are_config_errors(stb_root: Path) -> None:
    with pytest.raises(ConfigError, match="data.pipeline"):
        build_dataset(load_config(None, [f"data.root={stb_root}", "data.dataset=stb"]), "train", train=True)
    with pytest.raises(ConfigError, match="data.dataset"):
        load_config(None, ["data.dataset=freihand"])


@pytest.mark.parametrize("dataset, samples, root_name", [("stb", 4, "palm"), ("rhd", RHD_FRAMES, "wrist")])
def test_verify_prepare_and_index_commands(dataset: str, samples: int, root_name: str,
                                           request: pytest.FixtureRequest, capsys: pytest.CaptureFixture) -> None:
    root = str(request.getfixturevalue(f"{dataset}_root"))
    assert dirnet(["data", "verify", root, "--dataset", dataset, "--split", "test"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == samples and report["images"]["ok"] == samples
    assert report["annotations"]["unknown hand_type"] == 0
    assert dirnet(["data", "prepare", root, "--dataset", dataset, "--split", "train"]) == 0
    assert json.loads(capsys.readouterr().out)["verify"]["images"]["missing"] == 0
    assert dirnet(["data", "index", root, "--dataset", dataset, "--split", "test"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["joint_order"] == dataset and meta["counts"]["joint_img_mismatch"] == 0
    assert meta["skeleton_names"][0] == f"l_{root_name}" and meta["skeleton_names"][21] == f"r_{root_name}"


def test_rootnet_file_is_indexed_for_the_test_split(stb_root: Path) -> None:
    test = open_parsed_index(locate(stb_root, "stb", "test"))
    train = open_parsed_index(locate(stb_root, "stb", "train"))
    assert test.meta["has_rootnet"] and not train.meta["has_rootnet"]
    entries = {e["annot_id"]: e for e in _json(stb_root / "rootnet_output" / "rootnet_stb_output.json")}
    depth = np.asarray(test.col("rootnet_depth"))
    for r, ann_id in enumerate(np.asarray(test.col("ann_id"))):
        assert depth[r] == pytest.approx([entries[int(ann_id)]["abs_depth"]] * 2, abs=1e-3)


# -- converters --------------------------------------------------------------------------------------
def _assert_same_annotations(converted: dict, expected: dict, key) -> None:
    got = {key(converted, a): a for a in converted["annotations"]}
    want = {key(expected, a): a for a in expected["annotations"]}
    assert got.keys() == want.keys()
    for k, a in want.items():
        b = got[k]
        assert b["hand_type"] == a["hand_type"] and b["joint_valid"] == a["joint_valid"]
        np.testing.assert_allclose(b["joint_cam"], a["joint_cam"], atol=1e-3)
        np.testing.assert_allclose(b["joint_img"], a["joint_img"], atol=1e-3)
        np.testing.assert_allclose(b["bbox"], a["bbox"], atol=1e-3)


def test_rhd_pickle_converter_round_trips(rhd_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "rhd_converted"
    summary = dirnet(["data", "convert-rhd", str(rhd_root / "data"), str(out)])
    assert summary == 0
    for split in ("training", "evaluation"):
        conv, orig = _json(out / "data" / f"RHD_{split}.json"), _json(rhd_root / "data" / f"RHD_{split}.json")
        images = lambda d: {im["id"]: im for im in d["images"]}  # noqa: E731
        assert images(conv) == images(orig)
        _assert_same_annotations(conv, orig, lambda d, a: a["image_id"])
        assert (out / "data" / split / "color" / "00000.png").is_file()  # linked image folder
    index = open_parsed_index(locate(out, "rhd", "test"))
    assert len(index) == RHD_FRAMES and index.image_path(0).is_file()


def test_stb_mat_converter_round_trips(stb_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "stb_converted"
    assert dirnet(["data", "convert-stb", str(stb_root / "data" / "images"), str(out)]) == 0
    for split in ("train", "test"):
        conv, orig = _json(out / "data" / f"STB_{split}.json"), _json(stb_root / "data" / f"STB_{split}.json")

        def key(d: dict, a: dict) -> tuple[str, str]:
            image = next(im for im in d["images"] if im["id"] == a["image_id"])
            return image["seq_name"], image["file_name"]

        _assert_same_annotations(conv, orig, key)  # the right view: the left labels shifted by the baseline
    index = open_parsed_index(locate(out, "stb", "test"))
    assert all(index.image_path(i).is_file() for i in range(len(index)))
    assert dirnet(["data", "convert-stb", str(stb_root / "data" / "images"), str(tmp_path / "left"),
                   "--views", "left"]) == 0
    assert len(_json(tmp_path / "left" / "data" / "STB_test.json")["annotations"]) == 2


# -- bad files: one-line errors naming the file and field ---------------------------------------------
def _one_line(exc: pytest.ExceptionInfo, *parts: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg
    for part in parts:
        assert part in msg, (part, msg)


def _copy_set(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("dirnet_cache", "*.png"))
    return dst


def test_truncated_json_is_one_line_error(stb_root: Path, tmp_path: Path) -> None:
    root = _copy_set(stb_root, tmp_path / "stb")
    path = root / "data" / "STB_test.json"
    path.write_text(path.read_text()[: len(path.read_text()) // 2])
    with pytest.raises(DataError) as exc:
        open_parsed_index(locate(root, "stb", "test"))
    _one_line(exc, str(path))


@pytest.mark.parametrize("field, value, expect", [
    ("joint_cam", [[0.0, 0.0, 500.0]] * 20, "joint_cam"),
    ("joint_valid", [1] * 42, "joint_valid"),
    ("hand_type", "interacting", "hand_type"),
    ("joint_img", "nan-text", "joint_img"),
])
def test_bad_annotation_fields_are_one_line_errors(rhd_root: Path, tmp_path: Path, field: str, value, expect: str
                                                   ) -> None:
    root = _copy_set(rhd_root, tmp_path / "rhd")
    path = root / "data" / "RHD_evaluation.json"
    data = _json(path)
    data["annotations"][1][field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as exc:
        open_parsed_index(locate(root, "rhd", "test"))
    _one_line(exc, str(path), f"annotation id {data['annotations'][1]['id']}", f"'{expect}'")


def test_bad_file_through_the_cli_exits_2(rhd_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _copy_set(rhd_root, tmp_path / "rhd")
    path = root / "data" / "RHD_training.json"
    data = _json(path)
    data["annotations"][0]["hand_type"] = "both"
    path.write_text(json.dumps(data))
    assert dirnet(["data", "index", str(root), "--dataset", "rhd", "--split", "train"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "'hand_type'" in err


def test_truncated_and_foreign_pickles_are_refused(rhd_root: Path, tmp_path: Path) -> None:
    good = rhd_root / "data" / "training" / "anno_training.pickle"
    assert set(load_pickle(good)) == set(range(RHD_FRAMES))
    truncated = tmp_path / "anno_truncated.pickle"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError) as exc:
        load_pickle(truncated)
    _one_line(exc, str(truncated), "truncated")
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    foreign = tmp_path / "anno_foreign.pickle"
    foreign.write_bytes(pickle.dumps({0: {"xyz": Payload()}}, protocol=2))
    with pytest.raises(DataError) as exc:
        load_pickle(foreign)
    _one_line(exc, str(foreign), "refusing", "mkdir")
    assert not marker.exists()


def test_bad_rhd_sample_is_one_line_error(tmp_path: Path) -> None:
    src = tmp_path / "RHD_published_v2" / "training"
    src.mkdir(parents=True)
    anno = {0: {"xyz": np.zeros((21, 3), np.float32), "uv_vis": np.zeros((42, 3)), "K": np.eye(3)}}
    (src / "anno_training.pickle").write_bytes(pickle.dumps(anno, protocol=2))
    with pytest.raises(DataError) as exc:
        convert_rhd(src.parent, tmp_path / "out")
    _one_line(exc, "anno_training.pickle", "sample 0", "'xyz'", "42x3")


def test_bad_stb_labels_are_one_line_errors(stb_root: Path, tmp_path: Path) -> None:
    import scipy.io

    good = stb_root / "data" / "images" / "labels" / "B1Counting_BB.mat"
    assert load_stb_labels(good).shape == (1, 21, 3)
    truncated = tmp_path / "B1Counting_BB.mat"
    truncated.write_bytes(good.read_bytes()[:150])
    with pytest.raises(DataError) as exc:
        load_stb_labels(truncated)
    _one_line(exc, str(truncated))
    wrong = tmp_path / "wrong.mat"
    scipy.io.savemat(str(wrong), {"handPara": np.zeros((3, 20, 5))})
    with pytest.raises(DataError) as exc:
        load_stb_labels(wrong)
    _one_line(exc, str(wrong), "'handPara'", "3 x 21")
    other = tmp_path / "other.mat"
    scipy.io.savemat(str(other), {"joints": np.zeros((3, 21, 5))})
    with pytest.raises(DataError) as exc:
        load_stb_labels(other)
    _one_line(exc, str(other), "'handPara' missing")
    with pytest.raises(DataError, match="intrinsics"):
        convert_stb(stb_root / "data" / "images", tmp_path / "sk", camera="sk")


# -- training ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["stb", "rhd"])
def test_internet_config_trains_two_steps(dataset: str, request: pytest.FixtureRequest, tmp_path: Path,
                                          one_thread: None) -> None:
    from dir_net.engine.trainer import Trainer

    root = request.getfixturevalue(f"{dataset}_root")
    cfg = _cfg(root, dataset, "train.max_steps=2", "train.batch_size=2", "train.num_workers=0", "train.device=cpu",
               "model.backbone.width=8", "data.image_size=64", "train.val_every=0",
               f"experiment.output_dir={tmp_path}")
    assert cfg.train.schedule.milestones == [45, 47] and cfg.train.epochs == 50
    assert list(cfg.evaluation.protocols) == ["epe"]
    result = Trainer(cfg).fit()
    assert result.step == 2
    assert (tmp_path / f"internet_r50_{dataset}" / "checkpoints" / "step_00000002.pt").is_file()


# -- official STB / RHD InterNet checkpoints ---------------------------------------------------------------
def test_official_stb_rhd_style_snapshot_converts(tmp_path: Path) -> None:
    """An official-release-style snapshot ({'network': module.* keys}; the LEFT hand in head 1) converts
    with --option dataset=stb|rhd into exactly the project's InterNet keys, head 1 -> the left hand."""
    import torch

    from dir_net.convert import convert_file
    from dir_net.convert.internet_official import RENAMES
    from dir_net.models import build_model

    cfg = load_config(REPO / "configs" / "internet_r50_stb.yaml", [])
    with torch.device("meta"):
        project_keys = set(build_model(cfg).state_dict())
    state = {k: torch.full(v.shape, float(i % 7), dtype=v.dtype) for i, (k, v) in
             enumerate(build_model(cfg).state_dict().items())}
    back = [(new.format(slot=2 - head), old.format(h=head)) for old, new in RENAMES if "{h}" in old
            for head in (1, 2)] + [(new, old) for old, new in RENAMES if "{h}" not in old]
    source = {}
    for key, tensor in state.items():
        new, old = next((n, o) for n, o in back if key.startswith(n))
        source["module." + old + key[len(new):]] = tensor
    source["module.pose_net.joint_deconv_1.0.weight"] = torch.full_like(state["heads.1.deconv.0.weight"], 3.5)
    path = tmp_path / "snapshot_49.pth.tar"
    torch.save({"epoch": 49, "network": source, "optimizer": {}}, path)
    for dataset in ("stb", "rhd"):
        converted = convert_file("internet-official", path, {"dataset": dataset})
        assert set(converted.model_state) == project_keys
        assert (converted.model_state["heads.1.deconv.0.weight"] == 3.5).all()  # source head 1 = left hand


def test_root_depth_files_for_the_internet_model(rhd_root: Path, stb_root: Path, tmp_path: Path) -> None:
    import torch

    from dir_net.models.internet import RootNetDepths

    root = _copy_set(rhd_root, tmp_path / "rhd")
    path = root / "data" / "RHD_evaluation.json"
    data = _json(path)
    data["annotations"][0]["joint_valid"][0] = 0  # an invisible wrist keeps its GT depth
    path.write_text(json.dumps(data))
    out = tmp_path / "gt_depths.json"
    assert dirnet(["data", "root-depths", str(root), "--dataset", "rhd", "--source", "gt", "--out", str(out)]) == 0
    anns = {a["id"]: a for a in data["annotations"]}
    entries = _json(out)
    assert [e["annot_id"] for e in entries] == sorted(anns)
    for e in entries:  # the root's own z, also where the root is flagged invalid (official abs_depth)
        assert e["abs_depth"] == pytest.approx([anns[e["annot_id"]]["joint_cam"][0][2]] * 2, abs=1e-3)
    depths = RootNetDepths(out)  # the model reads it
    assert tuple(depths.lookup(torch.tensor([entries[0]["annot_id"]])).shape) == (1, 2)
    rootnet = tmp_path / "rootnet.json"
    assert dirnet(["data", "root-depths", str(stb_root), "--dataset", "stb", "--source", "rootnet",
                   "--out", str(rootnet)]) == 0
    official = {e["annot_id"]: e for e in _json(stb_root / "rootnet_output" / "rootnet_stb_output.json")}
    for e in _json(rootnet):
        assert e["abs_depth"][0] == pytest.approx(official[e["annot_id"]]["abs_depth"], abs=1e-3)
        np.testing.assert_allclose(e["bbox"], official[e["annot_id"]]["bbox"], atol=1e-3)
    assert dirnet(["data", "root-depths", str(stb_root), "--dataset", "stb", "--split", "train", "--source",
                   "rootnet", "--out", str(tmp_path / "x.json")]) == 2


def _rhd_sample(visible_left: int, visible_right: int) -> dict[str, np.ndarray]:
    xyz = np.concatenate([np.random.default_rng(0).uniform(-0.05, 0.05, (42, 2)), np.full((42, 1), 0.5)], 1)
    vis = np.zeros(42)
    vis[:visible_left], vis[21:21 + visible_right] = 1, 1
    return {"xyz": xyz.astype(np.float32), "uv_vis": np.concatenate([np.zeros((42, 2)), vis[:, None]], 1),
            "K": np.array([[300.0, 0, 160], [0, 300.0, 160], [0, 0, 1]])}


@pytest.mark.parametrize("policy, expected", [("dominant", [["left"], ["right"]]),
                                              ("visible", [["right", "left"], ["right"]])])
def test_rhd_hand_policy(tmp_path: Path, policy: str, expected: list[list[str]]) -> None:
    src = tmp_path / "RHD_published_v2" / "evaluation"
    src.mkdir(parents=True)
    anno = {0: _rhd_sample(visible_left=15, visible_right=6), 1: _rhd_sample(visible_left=0, visible_right=21)}
    (src / "anno_evaluation.pickle").write_bytes(pickle.dumps(anno, protocol=2))
    convert_rhd(src.parent, tmp_path / "out", policy, link_images=False)
    anns = _json(tmp_path / "out" / "data" / "RHD_evaluation.json")["annotations"]
    assert [[a["hand_type"] for a in anns if a["image_id"] == i] for i in (0, 1)] == expected
    left = next(a for a in anns if a["image_id"] == 0 and a["hand_type"] == "left")
    np.testing.assert_allclose(left["joint_cam"], anno[0]["xyz"][:21].astype(np.float64) * 1000.0, atol=1e-3)
    assert left["joint_valid"] == [1] * 15 + [0] * 6


def test_bad_skeleton_file_is_one_line_error(stb_root: Path, tmp_path: Path) -> None:
    root = _copy_set(stb_root, tmp_path / "stb")
    path = root / "data" / "skeleton.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:30]) + "\n")
    with pytest.raises(DataError) as exc:
        open_parsed_index(locate(root, "stb", "train"))
    _one_line(exc, str(path), "42 joints")


def test_synth_command_writes_a_set_the_loader_reads(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from dir_net.render.renderer import RenderUnavailableError

    try:
        rc = dirnet(["data", "synth", "--dataset", "rhd", "--frames", "1", str(tmp_path / "rhd")])
    except RenderUnavailableError as exc:
        no_gl(exc)
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dataset"] == "rhd" and summary["evaluation"] == {"images": 1, "annotations": 1}
    assert (tmp_path / "rhd" / "dirnet_synth_rhd.json").is_file()
    assert len(open_parsed_index(locate(tmp_path / "rhd", "rhd", "test"))) == 1
    assert dirnet(["data", "synth", "--dataset", "stb", "--frames", "0", str(tmp_path / "stb")]) == 2

"""Synthetic round trip: generator -> index -> prepared maps -> DIR / InterNet pipelines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dir_net.config import load_config
from dir_net.data import build_dataset, locate_split, open_index
from dir_net.data.mano_gt import GTHands
from dir_net.data.quality import prepare_aux, verify
from dir_net.data.synth import generate

FRAMES, CAMERAS = 6, 2


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(root, frames=FRAMES, seed=0, splits=["train"], cameras=CAMERAS, missing_mano=0.0)
    index = open_index(locate_split(root, "train"))
    verify(index)
    prepare_aux(index, GTHands())
    return root


def _cfg(root: Path, *overrides: str):
    return load_config(None, [f"data.root={root}", *overrides])


def test_layout_and_index_equal_the_json(synth_root: Path) -> None:
    files = locate_split(synth_root, "train")
    assert files.mano is not None
    index = open_index(files)
    ann_dir = synth_root / "annotations" / "train"
    data = json.loads((ann_dir / "InterHand2.6M_train_data.json").read_text())
    joints = json.loads((ann_dir / "InterHand2.6M_train_joint_3d.json").read_text())
    fits = json.loads((ann_dir / "InterHand2.6M_train_MANO_NeuralAnnot.json").read_text())
    assert len(index) == len(data["images"]) == FRAMES * CAMERAS
    assert {img["width"] for img in data["images"]} == {334, 512}
    images = {img["id"]: img for img in data["images"]}
    ids = np.asarray(index.col("ann_id"))
    for ann in data["annotations"]:
        i = int(np.flatnonzero(ids == ann["id"])[0])
        img = images[ann["image_id"]]
        assert index.file_name(i) == img["file_name"]
        assert (synth_root / "images" / "train" / img["file_name"]).is_file()
        frame = joints[str(img["capture"])][str(img["frame_idx"])]
        world, _ = index.world_joints(i)
        np.testing.assert_allclose(world, frame["world_coord"], atol=1e-3)
        fit = fits[str(img["capture"])][str(img["frame_idx"])]
        mano = index.mano(i)
        for h, side in enumerate(("right", "left")):
            assert mano["present"][h] == (fit[side] is not None)
            if fit[side] is not None:
                np.testing.assert_allclose(mano["pose"][h], fit[side]["pose"], atol=1e-6)
                np.testing.assert_allclose(mano["trans"][h], fit[side]["trans"], atol=1e-6)
    assert set(np.asarray(index.col("hand_type")).tolist()) >= {0, 2}  # single and interacting frames


def test_projected_joints_fall_on_the_rendered_hands(synth_root: Path) -> None:
    ds = build_dataset(_cfg(synth_root), "train", train=False)
    hits, total = 0, 0
    for i in range(len(ds)):
        s = ds[i]
        assert s["aux_valid"] == 1.0
        uv = np.round(s["joints_2d"] * ds.pipeline.aux_size / ds.pipeline.size - 0.5).astype(int)
        for h in range(2):
            if not s["mano_valid"][h]:
                continue
            inside = (uv[h] >= 0).all(1) & (uv[h] < ds.pipeline.aux_size).all(1)
            assert inside.all()  # DIR crops contain the hands
            labels = s["seg"][uv[h, :, 1], uv[h, :, 0]]
            hits += int((labels > 0).sum())
            total += len(labels)
            if s["hand_type"] != 2:
                assert (labels == h + 1).mean() > 0.8  # single hand: its own label
        assert (s["seg"] > 0).any() and (s["seg"] == 0).any()
    assert hits / total > 0.9


def test_dir_flip_keeps_2d_3d_and_labels_consistent(synth_root: Path) -> None:
    still = tuple(f"data.dir.{k}=0" for k in ("scale", "rotation", "translation", "color", "blur_prob"))
    plain = build_dataset(_cfg(synth_root, *still, "data.dir.flip=0"), "train", train=True)
    flipped = build_dataset(_cfg(synth_root, *still, "data.dir.flip=1"), "train", train=True)
    rotated = build_dataset(_cfg(synth_root, "data.dir.flip=1", "data.dir.rotation=60"), "train", train=True)
    hands = GTHands().layer
    S = plain.pipeline.size
    for i in range(len(plain)):
        a, b, r = plain[i], flipped[i], rotated[i]
        assert a["id"] == b["id"]
        assert b["hand_type"] == {0: 1, 1: 0, 2: 2}[int(a["hand_type"])]
        np.testing.assert_array_equal(b["mano_valid"], a["mano_valid"][::-1])
        mirrored = a["joints_2d"][::-1].copy()
        mirrored[..., 0] = S - 1 - mirrored[..., 0]
        np.testing.assert_allclose(b["joints_2d"], mirrored, atol=1e-3)
        diff = np.abs(b["image"] - a["image"][:, :, ::-1])  # warpAffine's fixed-point rounding differs
        assert diff.mean() < 1e-3 and diff.max() < 0.1
        np.testing.assert_array_equal(b["seg"], np.array([0, 2, 1])[a["seg"][:, ::-1]])
        for s in (b, r):
            m = s["mano_valid"] > 0
            proj = s["joints_3d"][..., :2] / s["joints_3d"][..., 2:] @ s["K_crop"][:2, :2].T + s["K_crop"][:2, 2]
            np.testing.assert_allclose(proj, s["joints_2d"], atol=1e-2)
            verts, _ = hands.forward_numpy(s["mano_root"], s["mano_finger"], s["mano_betas"])
            offset = s["verts_3d"] - verts  # the same translation for every vertex of a hand
            assert np.abs(offset[m] - offset[m].mean(1, keepdims=True)).max() < 1e-4


def test_internet_pipeline_targets(synth_root: Path) -> None:
    ds = build_dataset(_cfg(synth_root, "data.pipeline=internet"), "train", train=True)
    for i in range(len(ds)):
        s = ds[i]
        assert s["joints_25d"].shape == (2, 21, 3) and s["rel_root_depth"].shape == (1,)
        np.testing.assert_allclose(s["joints_25d"][..., :2], s["joints_2d"])
        valid = s["joint_valid"] > 0
        assert (np.abs(s["joints_25d"][..., 2][valid]) <= 0.2).all()
        assert ((s["joints_2d"][valid] >= 0) & (s["joints_2d"][valid] < 256)).all()
        np.testing.assert_array_equal(s["hand_present"], [s["hand_type"] in (0, 2), s["hand_type"] in (1, 2)])
        if s["root_valid"]:
            depth = s["joints_3d"][1, 0, 2] - s["joints_3d"][0, 0, 2]
            np.testing.assert_allclose(s["rel_root_depth"][0], depth, atol=1e-6)


def test_generator_is_deterministic(tmp_path: Path) -> None:
    from dir_net.cli import main

    generate(tmp_path / "a", frames=2, seed=7, splits=["val"], cameras=1)
    args = ["--frames", "2", "--seed", "7", "--splits", "val", "--cameras", "1"]
    assert main(["data", "synth", str(tmp_path / "b"), *args]) == 0
    for kind in ("data", "camera", "joint_3d", "MANO_NeuralAnnot"):
        rel = Path("annotations") / "val" / f"InterHand2.6M_val_{kind}.json"
        assert (tmp_path / "a" / rel).read_text() == (tmp_path / "b" / rel).read_text()


def _frame_poses(root: Path, split: str = "train") -> dict[str, list[list[float]]]:
    """{sequence name: the right-hand pose of each of its frames}, from the written files."""
    ann = root / "annotations" / split
    data = json.loads((ann / f"InterHand2.6M_{split}_data.json").read_text())
    mano = json.loads((ann / f"InterHand2.6M_{split}_MANO_NeuralAnnot.json").read_text())
    seqs: dict[str, list] = {}
    for image in data["images"]:
        fit = mano.get(str(image["capture"]), {}).get(str(image["frame_idx"]))
        if fit and fit["right"] and image["camera"] == data["images"][0]["camera"]:
            seqs.setdefault(image["seq_name"], []).append(fit["right"]["pose"])
    return seqs


def test_one_frame_per_sequence_gives_every_frame_its_own_pose(tmp_path: Path) -> None:
    from dir_net.data.synth import existing_dataset
    from dir_net.errors import DataError

    default, single = tmp_path / "default", tmp_path / "single"
    generate(default, frames=16, seed=0, splits=["train"], cameras=1, missing_mano=0.0)
    generate(single, frames=16, seed=0, splits=["train"], cameras=1, missing_mano=0.0, frames_per_sequence=1)
    assert max(len(p) for p in _frame_poses(default).values()) > 1  # frames interpolated within a sequence
    poses = _frame_poses(single)
    assert all(len(p) == 1 for p in poses.values())
    assert len({json.dumps(p) for p in poses.values()}) == len(poses)  # every frame its own pose
    # the marker records the choice: asking for the other layout is refused, the same one is reused
    assert existing_dataset(single, frames=16, splits=["train"], cameras=1, missing_mano=0.0,
                            frames_per_sequence=1) is not None
    with pytest.raises(DataError, match="frames_per_sequence"):
        existing_dataset(single, frames=16, splits=["train"], cameras=1, missing_mano=0.0)
    assert existing_dataset(default, frames=16, splits=["train"], cameras=1, missing_mano=0.0) is not None


def _right_fingers(root: Path, split: str) -> np.ndarray:
    """(N, 45) right-hand finger poses of every frame with a right hand."""
    return np.array([pose[3:] for poses in _frame_poses(root, split).values() for pose in poses])


def test_gestures_draw_fingers_from_one_library_for_every_seed_and_split(tmp_path: Path) -> None:
    """With --gestures K every hand performs one of K library gestures (a little varied), the same
    library in another seed's test split; free poses are not near any of them."""
    import mano
    from dir_net.data.synth import finger_axis_angle, gesture_library

    hands = mano.load_hands(None, tips="interhand")
    library = np.stack([finger_axis_angle(hands, c) for c in gesture_library(3)])  # (3, 45)
    apart = min(np.linalg.norm(library[i] - library[j]) for i in range(3) for j in range(i))
    common = dict(frames=12, cameras=1, missing_mano=0.0, frames_per_sequence=1)
    generate(tmp_path / "a", seed=0, splits=["train"], gestures=3, **common)
    generate(tmp_path / "b", seed=1, splits=["test"], gestures=3, **common)
    generate(tmp_path / "free", seed=0, splits=["train"], **common)

    def nearest(fingers: np.ndarray) -> np.ndarray:  # (N,) distance to the nearest library gesture
        return np.linalg.norm(fingers[:, None] - library[None], axis=-1).min(1)

    performed = np.concatenate([_right_fingers(tmp_path / "a", "train"), _right_fingers(tmp_path / "b", "test")])
    assert len(performed) >= 12 and nearest(performed).max() < 0.35 * apart
    assert np.median(nearest(_right_fingers(tmp_path / "free", "train"))) > 0.5 * apart

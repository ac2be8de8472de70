"""Pipelines on the four real InterHand2.6M samples, the batch contract, and skipping bad images;
the dir pipeline's annotated joints (the moon protocol's ground truth) on the synthetic dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dir_net.config import load_config
from dir_net.data import build_dataset, open_index, sample_files
from dir_net.errors import ConfigError
from mano.joints import hands_to_interhand
from real_samples import SAMPLES, needs_samples

pytestmark = needs_samples

COMMON = {"image": ((3, 256, 256), torch.float32), "id": ((), torch.int64), "hand_type": ((), torch.int64),
          "hand_type_valid": ((), torch.float32), "joints_3d": ((2, 21, 3), torch.float32),
          "joint_valid": ((2, 21), torch.float32), "joints_2d": ((2, 21, 2), torch.float32),
          "K_crop": ((3, 3), torch.float32), "crop_to_image": ((2, 3), torch.float32)}
DIR_KEYS = {"mano_root": ((2, 3), torch.float32), "mano_finger": ((2, 45), torch.float32),
            "mano_betas": ((2, 10), torch.float32), "mano_valid": ((2,), torch.float32),
            "verts_3d": ((2, 778, 3), torch.float32), "verts_2d": ((2, 778, 2), torch.float32),
            "seg": ((64, 64), torch.int64), "dense": ((3, 64, 64), torch.float32), "aux_valid": ((), torch.float32),
            "joints_3d_annot": ((2, 21, 3), torch.float32), "joint_valid_annot": ((2, 21), torch.float32)}
INTERNET_KEYS = {"joints_25d": ((2, 21, 3), torch.float32), "rel_root_depth": ((1,), torch.float32),
                 "root_valid": ((), torch.float32), "hand_present": ((2,), torch.float32)}


def _dataset(tmp_path: Path, pipeline: str, train: bool = False, samples: Path = SAMPLES):
    cfg = load_config(None, [f"data.pipeline={pipeline}", f"data.cache_dir={tmp_path / 'cache'}"])
    return build_dataset(cfg, "test", train, files=sample_files(samples))


def test_projected_world_joints_land_inside_each_bbox(tmp_path: Path) -> None:
    index = open_index(sample_files(SAMPLES), tmp_path / "cache")
    for i in range(len(index)):
        world, valid = index.world_joints(i)
        uv = index.camera(i).world_to_pixel(world)[valid > 0]
        x, y, w, h = index.col("bbox")[i]
        margin = 0.05 * max(w, h)
        assert len(uv) >= 21
        assert (uv[:, 0] >= x - margin).all() and (uv[:, 0] <= x + w + margin).all()
        assert (uv[:, 1] >= y - margin).all() and (uv[:, 1] <= y + h + margin).all()


@pytest.mark.parametrize("pipeline,extra", [("dir", DIR_KEYS), ("internet", INTERNET_KEYS)])
def test_batch_keys_shapes_and_dtypes(tmp_path: Path, pipeline: str, extra: dict) -> None:
    ds = _dataset(tmp_path, pipeline, train=True)
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    expected = {**COMMON, **extra}
    assert set(batch) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert tuple(batch[key].shape) == (4, *shape), key
        assert batch[key].dtype == dtype, key
    assert torch.isfinite(batch["image"]).all()


@pytest.mark.parametrize("pipeline", ["dir", "internet"])
def test_crops_contain_the_hands(tmp_path: Path, pipeline: str) -> None:
    ds = _dataset(tmp_path, pipeline)
    for i in range(len(ds)):
        s = ds[i]
        uv = s["joints_2d"][s["joint_valid"] > 0]
        assert len(uv) >= 21
        assert (uv >= 0).all() and (uv < 256).all()
        span = uv.max(0) - uv.min(0)
        assert span.max() > 100  # the hands fill a good part of the crop
        # crop_to_image maps crop pixels back to the original image projection
        world, valid = ds.index.world_joints(int(ds.rows[i]))
        cam = ds.index.camera(int(ds.rows[i]))
        orig = cam.world_to_pixel(world)
        back = s["joints_2d"].reshape(-1, 2) @ s["crop_to_image"][:, :2].T + s["crop_to_image"][:, 2]
        back = hands_to_interhand(back.reshape(2, 21, 2))
        np.testing.assert_allclose(back[valid > 0], orig[valid > 0], atol=0.05)


def test_missing_image_is_skipped_counted_and_replaced(tmp_path: Path) -> None:
    copy = tmp_path / "samples"
    shutil.copytree(SAMPLES, copy)
    (copy / "image2017.jpg").unlink()
    (copy / "image29590.jpg").write_bytes(b"not a jpeg")
    ds = _dataset(tmp_path, "internet", samples=copy)
    ids = [int(ds[i]["id"]) for i in range(len(ds))]
    assert len(ids) == 4 and not {471953, 680801} & set(ids)
    assert set(ds.bad_images) == {471953, 680801}
    assert "missing" in ds.bad_images[471953] and "unreadable" in ds.bad_images[680801]


def test_unknown_pipeline_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.pipeline must be one of"):
        _dataset(tmp_path, "simplebaseline")


@pytest.mark.parametrize("train", [False, True])
def test_dir_pipeline_keeps_the_annotated_joints_beside_the_mano_ones(tmp_path: Path, train: bool) -> None:
    """joints_3d_annot / joint_valid_annot are the joints_3d / joint_valid the pipeline gives without
    MANO joints (same crop, same augmentation, hands swapped on flip); joints_3d are the MANO ones."""
    from dir_net.data.synth import generate

    generate(tmp_path / "data", frames=4, seed=5, splits=["val"], cameras=1)
    common = [f"data.root={tmp_path / 'data'}", f"data.cache_dir={tmp_path / 'cache'}", "data.dir.flip=1.0",
              "data.image_size=64", "data.aux_size=8"]
    mano = build_dataset(load_config(None, common), "val", train)
    annotated = build_dataset(load_config(None, [*common, "data.dir.joints_from_mano=false"]), "val", train)
    moved = 0.0
    for i in range(len(mano)):
        a = mano.get_sample(i, np.random.default_rng(i))
        b = annotated.get_sample(i, np.random.default_rng(i))
        np.testing.assert_allclose(a["joints_3d_annot"], b["joints_3d"], atol=1e-6)
        np.testing.assert_array_equal(a["joint_valid_annot"], b["joint_valid"])
        fitted = a["mano_valid"] > 0
        moved = max(moved, float(np.abs(a["joints_3d"][fitted] - a["joints_3d_annot"][fitted]).max(initial=0)))
        if int(a["hand_type"]) in (0, 1):  # single hand (swapped on flip): the absent one is not annotated
            assert a["joint_valid_annot"][1 - int(a["hand_type"])].sum() == 0
    assert moved > 1e-4  # fingertips: the dir tip vertices are not the annotation's (interhand) ones

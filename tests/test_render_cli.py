"""`dirnet render` on a tiny synthetic dataset: panels, grid, meshes, turntable, PCK, errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dir_net import cli
from dir_net.config import load_config
from dir_net.render.export import load_mesh
from dir_net.render.predictions import fit_translation
from dir_net.render.renderer import Renderer, RenderUnavailableError
from gl import no_gl

SIZE = 96  # --size: side of every figure column, px
TITLE = 16  # figures.title_strip height for columns narrower than 160 px
PAD = 2  # figures.side_by_side gap


@pytest.fixture(scope="module", autouse=True)
def opengl():
    try:
        Renderer(8, 8).close()
    except RenderUnavailableError as exc:  # only when EGL / OpenGL is genuinely missing
        no_gl(exc)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """4 synthetic frames x 1 camera; predictions = ground truth made root-relative (right wrist at
    the origin, as DIR writes them) with exact crop-pixel joints_2d."""
    from dir_net.data.synth import generate
    from dir_net.render.samples import DatasetSamples

    root = tmp_path_factory.mktemp("synth")
    generate(root, frames=4, seed=0, splits=["test"], cameras=1, missing_mano=0.0)
    source = DatasetSamples(load_config(None, [f"data.root={root}"]), "test")
    ids, joints, verts, joints_2d, gt = [], [], [], [], {}
    for ann_id in source.ids:
        s = source.sample(ann_id)
        right_wrist = s.gt_joints[0, 0]
        ids.append(ann_id)
        joints.append((s.gt_joints - right_wrist) * 1000.0)
        verts.append((s.gt_verts - right_wrist) * 1000.0)
        p = s.gt_joints @ s.K.T
        joints_2d.append(p[..., :2] / p[..., 2:])
        gt[ann_id] = s
    arrays = dict(ids=np.array(ids), joints=np.array(joints), joints_2d=np.array(joints_2d))
    mesh_pred, skel_pred, gt_file = root / "pred_mesh.npz", root / "pred_skel.npz", root / "groundtruth.npz"
    np.savez(mesh_pred, verts=np.array(verts), faces=source.faces, **arrays)
    np.savez(skel_pred, **arrays)
    hand_type = [{(True, False): 0, (False, True): 1}.get(tuple(g.gt_present), 2) for g in gt.values()]
    np.savez(gt_file, ids=np.array(ids), joints=np.array([g.gt_joints * 1000.0 for g in gt.values()]),
             hand_type=np.array(hand_type))
    return {"root": root, "mesh": mesh_pred, "skel": skel_pred, "gt_file": gt_file, "gt": gt, "ids": ids}


def _render(dataset, tmp_path, pred, *extra):
    out = tmp_path / "out"
    argv = ["render", "--pred", str(pred), "--data", str(dataset["root"]), "--split", "test",
            "--out", str(out), "--size", str(SIZE), *extra]
    return cli.main(argv), out


def _columns(panel):
    """The five columns of a panel, without the title strip."""
    body = panel[TITLE:]
    return [body[:, k * (SIZE + PAD): k * (SIZE + PAD) + SIZE] for k in range(5)]


def _interacting_id(dataset):
    return next(i for i, s in dataset["gt"].items() if s.gt_present.all())


def test_render_mesh_predictions(dataset, tmp_path):
    ann_id = _interacting_id(dataset)
    rc, out = _render(dataset, tmp_path, dataset["mesh"], "--ids", str(ann_id), "--formats", "png,pdf",
                      "--turntable", str(ann_id), "--frames", "4")
    assert rc == 0
    panel = cv2.imread(str(out / "panels" / f"{ann_id}.png"))
    assert panel.shape == (TITLE + SIZE, 5 * SIZE + 4 * PAD, 3)
    image, pred, pred_side, gt, gt_side = (c.astype(np.int16) for c in _columns(panel))
    hands = np.abs(pred - image).max(-1) > 30
    assert hands.mean() > 0.05  # the meshes cover a good part of the crop
    # Root-relative prediction placed by fitting joints_2d: it lands exactly on the ground truth.
    assert np.abs(pred - gt).mean() < 1.0 and np.abs(pred_side - gt_side).mean() < 1.0
    assert (pred_side < 250).any(-1).mean() > 0.02  # something drawn on the white side view
    assert (out / "panels" / f"{ann_id}.pdf").read_bytes()[:4] == b"%PDF"
    grid = cv2.imread(str(out / "grid.png"))
    assert grid.shape == panel.shape
    summary = json.loads((out / "render.json").read_text())
    assert summary["ids"] == [ann_id] and summary["placement"][str(ann_id)] == "fit2d"
    for h, name in enumerate(("right", "left")):
        verts, faces = load_mesh(out / "meshes" / f"{ann_id}_pred_{name}.ply")
        np.testing.assert_allclose(verts, dataset["gt"][ann_id].gt_verts[h], atol=2e-4)
        assert faces.shape == (1552, 3)
    both, _ = load_mesh(out / "meshes" / f"{ann_id}_pred_both.obj")
    assert both.shape == (2 * 778, 3)
    import imageio.v3 as iio

    frames = iio.imread(out / f"turntable_{ann_id}.gif", index=None)
    assert frames.shape[:3] == (4, SIZE, SIZE) and frames[0].std() > 5


def test_render_skeletons_grid_and_pck(dataset, tmp_path):
    rc, out = _render(dataset, tmp_path, dataset["skel"], "--limit", "0", "--place", "gt-root",
                      "--pck", str(dataset["skel"]), "--pck", str(dataset["mesh"]),
                      "--pck-label", "skeleton", "--pck-label", "mesh", "--gt", str(dataset["gt_file"]))
    assert rc == 0
    assert not (out / "meshes").exists()
    summary = json.loads((out / "render.json").read_text())
    assert summary["ids"] == dataset["ids"]
    assert set(summary["placement"].values()) == {"gt-root"}
    panels = [cv2.imread(str(out / "panels" / f"{i}.png")) for i in dataset["ids"]]
    for panel in panels:
        image, pred, _, gt, _ = (c.astype(np.int16) for c in _columns(panel))
        assert (np.abs(pred - image).max(-1) > 30).mean() > 0.005  # bones drawn
        assert np.abs(pred - gt).mean() < 1.0  # same joints, same skeleton
    grid = cv2.imread(str(out / "grid.png"))
    rows = -(-len(panels) // 2)
    assert grid.shape[:2] == (rows * panels[0].shape[0] + (rows - 1) * 4, 2 * panels[0].shape[1] + 4)
    pck = cv2.imread(str(out / "pck.png"))
    assert pck is not None and pck.shape[0] > 200


def test_render_unknown_id_is_a_clear_error(dataset, tmp_path, capsys):
    rc, out = _render(dataset, tmp_path, dataset["mesh"], "--ids", f"{dataset['ids'][0]},987654")
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert str(dataset["mesh"]) in err and "'ids'" in err and "987654" in err
    assert not (out / "panels").exists()


def test_render_missing_predictions_file(dataset, tmp_path, capsys):
    rc, _ = _render(dataset, tmp_path, tmp_path / "nope.npz")
    err = capsys.readouterr().err
    assert rc == 2 and "nope.npz" in err


def test_fit_translation_recovers_a_known_shift():
    rng = np.random.default_rng(0)
    points = rng.normal(0.0, 0.05, (42, 3))
    t = np.array([0.03, -0.02, 0.6])
    K = np.array([[900.0, 0.0, 128.0], [0.0, 880.0, 120.0], [0.0, 0.0, 1.0]])
    p = (points + t) @ K.T
    np.testing.assert_allclose(fit_translation(points, p[:, :2] / p[:, 2:], K), t, atol=1e-9)
    assert fit_translation(points, np.zeros((42, 2)) - 1e6, K) is None  # behind the camera

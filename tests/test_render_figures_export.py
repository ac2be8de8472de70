"""Figure panels, grids, animations and mesh export."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import trimesh

from dir_net.render.camera import PinholeCamera
from dir_net.render.export import export_hands, export_mesh, load_mesh
from dir_net.render.figures import grid, sample_panel, save_animation, save_figure, turntable
from dir_net.render.renderer import (
    LEFT_COLOR,
    RIGHT_COLOR,
    hand_meshes,
)
from gl import open_renderer

SIZE = 64
CAM = PinholeCamera(80.0, 80.0, 31.5, 31.5)


@pytest.fixture(scope="module")
def renderer():
    r = open_renderer(SIZE, SIZE)
    yield r
    r.close()


def two_spheres():
    s = trimesh.creation.icosphere(subdivisions=2, radius=0.04)
    v = np.asarray(s.vertices)
    verts = np.stack([v + [-0.035, 0.0, 0.4], v + [0.035, 0.01, 0.42]])
    return verts, np.asarray(s.faces)


def test_sample_panel_columns_and_png(renderer, tmp_path):
    verts, faces = two_spheres()
    image = np.full((SIZE, SIZE, 3), 40, np.uint8)
    pred = hand_meshes(verts, faces)
    gt = hand_meshes(verts + [0.0, 0.005, 0.0], faces)
    panel = sample_panel(renderer, image, CAM, pred, gt)
    title_h = panel.shape[0] - SIZE
    assert title_h > 0 and panel.shape[1] == 5 * SIZE + 4 * 2
    body = panel[title_h:]
    col = lambda i: body[:, i * (SIZE + 2) : i * (SIZE + 2) + SIZE]  # noqa: E731
    np.testing.assert_array_equal(col(0), image)
    # Prediction overlay: right hand (image left) blue-dominant, left hand orange-dominant.
    r_px = col(1)[SIZE // 2, int(CAM.project(verts[0].mean(0))[0])].astype(int)
    l_px = col(1)[SIZE // 2, int(CAM.project(verts[1].mean(0))[0])].astype(int)
    assert r_px[2] > r_px[0] and l_px[0] > l_px[2]
    assert RIGHT_COLOR[2] > RIGHT_COLOR[0] and LEFT_COLOR[0] > LEFT_COLOR[2]
    side = col(2)
    assert (side != 255).any() and (side[0] == 255).all()  # meshes drawn, framed inside
    path = save_figure(tmp_path / "panel.png", panel)
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, panel)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left no temporary file


def test_panel_without_gt_and_grid(renderer, tmp_path):
    verts, faces = two_spheres()
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    panel = sample_panel(renderer, image, CAM.K, hand_meshes(verts, faces), titles=False)
    assert panel.shape == (SIZE, 3 * SIZE + 2 * 2, 3)
    g = grid([panel, panel[:, :SIZE], panel], ncols=2, pad=4)
    assert g.shape == (2 * SIZE + 4, 2 * panel.shape[1] + 4, 3)
    np.testing.assert_array_equal(g[SIZE + 4 :, : panel.shape[1]], panel)
    assert (g[:SIZE, panel.shape[1] + 4 + SIZE :] == 255).all()  # narrow cell padded white
    pdf = save_figure(tmp_path / "grid.pdf", g)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ValueError, match="unsupported figure format"):
        save_figure(tmp_path / "grid.bmp", g)


def test_turntable_gif_and_mp4(renderer, tmp_path):
    import imageio.v3 as iio

    verts, faces = two_spheres()
    path = turntable(renderer, hand_meshes(verts, faces), tmp_path / "turn.gif", n_frames=6)
    frames = iio.imread(path, index=None)
    assert frames.shape[:3] == (6, SIZE, SIZE)
    assert not np.array_equal(frames[0], frames[1])  # it turns
    mp4 = save_animation(tmp_path / "turn.mp4", [f[..., :3] for f in frames], fps=5)
    cap = cv2.VideoCapture(str(mp4))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert count == 6


def test_export_hands_roundtrip(tmp_path):
    verts, faces = two_spheres()
    verts = verts + np.random.default_rng(0).normal(0, 1e-3, verts.shape)  # not a clean grid
    per_hand = np.stack([faces, faces[:, ::-1]])
    paths = export_hands(tmp_path, verts, per_hand, stem="s0")
    names = sorted(p.name for p in paths)
    assert names == sorted(f"s0_{h}.{e}" for h in ("right", "left", "both") for e in ("obj", "ply"))
    for ext in ("obj", "ply"):
        for h, name in enumerate(("right", "left")):
            v, f = load_mesh(tmp_path / f"s0_{name}.{ext}")
            np.testing.assert_allclose(v, verts[h], atol=1e-6)
            np.testing.assert_array_equal(f, per_hand[h])
        v, f = load_mesh(tmp_path / f"s0_both.{ext}")
        np.testing.assert_allclose(v, verts.reshape(-1, 3), atol=1e-6)
        np.testing.assert_array_equal(f, np.concatenate([per_hand[0], per_hand[1] + len(verts[0])]))
    colors = trimesh.load(str(tmp_path / "s0_both.ply"), process=False).visual.vertex_colors
    assert colors[0, 2] > colors[0, 0] and colors[-1, 0] > colors[-1, 2]  # blue right, orange left


def test_export_single_hand_and_bad_suffix(tmp_path):
    verts, faces = two_spheres()
    paths = export_hands(tmp_path, verts, faces, formats=("ply",), present=(False, True))
    assert [p.name for p in paths] == ["hands_left.ply"]
    with pytest.raises(ValueError, match="unsupported mesh format"):
        export_mesh(tmp_path / "x.stl", verts[0], faces)

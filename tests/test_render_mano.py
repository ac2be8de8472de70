"""Rendering the (synthetic) MANO two-hand layer: labels, dense targets, export."""

from __future__ import annotations

import numpy as np
import pytest

import mano
from dir_net.render.camera import PinholeCamera
from dir_net.render.export import export_hands, load_mesh
from dir_net.render.renderer import (
    SEG_HAND_IDS,
    segmentation_and_dense,
)
from gl import open_renderer

SIZE = 128
CAM = PinholeCamera(100.0, 100.0, 63.5, 63.5)


@pytest.fixture(scope="module")
def hands():
    layer = mano.load_hands()  # the synthetic hand unless DIRNET_MANO_DIR is set
    root = np.zeros((2, 3), np.float32)
    root[:, 0] = np.pi / 2  # palms towards the camera
    transl = np.array([[-0.14, 0.0, 0.6], [0.14, 0.01, 0.62]], np.float32)
    verts, _ = layer.forward_numpy(root, np.zeros((2, 45), np.float32), None, transl)
    return verts, layer.faces.numpy(), layer.v_template[0].numpy()


@pytest.fixture(scope="module")
def renderer():
    r = open_renderer(SIZE, SIZE)
    yield r
    r.close()


def test_segmentation_covers_each_hands_visible_vertices(hands, renderer):
    verts, faces, template = hands
    assert verts.shape == (2, 778, 3) and faces.shape[0] == 2
    seg, dense = segmentation_and_dense(verts[0], verts[1], faces, CAM.K, SIZE, template, renderer)
    _, depth = renderer.render_labels([(verts[0], faces[0]), (verts[1], faces[1])], CAM)
    for h in range(2):
        uv = np.round(CAM.project(verts[h])).astype(int)
        inside = (uv >= 0).all(1) & (uv < SIZE).all(1)
        u, v = uv[inside, 0], uv[inside, 1]
        visible = verts[h, inside, 2] <= depth[v, u] + 2e-3
        assert visible.sum() > 100
        assert (seg[v[visible], u[visible]] == SEG_HAND_IDS[h]).mean() > 0.95
    hand = seg > 0
    assert (dense[hand].max(axis=1) > 0).mean() > 0.99 and np.all(dense[~hand] == 0)


def test_export_synthetic_hands(hands, tmp_path):
    verts, faces, _ = hands
    export_hands(tmp_path, verts, faces, stem="mano", formats=("ply",))
    v, f = load_mesh(tmp_path / "mano_left.ply")
    np.testing.assert_allclose(v, verts[1], atol=1e-6)
    np.testing.assert_array_equal(f, faces[1])

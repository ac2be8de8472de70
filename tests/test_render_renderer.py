"""Renderer geometry: masks, depth, overlays, value maps, weak perspective, orbit views."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from dir_net.render import camera as camera_mod
from dir_net.render import renderer as renderer_mod
from dir_net.render.camera import (
    PinholeCamera,
    weak_perspective_project,
    weak_perspective_to_pinhole,
)
from dir_net.render.renderer import (
    SEG_BACKGROUND,
    SEG_LEFT,
    SEG_RIGHT,
    MeshSpec,
    Renderer,
    segmentation_and_dense,
    weak_perspective_meshes,
)
from gl import open_renderer

SIZE = 128
CAM = PinholeCamera(150.0, 150.0, 63.5, 63.5)


@pytest.fixture(scope="module")
def renderer():
    r = open_renderer(SIZE, SIZE)
    yield r
    r.close()


def sphere(centre, radius=0.05, subdivisions=4):
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(s.vertices) + np.asarray(centre), np.asarray(s.faces)


def box(centre, extents):
    b = trimesh.creation.box(extents=extents)
    return np.asarray(b.vertices) + np.asarray(centre), np.asarray(b.faces)


def polygon_area_centroid(points: np.ndarray) -> tuple[float, np.ndarray]:
    """Area and centroid of the convex hull of 2D points (shoelace)."""
    import cv2

    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    x, y = hull[:, 0], hull[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2.0
    cx = ((x + np.roll(x, -1)) * cross).sum() / (6.0 * area)
    cy = ((y + np.roll(y, -1)) * cross).sum() / (6.0 * area)
    return abs(area), np.array([cx, cy])


def mask_area_centroid(mask: np.ndarray) -> tuple[int, np.ndarray]:
    ys, xs = np.nonzero(mask)
    return len(xs), np.array([xs.mean(), ys.mean()])


def test_sphere_mask_matches_projected_silhouette(renderer):
    # Off-centre in x and y so that a flipped axis or a half-pixel shift would show.
    verts, faces = sphere((0.06, -0.04, 0.5))
    out = renderer.render([(verts, faces)], CAM)
    area, centroid = mask_area_centroid(out.mask == 1)
    ref_area, ref_centroid = polygon_area_centroid(CAM.project(verts))
    assert abs(area - ref_area) / ref_area < 0.03
    np.testing.assert_allclose(centroid, ref_centroid, atol=0.3)
    assert set(np.unique(out.mask)) == {0, 1}
    assert out.rgb.shape == (SIZE, SIZE, 3) and out.rgb.dtype == np.uint8
    # Anti-aliasing: coverage takes fractional values on the silhouette only.
    edge = (out.alpha > 0.05) & (out.alpha < 0.95)
    assert edge.sum() > 0.5 * np.sqrt(area)
    assert np.all(out.alpha[out.mask == 0] < 0.8)


def test_depth_is_front_surface_z_and_nearer_mesh_wins(renderer):
    front = box((0.0, 0.0, 0.40), (0.06, 0.06, 0.02))  # front face at z = 0.39
    back = box((0.02, 0.02, 0.60), (0.10, 0.10, 0.02))  # front face at z = 0.59
    out = renderer.render([front, back], CAM)
    assert set(np.unique(out.mask)) == {0, 1, 2}
    np.testing.assert_allclose(out.depth[out.mask == 1], 0.39, atol=2e-4)
    np.testing.assert_allclose(out.depth[out.mask == 2], 0.59, atol=2e-4)
    assert np.all(out.depth[out.mask == 0] == 0)
    # The pixel at the projection of the front box's centre belongs to the front box.
    u, v = np.round(CAM.project(np.array([0.0, 0.0, 0.39]))).astype(int)
    assert out.mask[v, u] == 1


def test_overlay_lands_on_projected_vertices(renderer):
    verts, faces = sphere((-0.05, 0.03, 0.45), radius=0.04, subdivisions=3)
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    over = renderer.overlay(image, [MeshSpec(verts, faces, (0.0, 0.45, 0.7))], CAM)
    drawn = over.max(axis=2) > 0
    mask, depth = renderer.render_labels([(verts, faces)], CAM)
    uv = np.round(CAM.project(verts)).astype(int)
    inside = (uv >= 0).all(1) & (uv < SIZE).all(1)
    u, v = uv[inside, 0], uv[inside, 1]
    visible = verts[inside, 2] <= depth[v, u] + 1e-3
    assert visible.sum() > 50
    assert drawn[v[visible], u[visible]].mean() > 0.95
    assert mask[v[visible], u[visible]].mean() > 0.95
    assert not drawn[0, 0] and not drawn[-1, -1]


def test_overlay_resizes_to_the_image():
    with open_renderer(32, 32) as r:
        image = np.full((60, 90, 3), 128, np.uint8)
        cam = PinholeCamera(100.0, 100.0, 44.5, 29.5)
        out = r.overlay(image, [sphere((0.0, 0.0, 0.5))], cam, opacity=0.5)
        assert out.shape == (60, 90, 3) and r.size == (90, 60)
        assert out[0, 0].tolist() == [128, 128, 128]  # untouched background
        assert not np.array_equal(out[29, 44], image[29, 44])


def test_vertex_values_are_interpolated_without_lighting(renderer):
    # Off-centre so that its edges cut pixels and anti-aliased (partial) pixels are in the mask.
    verts, faces = box((0.003, 0.0017, 0.4), (0.08, 0.08, 0.02))
    lo, hi = verts[:, 0].min(), verts[:, 0].max()
    values = np.stack([(verts[:, 0] - lo) / (hi - lo), np.full(len(verts), 0.25)], 1)
    img, mask = renderer.render_vertex_values([(verts, faces)], CAM, [values])
    assert img.shape == (SIZE, SIZE, 2) and img.dtype == np.float32
    assert np.all(img[mask == 0] == 0)
    # Constant channel: exact up to 8-bit steps, silhouette pixels included.
    np.testing.assert_allclose(img[mask == 1, 1], 0.25, atol=1.5 / 255)
    # Linear channel on the fronto-parallel face: x = (u - cx) z / f at that pixel.
    vs, us = np.nonzero(mask == 1)
    x = (us - CAM.cx) * 0.39 / CAM.fx
    np.testing.assert_allclose(img[vs, us, 0], (x - lo) / (hi - lo), atol=0.03)


def test_vertex_values_reject_out_of_range():
    verts, faces = box((0.0, 0.0, 0.4), (0.08, 0.08, 0.02))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        renderer_mod._check_values([MeshSpec(verts, faces)], [np.full((len(verts), 3), 2.0)])


def test_segmentation_and_dense(renderer):
    right = sphere((-0.04, 0.0, 0.4), subdivisions=3)
    left = sphere((0.04, 0.01, 0.45), subdivisions=3)
    faces = right[1]
    template = right[0] - right[0].mean(0)
    K = CAM.K
    seg, dense = segmentation_and_dense(right[0], left[0], faces, K, SIZE, template, renderer)
    assert seg.dtype == np.uint8 and dense.shape == (SIZE, SIZE, 3) and dense.dtype == np.float32
    assert set(np.unique(seg)) == {SEG_BACKGROUND, SEG_RIGHT, SEG_LEFT}
    assert np.all(dense[seg == 0] == 0)
    assert dense.min() >= 0 and dense.max() <= 1
    # Right hand on the left of the image; the sphere's front point has template code ~(.5, .5, 0).
    assert mask_area_centroid(seg == SEG_RIGHT)[1][0] < mask_area_centroid(seg == SEG_LEFT)[1][0]
    u, v = np.round(CAM.project(np.array([-0.04, 0.0, 0.35]))).astype(int)
    np.testing.assert_allclose(dense[v, u], [0.5, 0.5, 0.0], atol=0.06)
    # Per-hand faces with flipped left winding (mano.TwoHands.faces) give the same labels.
    per_hand = np.stack([faces, faces[:, ::-1]])
    seg2, _ = segmentation_and_dense(right[0], left[0], per_hand, K, SIZE, template, renderer)
    np.testing.assert_array_equal(seg, seg2)
    # An absent hand is simply missing.
    seg3, _ = segmentation_and_dense(None, left[0], faces, K, SIZE, template, renderer)
    assert set(np.unique(seg3)) == {SEG_BACKGROUND, SEG_LEFT}


def test_weak_perspective_pinhole_equivalence(renderer):
    rng = np.random.default_rng(0)
    cam, S = np.array([9.0, 0.1, -0.2]), 256
    pinhole, transl = weak_perspective_to_pinhole(cam, S)
    planar = np.concatenate([rng.uniform(-0.05, 0.05, (200, 2)), np.zeros((200, 1))], 1)
    np.testing.assert_allclose(
        pinhole.project(planar + transl), weak_perspective_project(planar, cam, S), atol=1e-9
    )
    # With depth the error is about |z| / tz of the distance to the principal point.
    deep = planar + np.array([0.0, 0.0, 1.0]) * rng.uniform(-0.05, 0.05, (200, 1))
    err = np.abs(pinhole.project(deep + transl) - weak_perspective_project(deep, cam, S))
    assert transl[2] > 4.0 and err.max() < 1.0
    # Rendered with the equivalent camera, a sphere lands where weak perspective puts it.
    verts, faces = sphere((0.0, 0.0, 0.0), radius=0.03, subdivisions=3)
    both = np.stack([verts, verts + np.array([0.05, 0.0, 0.0])])
    cams = np.stack([cam, np.array([9.0, -0.5, 0.4])])  # far enough apart not to overlap
    meshes, pin = weak_perspective_meshes(both, faces, cams, S)
    renderer.resize(S, S)
    out = renderer.render(meshes, pin)
    renderer.resize(SIZE, SIZE)
    for h in range(2):
        expected = weak_perspective_project(both[h].mean(0), cams[h], S)
        np.testing.assert_allclose(mask_area_centroid(out.mask == h + 1)[1], expected, atol=0.5)
    with pytest.raises(ValueError, match="s must be > 0"):
        weak_perspective_to_pinhole(np.array([0.0, 0.0, 0.0]), S)


def test_side_and_top_views_frame_an_elongated_box(renderer):
    verts, faces = box((0.1, -0.05, 0.6), (0.02, 0.02, 0.2))  # long along the viewing axis
    front = renderer.render([(verts, faces)], CAM).mask > 0
    side = renderer.side_view([(verts, faces)]).mask > 0
    top = renderer.top_view([(verts, faces)]).mask > 0

    def extent(mask):
        ys, xs = np.nonzero(mask)
        assert xs.min() > 0 and ys.min() > 0 and xs.max() < SIZE - 1 and ys.max() < SIZE - 1
        return xs.max() - xs.min(), ys.max() - ys.min()

    # The long axis turns horizontal (side) or vertical (top) and, being the bounding sphere's
    # diameter, spans about `fill` = 0.8 of the image.
    w, h = extent(side)
    assert w > 4 * h and w > 0.65 * SIZE
    w, h = extent(top)
    assert h > 4 * w and h > 0.65 * SIZE
    assert front.any() and front.sum() < side.sum()


def test_orbit_view_keeps_scale_over_a_turn():
    verts, _ = box((0.0, 0.0, 0.5), (0.1, 0.05, 0.02))
    for angle in (0.0, 45.0, 90.0, 270.0):
        R, cam, t = camera_mod.orbit_view(verts, "y", angle, 100, 80, fill=0.8)
        uv = cam.project(verts @ R.T + t)
        assert np.all(uv >= 0) and np.all(uv[:, 0] < 100) and np.all(uv[:, 1] < 80)
        radius_px = np.linalg.norm(uv - [cam.cx, cam.cy], axis=1).max()
        assert radius_px <= 0.8 * 40 + 1e-6
    with pytest.raises(ValueError, match="axis"):
        camera_mod.rotation_matrix("w", 10.0)


def test_headless_platform_selection(monkeypatch):
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    renderer_mod.configure_headless_gl()
    assert renderer_mod.os.environ["PYOPENGL_PLATFORM"] == "egl"
    monkeypatch.delenv("PYOPENGL_PLATFORM")
    monkeypatch.setenv("DISPLAY", ":0")
    renderer_mod.configure_headless_gl()
    assert "PYOPENGL_PLATFORM" not in renderer_mod.os.environ
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setenv("PYOPENGL_PLATFORM", "osmesa")
    renderer_mod.configure_headless_gl()
    assert renderer_mod.os.environ["PYOPENGL_PLATFORM"] == "osmesa"


def test_backend_selection_errors():
    with pytest.raises(ValueError, match="unknown render backend"):
        Renderer(8, 8, backend="vulkan")
    try:
        import pytorch3d  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="p3d"):
            Renderer(8, 8, backend="pytorch3d")
    else:
        with pytest.raises(NotImplementedError, match="pyrender"):
            Renderer(8, 8, backend="pytorch3d")


def test_bad_mesh_input_is_named():
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        MeshSpec(np.zeros((4, 2)), np.zeros((1, 3), int))
    with pytest.raises(ValueError, match="index vertices"):
        MeshSpec(np.zeros((3, 3)), np.array([[0, 1, 3]]))


def test_closing_one_renderer_keeps_the_others_working(renderer):
    mesh = [sphere((0.0, 0.0, 0.5), subdivisions=2)]
    before = renderer.render(mesh, CAM).mask
    other = Renderer(40, 30)
    assert other.render(mesh, PinholeCamera(50.0, 50.0, 19.5, 14.5)).mask.shape == (30, 40)
    other.close()
    other.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        other.render(mesh, CAM)
    np.testing.assert_array_equal(renderer.render(mesh, CAM).mask, before)

"""Mesh renderer: shaded RGB, depth, instance masks, per-vertex value maps, overlays, orbit views.

Meshes are given in the camera frame (metres, OpenCV axes: x right, y down, z forward) and drawn
with a pinhole camera in OpenCV pixel convention (see camera.py). Backends:

- "pyrender" (default): pyrender + PyOpenGL. Without a display it renders headless through EGL
  (Mesa on the CPU, the NVIDIA driver on GPUs); this module sets `PYOPENGL_PLATFORM=egl` before
  OpenGL is imported when no DISPLAY is present and the variable is unset. Colour passes use the
  4x MSAA framebuffer pyrender always allocates (anti-aliased edges, coverage in `alpha`); label
  passes (mask, depth) are single-sample so ids are exact.
- "pytorch3d": not implemented in this version; selecting it raises ImportError naming the `p3d`
  extra when pytorch3d is missing and NotImplementedError otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from dir_net.render.camera import (
    PinholeCamera,
    as_camera,
    orbit_view,
    weak_perspective_to_pinhole,
)


def configure_headless_gl() -> None:
    """Select EGL for PyOpenGL when there is no display and the user chose no platform."""
    if "PYOPENGL_PLATFORM" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["PYOPENGL_PLATFORM"] = "egl"


configure_headless_gl()

# Okabe-Ito (Wong 2011) colour-blind-safe palette, RGB in [0, 1].
RIGHT_COLOR = (0x00 / 255, 0x72 / 255, 0xB2 / 255)  # blue  #0072B2
LEFT_COLOR = (0xE6 / 255, 0x9F / 255, 0x00 / 255)  # orange #E69F00
HAND_COLORS = (RIGHT_COLOR, LEFT_COLOR)  # indexed by the hand axis: 0 = right, 1 = left
DEFAULT_COLOR = (0.7, 0.7, 0.7)

# Class ids of the two-hand segmentation map written by `segmentation_and_dense`.
SEG_BACKGROUND = 0
SEG_RIGHT = 1
SEG_LEFT = 2
SEG_CLASSES = ("background", "right", "left")  # index = class id
SEG_HAND_IDS = (SEG_RIGHT, SEG_LEFT)  # class id of hand axis index 0 (right) and 1 (left)

BACKENDS = ("pyrender", "pytorch3d")


class RenderUnavailableError(RuntimeError):
    """No OpenGL context could be created (no EGL / display); the message says what to install."""


@dataclass
class MeshSpec:
    """One triangle mesh in the camera frame."""

    vertices: np.ndarray  # (V, 3) metres, camera frame
    faces: np.ndarray  # (F, 3) vertex indices
    color: tuple[float, float, float] = DEFAULT_COLOR  # RGB in [0, 1]

    def __post_init__(self) -> None:
        self.vertices = to_numpy(self.vertices).astype(np.float64)
        self.faces = to_numpy(self.faces).astype(np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"mesh vertices must have shape (V, 3), got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"mesh faces must have shape (F, 3), got {self.faces.shape}")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError(
                f"mesh faces index vertices 0..{len(self.vertices) - 1} but contain "
                f"{self.faces.min()}..{self.faces.max()}"
            )
        self.color = tuple(float(c) for c in np.asarray(self.color, dtype=np.float64)[:3])


MeshLike = Any  # MeshSpec | (vertices, faces) | (vertices, faces, color)


@dataclass
class RenderOutput:
    rgb: np.ndarray  # (H, W, 3) uint8, shaded meshes composited over the background colour
    alpha: np.ndarray  # (H, W) float32 in [0, 1], anti-aliased coverage of the meshes
    depth: np.ndarray  # (H, W) float32 metres (camera z), 0 = background
    mask: np.ndarray  # (H, W) int32, 0 = background, i + 1 = meshes[i]


def to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_meshes(meshes: Iterable[MeshLike]) -> list[MeshSpec]:
    out = []
    for m in meshes:
        out.append(m if isinstance(m, MeshSpec) else MeshSpec(*m))
    return out


def hand_meshes(
    vertices: Any, faces: Any, present: Sequence[bool] = (True, True)
) -> list[MeshSpec]:
    """MeshSpecs for a two-hand mesh: vertices (2, V, 3) metres (0 = right, 1 = left),
    faces (F, 3) shared or (2, F, 3) per hand (mano.TwoHands.faces); absent hands are skipped."""
    verts = to_numpy(vertices)
    f = to_numpy(faces)
    if verts.ndim != 3 or verts.shape[0] != 2:
        raise ValueError(f"two-hand vertices must have shape (2, V, 3), got {verts.shape}")
    per_hand = f if f.ndim == 3 else np.stack([f, f])
    return [
        MeshSpec(verts[h], per_hand[h], HAND_COLORS[h]) for h in range(2) if present[h]
    ]


def weak_perspective_meshes(
    vertices: Any,
    faces: Any,
    cams: Any,
    crop_size: int,
    focal: float = 5000.0,
    present: Sequence[bool] = (True, True),
) -> tuple[list[MeshSpec], PinholeCamera]:
    """Two hands with one weak-perspective camera each (DIR's `cam` (2, 3) = (s, tx, ty) per hand,
    vertices (2, V, 3) metres about each hand's own origin) as meshes under one pinhole camera.

    Every hand gets the translation of `weak_perspective_to_pinhole`; with a common focal and
    crop size the pinhole camera is the same for both hands.
    """
    verts, cam = to_numpy(vertices).astype(np.float64), to_numpy(cams)
    if verts.ndim != 3 or verts.shape[0] != 2 or cam.shape != (2, 3):
        raise ValueError(
            f"expected vertices (2, V, 3) and cams (2, 3), got {verts.shape} and {cam.shape}"
        )
    moved = verts.copy()
    camera = PinholeCamera(focal, focal, crop_size / 2.0, crop_size / 2.0)
    for h in range(2):
        if present[h]:  # an absent hand's camera may be meaningless (s <= 0)
            camera, transl = weak_perspective_to_pinhole(cam[h], crop_size, focal)
            moved[h] += transl
    return hand_meshes(moved, faces, present), camera


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals (right-hand rule on the face winding)."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(norm, 1e-12)


# Light travel directions in the camera frame (OpenCV axes): key from the upper left, fill from
# the right, a weaker one from below; all from the camera side so front surfaces are lit softly.
_LIGHTS = (((0.4, 0.6, 1.0), 1.6), ((-0.9, 0.1, 1.0), 0.7), ((0.1, -0.8, 1.0), 0.4))
_AMBIENT = 0.3
_OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])  # camera pose: look along +z, y down


def _light_pose(direction: Sequence[float]) -> np.ndarray:
    """4x4 pose whose -z axis is `direction` (pyrender lights shine along their -z)."""
    z = -np.asarray(direction, dtype=np.float64)
    z /= np.linalg.norm(z)
    up = np.array([0.0, -1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    return pose


class _SharedContext:
    """One pyrender OffscreenRenderer (one OpenGL context) per process, shared by all backends.

    pyrender's EGL teardown calls eglTerminate on the display that every context of the process
    shares, so deleting one of several OffscreenRenderers breaks the others. Backends therefore
    share one, counted by users, and only the last `release` deletes it. Its framebuffer follows
    the viewport size of each call, so a size change needs no new context.
    """

    def __init__(self) -> None:
        self.offscreen: Any = None
        self.users = 0
        self.pid = os.getpid()
        self._inherited: list[Any] = []  # a forked parent's context: never touched, never deleted

    def acquire(self, pyrender: Any, width: int, height: int) -> Any:
        if self.pid != os.getpid():
            if self.offscreen is not None:
                self._inherited.append(self.offscreen)
            self.offscreen, self.users, self.pid = None, 0, os.getpid()
        if self.offscreen is None:
            try:
                self.offscreen = pyrender.OffscreenRenderer(width, height)
            except Exception as e:
                raise RenderUnavailableError(
                    _gl_hint(f"cannot create an OpenGL context: {e}")
                ) from e
        self.users += 1
        return self.offscreen

    def release(self) -> None:
        if self.pid != os.getpid() or self.users == 0:
            return
        self.users -= 1
        if self.users == 0:
            self.offscreen.delete()
            self.offscreen = None


_CONTEXT = _SharedContext()


class PyrenderBackend:
    """Three passes over pyrender's OffscreenRenderer (the process-wide shared context)."""

    def __init__(self, width: int, height: int) -> None:
        configure_headless_gl()
        try:
            import pyrender
        except Exception as e:  # ImportError, or OpenGL failing to load its platform
            raise RenderUnavailableError(_gl_hint(f"cannot import pyrender: {e}")) from e
        self._pyrender = pyrender
        self._offscreen: Any = _CONTEXT.acquire(pyrender, width, height)
        self.width, self.height = width, height

    def resize(self, width: int, height: int) -> None:
        self.width, self.height = width, height

    def close(self) -> None:
        if self._offscreen is not None:
            self._offscreen = None
            _CONTEXT.release()

    def _render(self, scene: Any, flags: int, seg_node_map: dict | None = None) -> Any:
        if self._offscreen is None:
            raise RuntimeError("this renderer was closed; create a new Renderer")
        self._offscreen.viewport_width, self._offscreen.viewport_height = self.width, self.height
        return self._offscreen.render(scene, flags=flags, seg_node_map=seg_node_map)

    # -- scene construction -------------------------------------------------------------------
    def _scene(self, camera: PinholeCamera, meshes: Sequence[MeshSpec]) -> Any:
        pr = self._pyrender
        scene = pr.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(_AMBIENT,) * 3)
        zs = np.concatenate([m.vertices[:, 2] for m in meshes]) if meshes else np.ones(1)
        znear = max(0.5 * float(zs.min()), 1e-3)
        zfar = max(2.0 * float(zs.max()), 10.0 * znear)
        # pyrender's window coordinates put pixel centres at i + 0.5; OpenCV's at i.
        cam = pr.IntrinsicsCamera(
            camera.fx, camera.fy, camera.cx + 0.5, camera.cy + 0.5, znear=znear, zfar=zfar
        )
        scene.add(cam, pose=_OPENCV_TO_OPENGL)
        return scene

    def _mesh(self, mesh: MeshSpec, colors: np.ndarray | None, double_faces: bool) -> Any:
        pr = self._pyrender
        faces = mesh.faces
        if double_faces:  # label passes always cull back faces; draw both windings
            faces = np.concatenate([faces, faces[:, ::-1]])
        # pyrender's shader takes the base colour as linear and gamma-encodes its output.
        base = (1.0, 1.0, 1.0, 1.0) if colors is not None else (*_srgb_to_linear(mesh.color), 1.0)
        material = pr.MetallicRoughnessMaterial(
            baseColorFactor=base, metallicFactor=0.0, roughnessFactor=0.8, doubleSided=True
        )
        prim = pr.Primitive(
            positions=mesh.vertices.astype(np.float32),
            normals=vertex_normals(mesh.vertices, mesh.faces).astype(np.float32),
            indices=faces.astype(np.uint32),
            color_0=colors,
            material=material,
        )
        return pr.Mesh([prim])

    # -- passes ---------------------------------------------------------------------------------
    def shade(
        self, meshes: Sequence[MeshSpec], camera: PinholeCamera
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lit, anti-aliased pass -> (premultiplied RGB (H, W, 3) float32 in [0, 1], alpha)."""
        pr = self._pyrender
        scene = self._scene(camera, meshes)
        for m in meshes:
            scene.add(self._mesh(m, None, double_faces=False))
        for direction, intensity in _LIGHTS:
            light = pr.DirectionalLight(color=np.ones(3), intensity=intensity)
            scene.add(light, pose=_light_pose(direction))  # world frame = OpenCV camera frame
        rgba, _ = self._render(scene, pr.RenderFlags.RGBA)
        return _split_rgba(rgba)

    def flat_values(
        self, meshes: Sequence[MeshSpec], camera: PinholeCamera, values: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Unlit pass of per-vertex values (V, 3) in [0, 1], interpolated over the faces ->
        (premultiplied values (H, W, 3) float32, alpha). 8-bit framebuffer: step 1/255."""
        pr = self._pyrender
        scene = self._scene(camera, meshes)
        for m, v in zip(meshes, values):
            scene.add(self._mesh(m, np.asarray(v, dtype=np.float32), double_faces=False))
        flags = pr.RenderFlags.RGBA | pr.RenderFlags.FLAT
        rgba, _ = self._render(scene, flags)
        return _split_rgba(rgba)

    def label(
        self, meshes: Sequence[MeshSpec], camera: PinholeCamera
    ) -> tuple[np.ndarray, np.ndarray]:
        """Single-sample pass -> (instance mask (H, W) int32, depth (H, W) float32 metres)."""
        pr = self._pyrender
        scene = self._scene(camera, meshes)
        node_ids = {}
        for i, m in enumerate(meshes):
            node = scene.add(self._mesh(m, None, double_faces=True))
            node_ids[node] = ((i + 1) & 255, (i + 1) >> 8, 0)
        ids, depth = self._render(scene, pr.RenderFlags.SEG, node_ids)
        mask = ids[..., 0].astype(np.int32) | (ids[..., 1].astype(np.int32) << 8)
        return mask, np.ascontiguousarray(depth, dtype=np.float32)


def _srgb_to_linear(c: Sequence[float]) -> tuple[float, ...]:
    c = np.asarray(c, dtype=np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return tuple(float(x) for x in lin)


def _split_rgba(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rgba = rgba.astype(np.float32) / 255.0
    return rgba[..., :3], rgba[..., 3]


def _gl_hint(reason: str) -> str:
    platform = os.environ.get("PYOPENGL_PLATFORM", "<unset>")
    return (
        f"{reason} (PYOPENGL_PLATFORM={platform}). Headless rendering needs EGL: install "
        "libegl1 libegl-mesa0 libgl1-mesa-dri (Debian/Ubuntu), set PYOPENGL_PLATFORM=egl before "
        "anything imports OpenGL, and try EGL_PLATFORM=surfaceless if no EGL display is found."
    )


def _require_pytorch3d() -> None:
    try:
        import pytorch3d  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "backend='pytorch3d' needs pytorch3d, which is not installed (install the `p3d` "
            "extra: pip install 'dir_net[p3d]', or build pytorch3d from source); "
            "backend='pyrender' needs nothing extra"
        ) from e


def _make_backend(name: str, width: int, height: int) -> PyrenderBackend:
    if name == "pyrender":
        return PyrenderBackend(width, height)
    if name == "pytorch3d":
        _require_pytorch3d()
        raise NotImplementedError(
            "the pytorch3d rendering backend is not implemented in this version; "
            "use backend='pyrender' (headless through EGL on CPU and GPU)"
        )
    raise ValueError(f"unknown render backend {name!r}; choose one of {BACKENDS}")


class Renderer:
    """Renders camera-frame meshes; the OpenGL context lives until `close()` (or the end of a
    `with` block) and is shared by all renderers of the process. `resize()` (and an overlay on
    an image of another size) only changes the framebuffer size.
    """

    def __init__(
        self,
        width: int,
        height: int,
        backend: str = "pyrender",
        bg_color: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> None:
        _check_size(width, height)
        self.backend_name = backend
        self.bg_color = np.asarray(bg_color, dtype=np.float32)[:3]
        self._backend = _make_backend(backend, width, height)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self._backend.width, self._backend.height

    def resize(self, width: int, height: int) -> None:
        _check_size(width, height)
        self._backend.resize(width, height)

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rendering ------------------------------------------------------------------------------
    def render(self, meshes: Iterable[MeshLike], camera: Any) -> RenderOutput:
        """Shaded RGB over `bg_color`, coverage, depth and instance mask. camera: PinholeCamera
        or (3, 3) K."""
        specs, cam = as_meshes(meshes), as_camera(camera)
        premult, alpha = self._backend.shade(specs, cam)
        mask, depth = self._backend.label(specs, cam)
        rgb = premult + (1.0 - alpha[..., None]) * self.bg_color
        return RenderOutput(_to_uint8(rgb), alpha, depth, mask)

    def render_labels(
        self, meshes: Iterable[MeshLike], camera: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """(instance mask (H, W) int32, depth (H, W) float32 metres) without shading."""
        return self._backend.label(as_meshes(meshes), as_camera(camera))

    def render_vertex_values(
        self, meshes: Iterable[MeshLike], camera: Any, values: Sequence[Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-vertex values (one (V, C<=3) array in [0, 1] per mesh), interpolated without
        lighting -> (image (H, W, C) float32, instance mask (H, W) int32); background is 0.

        Precision is 8 bits (steps of 1/255); pixels on silhouette edges are un-premultiplied
        from the anti-aliased coverage, so they keep the mesh's value rather than fading out.
        """
        specs, cam = as_meshes(meshes), as_camera(camera)
        vals = [to_numpy(v).astype(np.float32) for v in values]
        channels = _check_values(specs, vals)
        padded = [np.pad(v, ((0, 0), (0, 3 - channels))) for v in vals]
        premult, alpha = self._backend.flat_values(specs, cam, padded)
        mask, _ = self._backend.label(specs, cam)
        out = np.where(mask[..., None] > 0, premult / np.maximum(alpha[..., None], 1e-6), 0.0)
        return np.clip(out[..., :channels], 0.0, 1.0).astype(np.float32), mask

    def overlay(
        self, image: np.ndarray, meshes: Iterable[MeshLike], camera: Any, opacity: float = 1.0
    ) -> np.ndarray:
        """Shaded meshes alpha-blended onto an RGB uint8 image (H, W, 3) -> uint8 (H, W, 3).

        The renderer resizes itself to the image."""
        img = to_numpy(image)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"overlay image must be RGB (H, W, 3), got shape {img.shape}")
        self.resize(img.shape[1], img.shape[0])
        premult, alpha = self._backend.shade(as_meshes(meshes), as_camera(camera))
        a = opacity * alpha[..., None]
        out = opacity * premult + (1.0 - a) * (img.astype(np.float32) / 255.0)
        return _to_uint8(out)

    def render_view(
        self,
        meshes: Iterable[MeshLike],
        axis: str = "y",
        angle_deg: float = 90.0,
        fill: float = 0.8,
    ) -> RenderOutput:
        """The meshes rotated about their common bounding-box centre, framed automatically
        (see camera.orbit_view). axis 'y', 90 deg: side view (seen from the camera's right);
        axis 'x', 90 deg: top view (seen from above, y up being -y)."""
        specs = as_meshes(meshes)
        if not specs:
            raise ValueError("render_view needs at least one mesh")
        width, height = self.size
        R, cam, t = orbit_view(
            np.concatenate([m.vertices for m in specs]), axis, angle_deg, width, height, fill
        )
        moved = [MeshSpec(m.vertices @ R.T + t, m.faces, m.color) for m in specs]
        return self.render(moved, cam)

    def side_view(self, meshes: Iterable[MeshLike], fill: float = 0.8) -> RenderOutput:
        return self.render_view(meshes, "y", 90.0, fill)

    def top_view(self, meshes: Iterable[MeshLike], fill: float = 0.8) -> RenderOutput:
        return self.render_view(meshes, "x", 90.0, fill)


def _check_size(width: int, height: int) -> None:
    if int(width) != width or int(height) != height or width < 1 or height < 1:
        raise ValueError(f"render size must be positive integers, got {width}x{height}")


def _check_values(specs: Sequence[MeshSpec], vals: Sequence[np.ndarray]) -> int:
    if len(vals) != len(specs):
        raise ValueError(f"got {len(vals)} per-vertex value arrays for {len(specs)} meshes")
    channels = {v.shape[1] if v.ndim == 2 else -1 for v in vals}
    for m, v in zip(specs, vals):
        if v.ndim != 2 or v.shape[0] != len(m.vertices) or not 1 <= v.shape[1] <= 3:
            raise ValueError(
                f"per-vertex values must have shape (V={len(m.vertices)}, C<=3), got {v.shape}"
            )
        if v.size and (v.min() < 0.0 or v.max() > 1.0):
            raise ValueError(
                f"per-vertex values must lie in [0, 1] (got {v.min():.3g}..{v.max():.3g}); "
                "normalise them first"
            )
    if len(channels) > 1:
        raise ValueError(f"all meshes need the same number of value channels, got {channels}")
    return channels.pop() if channels else 3


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# -- training targets ---------------------------------------------------------------------------
_shared: dict[str, Any] = {}


def _shared_renderer(width: int, height: int) -> Renderer:
    """One renderer per process (a forked child never reuses its parent's OpenGL context)."""
    r = _shared.get("renderer")
    if r is None or _shared.get("pid") != os.getpid():
        r = Renderer(width, height)
        _shared.update(renderer=r, pid=os.getpid())
    r.resize(width, height)
    return r


def template_colors(template: Any) -> np.ndarray:
    """Per-vertex colours (V, 3) float32: template coordinates min-max normalised to [0, 1] per
    axis (the dense-correspondence code of each vertex; the same for both hands)."""
    t = to_numpy(template).astype(np.float64)
    if t.ndim != 2 or t.shape[1] != 3:
        raise ValueError(f"template vertices must have shape (V, 3), got {t.shape}")
    lo, hi = t.min(0), t.max(0)
    return ((t - lo) / np.maximum(hi - lo, 1e-12)).astype(np.float32)


def segmentation_and_dense(
    verts_right: Any,
    verts_left: Any,
    faces: Any,
    K: Any,
    size: int | tuple[int, int],
    template: Any,
    renderer: Renderer | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-hand segmentation and dense-correspondence targets for one image.

    verts_right / verts_left: (V, 3) metres in the camera frame, or None for an absent hand.
    faces: (F, 3) shared or (2, F, 3) per hand (either winding works). K: (3, 3) pixels.
    size: S (square) or (width, height). template: (V, 3) template vertices of the hand model
    (e.g. the right hand's rest-pose vertices), coded per vertex by `template_colors`.

    Returns seg (H, W) uint8 with class ids SEG_BACKGROUND / SEG_RIGHT / SEG_LEFT, and dense
    (H, W, 3) float32 in [0, 1] (0 on the background; 8-bit steps). Uses one renderer per process
    unless `renderer` is given.
    """
    width, height = (size, size) if np.isscalar(size) else size
    f = to_numpy(faces)
    per_hand = f if f.ndim == 3 else np.stack([f, f])
    colors = template_colors(template)
    meshes, classes = [], []
    for h, verts in enumerate((verts_right, verts_left)):
        if verts is not None:
            meshes.append(MeshSpec(verts, per_hand[h], HAND_COLORS[h]))
            classes.append(SEG_HAND_IDS[h])
    if renderer is None:
        renderer = _shared_renderer(int(width), int(height))
    else:
        renderer.resize(int(width), int(height))
    if not meshes:
        return np.zeros((height, width), np.uint8), np.zeros((height, width, 3), np.float32)
    dense, mask = renderer.render_vertex_values(meshes, K, [colors] * len(meshes))
    lut = np.array([SEG_BACKGROUND, *classes], dtype=np.uint8)
    return lut[mask], dense

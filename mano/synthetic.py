"""A procedural hand in the MANO model format: the default when no MANO files are available.

Deterministic: the same code builds bit-identical arrays in one process (the shipped
mano/data/MANO_{RIGHT,LEFT}.npz were written by `python -m mano synth mano/data`).

Geometry (right hand, built in a local frame u = distal, w = radial / thumb side, h = dorsal and
placed in MANO's frame with u = -x, w = +z, h = +y like the real right template):
- a palm tube of 6 rings (44 vertices each) from a capped wrist to the knuckle line, where it
  splits into four finger tubes (10 vertices per ring) joined by web quads;
- a thumb tube leaving a 4 x 3 vertex opening on the radial side of the palm;
- fingertips end in a pole vertex. The closed surface has exactly 778 vertices (1552 faces) and
  the vertices are numbered so that every MANO fingertip id (745, 317, 444/445, 556, 673 and
  smplx's 744, 320, 443, 554, 671) lies at or next to the right fingertip.
- MANO's 16-joint tree and joint order; J_regressor rows average the ring of vertices at each
  joint (the thumb's CMC: nearby vertices), corrected to reproduce the joint exactly; smooth skinning weights along each finger;
  10 shape directions (size, finger length, palm width / thickness / length, finger girth,
  thumb size, index-ring ratio, pinky length, knuckle arch); posedirs zero; 45 PCA components
  from procedurally sampled, plausible finger poses, with their mean as hands_mean.
The left hand is the exact mirror (x -> -x) with reversed face winding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .convert import NUM_POSE, model_npz_bytes, validate_model, write_atomic
from .geometry import signed_volume
from .joints import MANO_PARENTS, MANO_SKELETON_NAMES, TIP_VERTEX_SETS

NUM_VERTS = 778
DATA_DIR = Path(__file__).resolve().parent / "data"
FILE_NAMES = {"right": "MANO_RIGHT.npz", "left": "MANO_LEFT.npz"}
POSE_SEED = 2023
NUM_POSE_SAMPLES = 4096

# Columns U, W, H: p_mano = WRIST_MANO + LOCAL_TO_MANO @ (u, w, h). A proper rotation.
LOCAL_TO_MANO = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
WRIST_MANO = np.array([0.095, 0.006, 0.006])  # about where the real right template has its wrist
U_AXIS, W_AXIS, H_AXIS = np.eye(3)

FINGER_RING = 10  # vertices per finger / thumb ring: 5 dorsal + 5 palmar
PALM_COLUMNS = 20  # dorsal (and palmar) palm columns: 5 per finger
PALM_RING = 2 * PALM_COLUMNS + 4  # plus two vertices on each side
SUPERELLIPSE_P = 2.6  # palm cross-section |w/W|^p + |h/H|^p = 1
COLUMN_SPAN = 0.85  # dorsal / palmar columns cover |w/W| <= this
SIDE_ANGLE = np.deg2rad(15.0)  # side vertices at +-15 deg on the cross-section
# Palm ring order: D0..D19 (dorsal, thumb side first), Sa, Sb (little-finger side, dorsal one
# first), P19..P0 (palmar), Ta, Tb (thumb side, palmar one first): counter-clockwise seen from
# the fingers.
ULNAR_SIDE = (PALM_COLUMNS, PALM_COLUMNS + 1)
RADIAL_SIDE = (2 * PALM_COLUMNS + 2, 2 * PALM_COLUMNS + 3)


@dataclass(frozen=True)
class _Finger:
    name: str
    mcp: tuple[float, float, float]  # local (u, w, h), metres
    splay_deg: float  # direction in the u-w plane, positive towards the thumb
    lengths: tuple[float, float, float]  # MCP->PIP, PIP->DIP, DIP->tip, metres
    radius: float  # lateral radius at the knuckle, metres
    n_proximal: int  # rings strictly between MCP and PIP
    n_middle: int  # rings strictly between PIP and DIP
    n_distal: int  # rings after the DIP up to the fingertip cap's equator (inclusive)
    spread: float  # abduction direction used when sampling poses (+ towards the thumb)


# Palm column order: thumb side -> little-finger side.
FINGER_SPECS = (
    _Finger("index", (0.086, 0.025, 0.000), 5.0, (0.039, 0.024, 0.021), 0.0095, 2, 1, 2, 1.0),
    _Finger("middle", (0.090, 0.005, 0.001), 1.0, (0.044, 0.028, 0.023), 0.0097, 2, 2, 2, 0.15),
    _Finger("ring", (0.085, -0.0145, -0.001), -4.0, (0.041, 0.027, 0.022), 0.0091, 2, 1, 2, -0.6),
    _Finger("pinky", (0.075, -0.0325, -0.004), -10.0, (0.032, 0.020, 0.020), 0.0080, 2, 1, 1, -1.2),
)
# Thumb joints (local): CMC inside the palm, MCP, IP, tip.
THUMB_JOINTS = np.array([
    [0.026, 0.024, -0.006],
    [0.045, 0.058, -0.016],
    [0.0683, 0.0766, -0.0238],
    [0.0876, 0.0899, -0.0286],
])
THUMB_RADII = (0.0125, 0.0117, 0.0110, 0.0104, 0.0100, 0.0098, 0.0095, 0.0090)
THUMB_BASE_T = (0.3, 0.6, 0.85)  # Bezier parameters of the rings between the palm and the MCP
THUMB_PATCH_RINGS = (1, 2, 3)  # palm rings holding the thumb opening
# Quads whose diagonals differ by less than this (relative) are ties (the mesh's symmetric quads
# differ by < 1e-14, the others by > 3e-4) and are split combinatorially.
DIAGONAL_TIE_RTOL = 1e-9
CAP_ANGLES = np.deg2rad([30.0, 55.0, 75.0])  # fingertip cap rings (latitude from the equator)

# Palm rings 0-4 (ring 5 is the knuckle ring made of the finger bases).
PALM_U = (-0.010, 0.010, 0.029, 0.047, 0.064)
PALM_HALF_WIDTH = (0.029, 0.034, 0.038, 0.040, 0.041)
PALM_HALF_THICKNESS = (0.0145, 0.0140, 0.0135, 0.0128, 0.0120)
PALM_CENTER_W = (0.0, -0.001, -0.002, -0.003, -0.004)
PALM_CENTER_H = (0.0, 0.0, -0.0005, -0.001, -0.001)
KNUCKLE_BLEND = (0.0, 0.0, 0.0, 0.08, 0.3)  # how far palm rings lean towards the knuckle ring
WRIST_CAP_U = -0.017

# Skinning: smooth transition widths (metres) at MCP/CMC, PIP/MCP(thumb), DIP/IP.
BLEND_WIDTHS = (0.016, 0.012, 0.010)
THUMB_BLEND_WIDTHS = (0.020, 0.012, 0.010)


# ----------------------------------------------------------------------------------------------
# mesh construction


@dataclass
class _Mesh:
    """Vertices in build order with what skinning / shape / regression need to know."""

    points: list[np.ndarray] = field(default_factory=list)
    digit: list[int] = field(default_factory=list)  # 0 thumb .. 4 pinky (palm: column's finger)
    on_digit: list[bool] = field(default_factory=list)  # part of a finger / thumb tube
    chain_s: list[float] = field(default_factory=list)  # arc length from the digit root
    axis: list[np.ndarray] = field(default_factory=list)  # ring centre (palm: the point itself)
    faces: list[tuple[int, int, int]] = field(default_factory=list)

    def add(self, p: np.ndarray, digit: int, on_digit: bool = False, s: float = 0.0,
            axis: np.ndarray | None = None) -> int:
        self.points.append(np.asarray(p, dtype=np.float64))
        self.digit.append(digit)
        self.on_digit.append(on_digit)
        self.chain_s.append(s)
        self.axis.append(np.asarray(p if axis is None else axis, dtype=np.float64))
        return len(self.points) - 1

    def add_ring(self, pts: np.ndarray, digit: int, s: float, center: np.ndarray) -> np.ndarray:
        return np.array([self.add(p, digit, True, s, center) for p in pts])

    def polygon(self, ids: list[int]) -> None:
        """A planar-ish polygon (listed counter-clockwise seen from outside) as triangles.

        Quads split along their clearly shorter diagonal; symmetric quads (diagonals equal up to
        DIAGONAL_TIE_RTOL) along a-c, so last-bit float differences between CPUs cannot change the
        topology. Larger polygons fan from the first vertex.
        """
        if len(ids) == 4:
            a, b, c, d = ids
            p = self.points
            ac, bd = np.linalg.norm(p[a] - p[c]), np.linalg.norm(p[b] - p[d])
            if ac <= bd * (1.0 + DIAGONAL_TIE_RTOL):
                self.faces += [(a, b, c), (a, c, d)]
            else:
                self.faces += [(a, b, d), (b, c, d)]
            return
        self.faces += [(ids[0], ids[i], ids[i + 1]) for i in range(1, len(ids) - 1)]

    def tube(self, ring_a: np.ndarray, ring_b: np.ndarray, skip: set[int] = frozenset()) -> None:
        """Quads between two rings of equal size; ring_b is further along the outward direction."""
        n = len(ring_a)
        for j in range(n):
            if j not in skip:
                k = (j + 1) % n
                self.polygon([ring_a[j], ring_a[k], ring_b[k], ring_b[j]])

    def cap(self, ring: np.ndarray, pole: int, at_end: bool) -> None:
        n = len(ring)
        for j in range(n):
            k = (j + 1) % n
            self.faces.append((ring[j], ring[k], pole) if at_end else (pole, ring[k], ring[j]))


def _finger_frame(spec: _Finger) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(direction, lateral towards the thumb, dorsal) of a straight finger, local frame."""
    a = np.deg2rad(spec.splay_deg)
    d = np.array([np.cos(a), np.sin(a), 0.0])
    return d, np.cross(H_AXIS, d), H_AXIS.copy()


def _ring_angles(n: int = FINGER_RING) -> np.ndarray:
    """Ring angles: first half dorsal (thumb side first), then palmar (little-finger side first)."""
    return (np.arange(n) + 0.5) * 2.0 * np.pi / n


def _ellipse(center: np.ndarray, lateral: np.ndarray, dorsal: np.ndarray, r_lat: float,
             r_dor: float, angles: np.ndarray) -> np.ndarray:
    return center + np.outer(r_lat * np.cos(angles), lateral) + np.outer(r_dor * np.sin(angles), dorsal)


def _finger_stations(spec: _Finger) -> tuple[list[tuple[float, float]], float, float]:
    """(s, radius factor) of every ring after the knuckle ring, and the PIP / DIP arc lengths."""
    l1, l2, l3 = spec.lengths
    pip, dip, total = l1, l1 + l2, l1 + l2 + l3
    tip_factor = 0.8
    cap_axial = min(tip_factor * spec.radius, 0.5 * l3)
    equator = total - cap_axial
    knots_s = [0.0, 0.5 * l1, pip, pip + 0.5 * l2, dip, equator]
    knots_r = [1.0, 0.94, 0.90, 0.84, 0.82, tip_factor]
    along = ([l1 * (i + 1) / (spec.n_proximal + 1) for i in range(spec.n_proximal)] + [pip]
             + [pip + l2 * (i + 1) / (spec.n_middle + 1) for i in range(spec.n_middle)] + [dip]
             + [dip + (equator - dip) * (i + 1) / spec.n_distal for i in range(spec.n_distal)])
    stations = [(s, float(np.interp(s, knots_s, knots_r))) for s in along]
    stations += [(equator + cap_axial * np.sin(a), tip_factor * np.cos(a)) for a in CAP_ANGLES]
    return stations, pip, dip


def _palm_section(k: int) -> np.ndarray:
    """(44, 3) local points of palm ring k in ring order D0..D19, Sa, Sb, P19..P0, Ta, Tb."""
    u, half_w, half_h = PALM_U[k], PALM_HALF_WIDTH[k], PALM_HALF_THICKNESS[k]
    cw, ch = PALM_CENTER_W[k], PALM_CENTER_H[k]
    x = np.linspace(COLUMN_SPAN, -COLUMN_SPAN, PALM_COLUMNS)
    h = half_h * (1.0 - np.abs(x) ** SUPERELLIPSE_P) ** (1.0 / SUPERELLIPSE_P)
    side_w = half_w * np.cos(SIDE_ANGLE) ** (2.0 / SUPERELLIPSE_P)
    side_h = half_h * np.sin(SIDE_ANGLE) ** (2.0 / SUPERELLIPSE_P)
    dorsal = np.stack([np.full_like(x, u), cw + half_w * x, ch + h], axis=1)
    palmar = np.stack([np.full_like(x, u), cw + half_w * x, ch - h], axis=1)[::-1]
    ulnar = np.array([[u, cw - side_w, ch + side_h], [u, cw - side_w, ch - side_h]])
    radial = np.array([[u, cw + side_w, ch - side_h], [u, cw + side_w, ch + side_h]])
    return np.concatenate([dorsal, ulnar, palmar, radial])


def _knuckle_ring() -> np.ndarray:
    """(44, 3) knuckle ring in palm ring order: the finger base rings plus the side vertices."""
    ring = np.zeros((PALM_RING, 3))
    for f, spec in enumerate(FINGER_SPECS):
        d, lat, dor = _finger_frame(spec)
        base = _ellipse(np.array(spec.mcp), lat, dor, spec.radius, 0.9 * spec.radius, _ring_angles())
        cols = 5 * f + np.arange(5)
        ring[cols] = base[:5]
        ring[_palmar_pos(cols)] = base[5:][::-1]
    for name, sign, pos in (("pinky", -1.0, ULNAR_SIDE), ("index", 1.0, RADIAL_SIDE[::-1])):
        spec = next(s for s in FINGER_SPECS if s.name == name)
        d, lat, dor = _finger_frame(spec)
        mid = np.array(spec.mcp) + sign * (spec.radius + 0.004) * lat - 0.008 * d
        ring[pos[0]] = mid + 0.35 * 0.9 * spec.radius * dor  # dorsal of the two side vertices
        ring[pos[1]] = mid - 0.35 * 0.9 * spec.radius * dor
    return ring


def _palmar_pos(cols: np.ndarray) -> np.ndarray:
    """Ring positions of palmar columns (P_j sits at 2 * PALM_COLUMNS + 1 - j)."""
    return 2 * PALM_COLUMNS + 1 - np.asarray(cols)


def _build_palm(mesh: _Mesh) -> tuple[list[np.ndarray], list[int]]:
    """Palm rings 0-5 (vertex ids, -1 for the thumb opening's interior) and the thumb loop."""
    knuckle = _knuckle_ring()
    columns = np.repeat(np.arange(1, 5), 5)  # digit of each dorsal column, thumb side first
    column_finger = np.concatenate([columns, [4, 4], columns[::-1], [1, 1]])  # per ring position
    (t_a, t_b), d0, p0 = RADIAL_SIDE, 0, _palmar_pos(0)
    interior = {(THUMB_PATCH_RINGS[1], t_a), (THUMB_PATCH_RINGS[1], t_b)}
    rings = []
    for k in range(len(PALM_U)):
        pts = (1 - KNUCKLE_BLEND[k]) * _palm_section(k) + KNUCKLE_BLEND[k] * knuckle
        ids = [-1 if (k, j) in interior else mesh.add(p, int(column_finger[j])) for j, p in enumerate(pts)]
        rings.append(np.array(ids))
    knuckle_ids = []
    for j, p in enumerate(knuckle):
        f = int(column_finger[j])
        is_base = j < PALM_COLUMNS or ULNAR_SIDE[1] < j < RADIAL_SIDE[0]
        center = np.array(FINGER_SPECS[f - 1].mcp)
        knuckle_ids.append(mesh.add(p, f, is_base, 0.0, center if is_base else None))
    rings.append(np.array(knuckle_ids))
    r1, r2, r3 = (rings[k] for k in THUMB_PATCH_RINGS)
    loop = [r1[p0], r1[t_a], r1[t_b], r1[d0], r2[d0], r3[d0], r3[t_b], r3[t_a], r3[p0], r2[p0]]
    return rings, loop


def _palm_faces(mesh: _Mesh, rings: list[np.ndarray]) -> None:
    wrist = mesh.add(np.array([WRIST_CAP_U, PALM_CENTER_W[0], PALM_CENTER_H[0]]), 1)
    mesh.cap(rings[0], wrist, at_end=False)
    t_a, t_b = RADIAL_SIDE
    opening = {t_a - 1, t_a, t_b}  # quads P0->Ta, Ta->Tb, Tb->D0 on the thumb side
    for k in range(len(rings) - 1):
        skip = opening if k in THUMB_PATCH_RINGS[:-1] else set()
        mesh.tube(rings[k], rings[k + 1], skip)
    end = rings[-1]
    for f in range(len(FINGER_SPECS) - 1):  # webs between neighbouring fingers
        b, a = 5 * f + 4, 5 * f + 5
        mesh.polygon([end[b], end[a], end[_palmar_pos(a)], end[_palmar_pos(b)]])
    last = PALM_COLUMNS - 1
    mesh.polygon([end[last], end[ULNAR_SIDE[0]], end[ULNAR_SIDE[1]], end[_palmar_pos(last)]])  # little-finger side
    mesh.polygon([end[_palmar_pos(0)], end[t_a], end[t_b], end[0]])  # index side


def _build_finger(mesh: _Mesh, f: int, knuckle: np.ndarray) -> dict[str, Any]:
    spec = FINGER_SPECS[f]
    d, lat, dor = _finger_frame(spec)
    mcp = np.array(spec.mcp)
    cols = 5 * f + np.arange(5)
    prev = np.concatenate([knuckle[cols], knuckle[_palmar_pos(cols)][::-1]])
    stations, pip, dip = _finger_stations(spec)
    joint_rings = {"1": prev}
    for s, factor in stations:
        r = spec.radius * factor
        center = mcp + s * d
        ring = mesh.add_ring(_ellipse(center, lat, dor, r, 0.9 * r, _ring_angles()), f + 1, s, center)
        mesh.tube(prev, ring)
        for key, s_joint in (("2", pip), ("3", dip)):
            if abs(s - s_joint) < 1e-12:
                joint_rings[key] = ring
        prev = ring
    total = sum(spec.lengths)
    pole = mesh.add(mcp + total * d, f + 1, True, total, mcp + total * d)
    mesh.cap(prev, pole, at_end=True)
    return {"rings": joint_rings, "pole": pole, "last_ring": prev,
            "joints": [mcp, mcp + pip * d, mcp + dip * d]}


def _newell_normal(pts: np.ndarray) -> np.ndarray:
    n = np.cross(pts, np.roll(pts, -1, axis=0)).sum(axis=0)
    return n / np.linalg.norm(n)


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    point = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * p1 + t ** 2 * p2
    tangent = 2 * (1 - t) * (p1 - p0) + 2 * t * (p2 - p1)
    return point, tangent / np.linalg.norm(tangent)


_Station = tuple[np.ndarray, np.ndarray, float, float]  # centre, tangent, arc length, radius


def _thumb_stations(start: np.ndarray, out: np.ndarray) -> tuple[list[_Station], list[float]]:
    """(centre, tangent, arc length, radius) of every thumb ring, and the MCP / IP arc lengths."""
    _, mcp, ip, tip = THUMB_JOINTS
    ctrl = start + 0.45 * np.linalg.norm(mcp - start) * out
    ts = np.linspace(0.0, 1.0, 257)
    curve = np.array([_bezier(start, ctrl, mcp, t)[0] for t in ts])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
    s_mcp = arc[-1]
    d_prox = (ip - mcp) / np.linalg.norm(ip - mcp)
    d_dist = (tip - ip) / np.linalg.norm(tip - ip)
    l_prox, l_dist = np.linalg.norm(ip - mcp), np.linalg.norm(tip - ip)
    s_ip = s_mcp + l_prox
    radii = iter(THUMB_RADII)
    stations = []
    for t in THUMB_BASE_T:
        p, tangent = _bezier(start, ctrl, mcp, t)
        stations.append((p, tangent, float(np.interp(t, ts, arc)), next(radii)))
    end_tangent = _bezier(start, ctrl, mcp, 1.0)[1]
    stations.append((mcp, _unit(end_tangent + d_prox), s_mcp, next(radii)))
    for frac in (1 / 3, 2 / 3):
        stations.append((mcp + frac * l_prox * d_prox, d_prox, s_mcp + frac * l_prox, next(radii)))
    stations.append((ip, _unit(d_prox + d_dist), s_ip, next(radii)))
    r_tip = next(radii)
    cap_axial = min(r_tip, 0.5 * l_dist)
    equator = l_dist - cap_axial
    stations.append((ip + equator * d_dist, d_dist, s_ip + equator, r_tip))
    for a in CAP_ANGLES:
        along = equator + cap_axial * np.sin(a)
        stations.append((ip + along * d_dist, d_dist, s_ip + along, r_tip * np.cos(a)))
    return stations, [s_mcp, s_ip, s_ip + l_dist]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _build_thumb(mesh: _Mesh, loop: list[int]) -> dict[str, Any]:
    loop_pts = np.array([mesh.points[i] for i in loop])
    start = loop_pts.mean(axis=0)
    out = _newell_normal(loop_pts)
    if out @ W_AXIS <= 0:
        raise AssertionError("thumb opening is not oriented outwards (construction error)")
    for i in loop:  # the opening's border belongs to the thumb's root
        mesh.digit[i] = 0
    stations, (s_mcp, s_ip, s_tip) = _thumb_stations(start, out)
    ref = _unit((loop_pts[0] - start) - ((loop_pts[0] - start) @ out) * out)
    rel = loop_pts - start
    loop_angles = np.unwrap(np.arctan2(rel @ np.cross(out, ref), rel @ ref))
    if not np.all(np.diff(loop_angles) > 0):
        raise AssertionError("thumb opening must turn counter-clockwise around the thumb axis")
    uniform = loop_angles[0] + 2 * np.pi * np.arange(FINGER_RING) / FINGER_RING
    prev = np.array(loop)
    joint_rings: dict[str, np.ndarray] = {}
    for k, (center, tangent, s, radius) in enumerate(stations, start=1):
        ref = _unit(ref - (ref @ tangent) * tangent)  # transport the reference direction
        blend = min(1.0, k / 2)
        angles = (1 - blend) * loop_angles + blend * uniform
        pts = _ellipse(center, ref, np.cross(tangent, ref), radius, radius, angles)
        ring = mesh.add_ring(pts, 0, s, center)
        mesh.tube(prev, ring)
        for key, s_joint in (("2", s_mcp), ("3", s_ip)):
            if abs(s - s_joint) < 1e-12:
                joint_rings[key] = ring
        prev = ring
    pole = mesh.add(THUMB_JOINTS[3], 0, True, s_tip, THUMB_JOINTS[3])
    mesh.cap(prev, pole, at_end=True)
    return {"rings": joint_rings, "pole": pole, "last_ring": prev, "start": start,
            "s_joints": (s_mcp, s_ip)}


# ----------------------------------------------------------------------------------------------
# rigging: regressor, skinning, shape directions, pose space


def _regressor_row(points: np.ndarray, target: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Weights (sum 1, >= 0) whose weighted mean of `points` is exactly `target`.

    Starts from uniform weights (or a Gaussian of width `sigma` around the target) and applies
    the smallest relative correction: minimise sum((w - w0)^2 / w0) subject to the constraints.
    """
    n = len(points)
    w0 = np.full(n, 1.0 / n)
    if sigma is not None:
        w0 = np.exp(-((points - target) ** 2).sum(axis=1) / (2 * sigma ** 2))
        w0 /= w0.sum()
    a = np.vstack([points.T, np.ones(n)])  # (4, n)
    b = np.append(target, 1.0)
    w = w0 + w0 * (a.T @ np.linalg.lstsq((a * w0) @ a.T, b - a @ w0, rcond=None)[0])
    if w.min() < 0 or np.abs(a @ w - b).max() > 1e-9:
        raise AssertionError("joint regressor cannot reproduce the joint with weights >= 0")
    return w


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _chain_weights(s: np.ndarray, bounds: tuple[float, ...], widths: tuple[float, ...]) -> np.ndarray:
    """(n, 4) partition of unity over (parent, joint1, joint2, joint3) along a digit's arc length."""
    sig = [_smoothstep((s - b) / w + 0.5) for b, w in zip(bounds, widths)]
    w = np.stack([1 - sig[0], sig[0] - sig[1], sig[1] - sig[2], sig[2]], axis=1)
    return np.clip(w, 0.0, None) / np.clip(w, 0.0, None).sum(axis=1, keepdims=True)


def _skinning_weights(mesh: _Mesh, thumb: dict[str, Any], loop: list[int]) -> np.ndarray:
    """(n, 16) weights: each vertex blends the wrist and its digit's three joints by arc length.

    Palm vertices get a (negative) arc length before their column's knuckle, or for the thumb
    minus their distance to the thumb opening, so only the knuckles and the opening's border
    follow the fingers.
    """
    pts = np.array(mesh.points)
    digit = np.array(mesh.digit)
    on_digit = np.array(mesh.on_digit)
    arc = np.array(mesh.chain_s)
    weights = np.zeros((len(pts), 16))
    name = MANO_SKELETON_NAMES.index
    for f in range(len(FINGER_SPECS) + 1):
        sel = digit == f
        palm = sel & ~on_digit
        if f == 0:
            gaps = np.linalg.norm(pts[palm][:, None] - pts[loop][None], axis=2)
            arc[palm] = -gaps.min(axis=1)
            bounds, widths = (0.0, *thumb["s_joints"]), THUMB_BLEND_WIDTHS
        else:
            spec = FINGER_SPECS[f - 1]
            arc[palm] = (pts[palm] - np.array(spec.mcp)) @ _finger_frame(spec)[0]
            l1, l2, _ = spec.lengths
            bounds, widths = (0.0, l1, l1 + l2), BLEND_WIDTHS
        joints = [0] + [name(f"{_digit_name(f)}{k}") for k in (1, 2, 3)]
        weights[np.ix_(sel, joints)] = _chain_weights(arc[sel], bounds, widths)
    return weights


def _digit_name(f: int) -> str:
    """Digit 0 is the thumb, 1-4 the fingers in FINGER_SPECS order."""
    return "thumb" if f == 0 else FINGER_SPECS[f - 1].name


def _shape_directions(mesh: _Mesh, chain_start: np.ndarray) -> np.ndarray:
    """(n, 3, 10) displacement per unit beta, local frame (see the module docstring)."""
    p = np.array(mesh.points)
    axis = np.array(mesh.axis)
    on = np.array(mesh.on_digit)[:, None]
    digit = np.array(mesh.digit)
    along = np.where(on, axis - chain_start, 0.0)  # ring centre relative to the digit root
    radial = np.where(on, p - axis, 0.0)
    anchor = np.where(on, chain_start, p)  # digits move rigidly with their root
    center_w = -0.003
    dirs = np.zeros(p.shape + (10,))
    dirs[..., 0] = 0.07 * p
    dirs[..., 1] = 0.07 * along
    dirs[:, 1, 2] = 0.09 * (anchor[:, 1] - center_w)
    dirs[:, 2, 3] = np.where(on[:, 0], 0.0, 0.15 * p[:, 2])
    dirs[:, 0, 4] = 0.08 * np.clip(anchor[:, 0], 0.0, None)
    dirs[..., 5] = np.where((digit > 0)[:, None], 0.12 * radial, 0.0)
    is_thumb = (on[:, 0] & (digit == 0))[:, None]
    dirs[..., 6] = np.where(is_thumb, 0.09 * (p - chain_start), 0.0)
    ratio = np.select([digit == 1, digit == 3], [0.05, -0.05], 0.0)  # index longer, ring shorter
    dirs[..., 7] = ratio[:, None] * along
    dirs[..., 8] = np.where((digit == 4)[:, None], 0.10 * along, 0.0)
    dirs[:, 2, 9] = -0.005 * ((anchor[:, 1] - center_w) / 0.04) ** 2
    return dirs


def _sample_poses(thumb_dirs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(N, 45) plausible finger poses, axis-angle in the MANO joint order, local frame."""
    rng = np.random.default_rng(POSE_SEED)
    n = NUM_POSE_SAMPLES
    grip = rng.uniform(-0.15, 1.0, n)
    spread = rng.uniform(-0.05, 0.3, n)
    poses = np.zeros((n, 15, 3))
    name = MANO_SKELETON_NAMES.index
    for spec in FINGER_SPECS:
        d, _, dorsal = _finger_frame(spec)
        flex_axis = np.cross(dorsal, d)  # positive angle bends the finger towards the palm
        curl = np.clip(grip + 0.25 * rng.standard_normal(n), -0.2, 1.1)
        mcp = np.clip(1.3 * curl + 0.12 * rng.standard_normal(n), -0.35, 1.6)
        pip = 1.6 * np.clip(curl + 0.15 * rng.standard_normal(n), 0.0, 1.1)
        dip = np.clip(0.7 * pip + 0.1 * rng.standard_normal(n), -0.05, 1.3)
        abduct = spec.spread * spread * (1 - 0.7 * np.clip(curl, 0, 1)) + 0.04 * rng.standard_normal(n)
        twist = 0.03 * rng.standard_normal(n)
        j1 = name(f"{spec.name}1") - 1
        poses[:, j1] = np.outer(mcp, flex_axis) + np.outer(abduct, dorsal) + np.outer(twist, d)
        poses[:, j1 + 1] = np.outer(pip, flex_axis)
        poses[:, j1 + 2] = np.outer(dip, flex_axis)
    thumb_dir, thumb_nail = thumb_dirs
    thumb_flex = np.cross(thumb_nail, thumb_dir)  # bends the thumb tip towards the palm
    closing = np.clip(grip, 0.0, 1.0)
    opposition = rng.uniform(0, 1, n) * (0.3 + 0.7 * closing)
    t1 = name("thumb1") - 1
    poses[:, t1] = (np.outer(-0.8 * opposition, U_AXIS)
                    + np.outer(0.4 * opposition + 0.1 * rng.standard_normal(n), thumb_flex)
                    + np.outer(0.05 * rng.standard_normal(n), thumb_nail))
    thumb_mcp = np.clip(0.15 + 0.5 * closing + 0.15 * rng.standard_normal(n), -0.2, 1.0)
    thumb_ip = np.clip(0.1 + 0.8 * closing + 0.2 * rng.standard_normal(n), -0.2, 1.4)
    poses[:, t1 + 1] = np.outer(thumb_mcp, thumb_flex)
    poses[:, t1 + 2] = np.outer(thumb_ip, thumb_flex)
    poses += 0.01 * rng.standard_normal(poses.shape)  # every direction of the pose space is used
    return poses.reshape(n, NUM_POSE)


def _pose_space() -> tuple[np.ndarray, np.ndarray]:
    """hands_mean (45,) and hands_components (45, 45) in the MANO frame: the mean and principal
    directions (orthonormal rows, decreasing variance, fixed signs) of the sampled poses."""
    thumb_dir = _unit(THUMB_JOINTS[1] - THUMB_JOINTS[0])
    nail = H_AXIS + 0.75 * W_AXIS  # the thumbnail faces up and out
    thumb_nail = _unit(nail - (nail @ thumb_dir) * thumb_dir)
    poses = _to_mano(_sample_poses((thumb_dir, thumb_nail)).reshape(-1, 15, 3)).reshape(-1, NUM_POSE)
    mean = poses.mean(axis=0)
    _, _, vt = np.linalg.svd(poses - mean, full_matrices=False)
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    return mean, vt * signs[:, None]


def _vertex_order(build_ids: dict[int, int], num: int) -> np.ndarray:
    """final_id[build_id]: the given build vertices get fixed ids, the rest keep build order."""
    final = np.full(num, -1)
    for b, target in build_ids.items():
        final[b] = target
    free = iter(sorted(set(range(num)) - set(build_ids.values())))
    for b in range(num):
        if final[b] < 0:
            final[b] = next(free)
    return final


def _to_mano(local: np.ndarray) -> np.ndarray:
    return local @ LOCAL_TO_MANO.T


def _tip_assignments(fingers: list[dict[str, Any]], thumb: dict[str, Any]) -> dict[int, int]:
    """Build vertex -> MANO id for fingertip poles and vertices next to them."""
    digits = [thumb] + fingers  # thumb, index, middle, ring, pinky
    ids: dict[int, int] = {}
    for k, digit in enumerate(digits):
        ids[digit["pole"]] = TIP_VERTEX_SETS["dir"][k]
        near = [v for v in (TIP_VERTEX_SETS["smplx"][k], TIP_VERTEX_SETS["interhand"][k])
                if v != TIP_VERTEX_SETS["dir"][k]]
        for ring_pos, target in zip((7, 2), dict.fromkeys(near)):  # palmar pad, then dorsal
            ids[digit["last_ring"][ring_pos]] = target
    return ids


def _joint_regressor(pts: np.ndarray, rings: list[np.ndarray], loop: list[int],
                     fingers: list[dict[str, Any]], thumb: dict[str, Any]) -> np.ndarray:
    """(16, n) rows that reproduce the designed joints from the template (MANO joint order)."""
    name = MANO_SKELETON_NAMES.index
    regressor = np.zeros((16, len(pts)))
    wrist_ids = np.concatenate([r[r >= 0] for r in rings[:2]])
    regressor[0, wrist_ids] = _regressor_row(pts[wrist_ids], np.zeros(3))
    for f, finger in enumerate(fingers):
        for k in (1, 2, 3):
            ids = finger["rings"][str(k)]
            row = name(f"{FINGER_SPECS[f].name}{k}")
            regressor[row, ids] = _regressor_row(pts[ids], finger["joints"][k - 1])
    cols = np.arange(7)  # the CMC joint sits inside the palm, below the thumb opening
    thenar = np.unique(np.concatenate(
        [loop] + [rings[k][np.concatenate([cols, _palmar_pos(cols)])] for k in THUMB_PATCH_RINGS]))
    regressor[name("thumb1"), thenar] = _regressor_row(pts[thenar], THUMB_JOINTS[0], sigma=0.01)
    for k in (2, 3):
        ids = thumb["rings"][str(k)]
        regressor[name(f"thumb{k}"), ids] = _regressor_row(pts[ids], THUMB_JOINTS[k - 1])
    return regressor


def build_right_hand() -> dict[str, Any]:
    """The synthetic right hand as validated model arrays (MANO .npz schema, float64) + side."""
    mesh = _Mesh()
    rings, loop = _build_palm(mesh)
    _palm_faces(mesh, rings)
    fingers = [_build_finger(mesh, f, rings[-1]) for f in range(len(FINGER_SPECS))]
    thumb = _build_thumb(mesh, loop)
    num = len(mesh.points)
    if num != NUM_VERTS:
        raise AssertionError(f"synthetic hand has {num} vertices, expected {NUM_VERTS}")
    pts = np.array(mesh.points)
    digit = np.array(mesh.digit)
    starts = np.array([thumb["start"]] + [np.array(s.mcp) for s in FINGER_SPECS])
    chain_start = starts[digit]

    regressor = _joint_regressor(pts, rings, loop, fingers, thumb)
    weights = _skinning_weights(mesh, thumb, loop)
    shapedirs_local = _shape_directions(mesh, chain_start)
    hands_mean, components = _pose_space()

    final = _vertex_order(_tip_assignments(fingers, thumb), num)
    order = np.argsort(final)  # build id of each final id
    faces = final[np.array(mesh.faces)]
    v_template = WRIST_MANO + _to_mano(pts[order])
    shapedirs = np.einsum("ij,vjl->vil", LOCAL_TO_MANO, shapedirs_local[order])
    raw = {
        "v_template": v_template,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((num, 3, 9 * 15)),
        "J_regressor": regressor[:, order],
        "weights": weights[order],
        "kintree_table": np.stack([MANO_PARENTS, np.arange(16)]),
        "f": faces.astype(np.int32),
        "hands_components": components,
        "hands_mean": hands_mean,
    }
    arrays: dict[str, Any] = validate_model(raw, "synthetic right hand")
    if signed_volume(arrays["v_template"], arrays["f"]) <= 0:
        raise AssertionError("synthetic hand faces must point outwards")
    arrays["side"] = "right"
    return arrays


def mirror_to_left(right: dict[str, Any]) -> dict[str, Any]:
    """The left hand as the mirror image (x -> -x) of a right hand model; faces keep pointing out."""
    flip = np.array([-1.0, 1.0, 1.0])
    aa_flip = np.tile(np.array([1.0, -1.0, -1.0]), 15)  # reflected rotations: (a, b, c) -> (a, -b, -c)
    left = dict(right)
    left["v_template"] = right["v_template"] * flip
    left["shapedirs"] = right["shapedirs"] * flip[None, :, None]
    if np.any(right["posedirs"]):
        raise ValueError("mirroring non-zero posedirs is not supported")
    left["f"] = right["f"][:, ::-1].copy()
    left["hands_components"] = right["hands_components"] * aa_flip
    left["hands_mean"] = right["hands_mean"] * aa_flip
    left["side"] = "left"
    return left


def build_hands() -> dict[str, dict[str, Any]]:
    right = build_right_hand()
    return {"right": right, "left": mirror_to_left(right)}


def write_synthetic(outdir: str | Path) -> list[Path]:
    """Write MANO_RIGHT.npz and MANO_LEFT.npz of the synthetic hand into `outdir`."""
    paths = []
    for side, arrays in build_hands().items():
        path = Path(outdir) / FILE_NAMES[side]
        write_atomic(path, model_npz_bytes(arrays))
        paths.append(path)
    return paths


def synthetic_arrays(side: str) -> dict[str, Any]:
    """The synthetic hand of one side: the shipped package data, or built when it is missing."""
    from .convert import load_model_arrays

    path = DATA_DIR / FILE_NAMES[side]
    if path.exists():
        return load_model_arrays(path)
    return build_hands()[side]

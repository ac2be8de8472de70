"""Differentiable MANO layer for both hands at once, built on smplx.MANO.

Each hand's model is loaded through `smplx.MANO` (its buffers: template, blend shapes, regressor,
skinning weights, mean pose); the forward pass runs linear blend skinning for both hands in one
batched computation (hand axis 1: 0 = right, 1 = left). Units are metres.

Joints are regressed from the POSED mesh (16 J_regressor rows + 5 fingertip vertices), in the
wrist-first order, as DIR / IntagHand's evaluation and InterHand2.6M's MANO joints do
(`joints_from="mesh"`, the default). `joints_from="skeleton"` takes the 16 joints from the
kinematic chain instead (the translations of the global joint transforms, as manopth and hence the
official DIR model do); the 5 tips are posed vertices either way. Fingertip ids may differ per
hand (`tips="dir_official"`: the left middle tip is vertex 445), and the finger axis-angles can be
turned into matrices by Rodrigues (default) or manopth's quaternion route
(`finger_rotation="quaternion"`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .convert import MODEL_KEYS, NUM_BETAS, NUM_POSE, SIDES, ModelFileError, ModelNotFoundError, load_model_arrays
from .geometry import signed_volume
from .joints import MANO_PARENTS, MANO_TO_WRIST_FIRST, hand_tip_vertices
from .rotations import FINGER_ROTATIONS, finger_rotation_fn, to_matrix

logger = logging.getLogger("mano")

ENV_VAR = "DIRNET_MANO_DIR"
SYNTHETIC = "synthetic"
POSE_REPRS = ("aa", "pca")
ROOT_SHAPES = {"aa": (3,), "6d": (6,), "6d_robust": (6,), "matrix": (3, 3)}
JOINT_SOURCES = ("mesh", "skeleton")
NUM_FINGERS = 5  # MANO joints 1-15 are 5 chains of 3 (index, middle, pinky, ring, thumb)


@dataclass
class HandsOutput:
    """Posed hands. TwoHands: (B, 2, ...) with 0 = right, 1 = left; a single hand: (B, ...)."""

    vertices: Tensor  # (B, 2, V, 3) metres
    joints: Tensor  # (B, 2, 21, 3) metres, wrist-first order


# ----------------------------------------------------------------------------------------------
# loading


def load_hands(model_dir: str | os.PathLike | None = None, tips: str | tuple = "dir",
               num_pca: int = 45, flat_hand_mean: bool = False, joints_from: str = "mesh",
               finger_rotation: str = "rodrigues") -> "TwoHands":
    """Both MANO hands as one layer.

    model_dir: folder with MANO_RIGHT / MANO_LEFT as .npz (converted) or .pkl (official, read
    without chumpy), directly or in a `mano/` subfolder; None -> env DIRNET_MANO_DIR -> the
    synthetic hand; "synthetic" -> the synthetic hand.
    tips: fingertip vertex set name (mano.joints.TIP_VERTEX_SETS or, per hand,
    HAND_TIP_VERTEX_SETS), 5 vertex ids, or a pair (right ids, left ids).
    num_pca: PCA coefficients per hand for pose_repr="pca" (1-45).
    flat_hand_mean: pose zero is the flat hand (True) or MANO's mean hand (False).
    joints_from / finger_rotation: see the module docstring.
    """
    arrays, source = _load_arrays(model_dir)
    return TwoHands(arrays["right"], arrays["left"], tips=tips, num_pca=num_pca,
                    flat_hand_mean=flat_hand_mean, source=source, joints_from=joints_from,
                    finger_rotation=finger_rotation)


_synthetic_warned = False
# Set to the id of the process that showed the synthetic-hand notice; the processes it starts
# afterwards (loader workers, subprocesses) inherit it and stay quiet: one notice per run.
NOTICE_ENV_VAR = "MANO_SYNTHETIC_NOTICE_SHOWN"


def _warn_synthetic_once() -> None:
    """One log line per run says the synthetic hand is in use and how to use real MANO: not
    repeated by this process, by processes it starts afterwards, nor by the ranks other than 0 of
    a torchrun job (env RANK)."""
    global _synthetic_warned
    if _synthetic_warned:
        return
    _synthetic_warned = True
    shown_by = os.environ.get(NOTICE_ENV_VAR)
    if (shown_by and shown_by != str(os.getpid())) or os.environ.get("RANK", "0") != "0":
        return
    os.environ[NOTICE_ENV_VAR] = str(os.getpid())
    logger.warning(
        "using the SYNTHETIC MANO-format hand, not the real MANO model; to use MANO, "
        "set %s (or pass model_dir) to a folder with MANO_RIGHT/MANO_LEFT .pkl from "
        "https://mano.is.tue.mpg.de (or .npz from `python -m mano convert`)", ENV_VAR)


def load_arrays(model_dir: str | os.PathLike | None = None) -> tuple[dict[str, dict[str, Any]], str]:
    """Both hands' validated model arrays {"right": ..., "left": ...} and their source (a folder or
    "synthetic"), resolved as `load_hands` does; `TwoHands(arrays["right"], arrays["left"], ...)`."""
    return _load_arrays(model_dir)


def _load_arrays(model_dir: str | os.PathLike | None) -> tuple[dict[str, dict[str, Any]], str]:
    if model_dir is None:
        model_dir = os.environ.get(ENV_VAR) or None
    if model_dir is None or str(model_dir) == SYNTHETIC:
        from .synthetic import synthetic_arrays

        _warn_synthetic_once()
        return {side: synthetic_arrays(side) for side in SIDES}, SYNTHETIC
    folder = Path(model_dir)
    arrays = {}
    for side in SIDES:
        path = _model_file(folder, side)
        arrays[side] = load_model_arrays(path)
        if arrays[side]["side"] != side:
            raise ModelFileError(f"{path}: holds a {arrays[side]['side']} hand, expected the {side} one")
    return arrays, str(folder)


def _model_file(folder: Path, side: str) -> Path:
    if not folder.is_dir():
        raise ModelNotFoundError(f"MANO model folder {folder} does not exist (from model_dir or "
                                f"{ENV_VAR}); point it at the folder holding MANO_RIGHT/MANO_LEFT")
    stem = f"MANO_{side.upper()}"
    candidates = [d / f"{stem}{ext}" for d in (folder, folder / "mano") for ext in (".npz", ".pkl")]
    for path in candidates:
        if path.is_file():
            return path
    raise ModelNotFoundError(
        f"{folder}: no {stem}.npz or {stem}.pkl (also looked in {folder / 'mano'}); download MANO "
        "from https://mano.is.tue.mpg.de and put MANO_RIGHT.pkl / MANO_LEFT.pkl there")


def _smplx_mano(arrays: dict[str, Any], flat_hand_mean: bool):
    """A smplx.MANO built from validated arrays (smplx's own loading conventions)."""
    import smplx
    from smplx.utils import Struct

    struct = Struct(**{key: arrays[key] for key in MODEL_KEYS})
    with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note about 10 betas
        return smplx.MANO(model_path="", data_struct=struct, is_rhand=arrays["side"] == "right",
                          use_pca=False, num_pca_comps=NUM_POSE, flat_hand_mean=flat_hand_mean,
                          create_global_orient=False, create_hand_pose=False, create_betas=False,
                          create_transl=False)


def _fix_left_shapedirs(right: dict[str, Any], left: dict[str, Any]) -> dict[str, Any]:
    """MANO's left model ships with the x-row of shapedirs not mirrored; negate it when so."""
    if np.abs(left["shapedirs"][:, 0, :] - right["shapedirs"][:, 0, :]).sum() >= 1:
        return left
    logger.info("mano: left shapedirs[:, 0, :] equal the right ones (known MANO left-hand issue); negated")
    left = dict(left)
    left["shapedirs"] = left["shapedirs"].copy()
    left["shapedirs"][:, 0, :] *= -1
    return left


def _outward_faces(arrays: dict[str, Any]) -> np.ndarray:
    """Faces with winding such that normals point outwards (by signed volume of the template)."""
    faces = arrays["f"].astype(np.int64)
    if signed_volume(arrays["v_template"], faces) < 0:
        logger.debug("mano: %s faces wind inwards; flipped", arrays["side"])
        faces = faces[:, ::-1].copy()
    return faces


# ----------------------------------------------------------------------------------------------
# the layer


class TwoHands(nn.Module):
    """Right and left MANO hands; see `load_hands` and `forward`."""

    def __init__(self, right: dict[str, Any], left: dict[str, Any], tips: str | tuple = "dir",
                 num_pca: int = 45, flat_hand_mean: bool = False, source: str = "",
                 joints_from: str = "mesh", finger_rotation: str = "rodrigues") -> None:
        super().__init__()
        if not 1 <= num_pca <= NUM_POSE:
            raise ValueError(f"num_pca must be in 1..{NUM_POSE}, got {num_pca}")
        if joints_from not in JOINT_SOURCES:
            raise ValueError(f"joints_from must be one of {JOINT_SOURCES}, got {joints_from!r}")
        if finger_rotation not in FINGER_ROTATIONS:
            raise ValueError(f"finger_rotation must be one of {FINGER_ROTATIONS}, got {finger_rotation!r}")
        self.joints_from = joints_from
        self.finger_rotation = finger_rotation
        self._finger_to_matrix = finger_rotation_fn(finger_rotation)
        if right["v_template"].shape != left["v_template"].shape or right["f"].shape != left["f"].shape:
            raise ValueError("right and left models must have the same vertex and face counts")
        for arrays in (right, left):
            if not np.array_equal(np.asarray(arrays["kintree_table"])[0, 1:], MANO_PARENTS[1:]):
                raise ValueError(f"{arrays['side']} model: kinematic tree is not MANO's 16-joint tree")
        left = _fix_left_shapedirs(right, left)
        self.hand_tips = hand_tip_vertices(tips)  # (right ids, left ids)
        self.tips = self.hand_tips[0]
        self.num_verts = int(right["v_template"].shape[0])
        if max(max(t) for t in self.hand_tips) >= self.num_verts:
            raise ValueError(f"tip vertex ids {self.hand_tips} exceed the mesh's {self.num_verts} vertices")
        self.num_pca = num_pca
        self.flat_hand_mean = flat_hand_mean
        self.source = source
        models = [_smplx_mano(arrays, flat_hand_mean) for arrays in (right, left)]

        def stack(get) -> Tensor:
            return torch.stack([get(m).detach().clone().float() for m in models])

        self._add_buffer("v_template", stack(lambda m: m.v_template))  # (2, V, 3)
        self._add_buffer("shapedirs", stack(lambda m: m.shapedirs))  # (2, V, 3, 10)
        self._add_buffer("posedirs", stack(lambda m: m.posedirs))  # (2, 135, V*3)
        self._add_buffer("lbs_weights", stack(lambda m: m.lbs_weights))  # (2, V, 16)
        j_regressor = stack(lambda m: m.J_regressor)  # (2, 16, V)
        self._add_buffer("joint_template", j_regressor @ self.v_template)  # (2, 16, 3)
        self._add_buffer("joint_shapedirs", torch.einsum("hjv,hvcl->hjcl", j_regressor, self.shapedirs))
        self._add_buffer("joint_regressor", self._regressor21(j_regressor))  # (2, 21, V)
        self._add_buffer("tip_ids", torch.tensor(self.hand_tips, dtype=torch.long))  # (2, 5)
        self._add_buffer("hand_mean", stack(lambda m: m.pose_mean[3:]))  # (2, 45), 0 if flat
        components = np.stack([a["hands_components"] for a in (right, left)])
        self._add_buffer("hand_components", torch.from_numpy(components).float())  # (2, 45, 45)
        faces = np.stack([_outward_faces(a) for a in (right, left)])
        self._add_buffer("faces", torch.from_numpy(faces))  # (2, F, 3) int64
        self.use_posedirs = bool(self.posedirs.abs().max() > 0)

    def _add_buffer(self, name: str, tensor: Tensor) -> None:
        """Model data comes from the model files, never from checkpoints: buffers are not saved."""
        self.register_buffer(name, tensor, persistent=False)

    def _regressor21(self, j_regressor: Tensor) -> Tensor:
        """(2, 16, V) -> (2, 21, V): skeleton rows + one-hot fingertip rows, wrist-first order."""
        tips = torch.zeros(2, 5, self.num_verts)
        for h, ids in enumerate(self.hand_tips):
            tips[h, torch.arange(5), torch.tensor(ids)] = 1.0
        return torch.cat([j_regressor, tips], dim=1)[:, torch.from_numpy(MANO_TO_WRIST_FIRST)]

    @property
    def is_synthetic(self) -> bool:
        return self.source == SYNTHETIC

    @property
    def right(self) -> "OneHand":
        return OneHand(self, 0)

    @property
    def left(self) -> "OneHand":
        return OneHand(self, 1)

    def forward(self, root: Tensor, finger_pose: Tensor, betas: Tensor | None = None,
                transl: Tensor | None = None, root_repr: str = "aa", pose_repr: str = "aa") -> HandsOutput:
        """Pose both hands.

        root: (B, 2, 3) axis-angle | (B, 2, 6) 6D (first two matrix columns) | (B, 2, 3, 3).
        finger_pose: (B, 2, 45) axis-angle or (B, 2, num_pca) PCA coefficients, relative to the
        mean hand (or the flat hand if flat_hand_mean). betas: (B, 2, 10) or None (zeros).
        transl: (B, 2, 3) metres or None. Returns vertices (B, 2, V, 3), joints (B, 2, 21, 3).
        """
        return self._forward(slice(0, 2), root, finger_pose, betas, transl, root_repr, pose_repr)

    def pca_to_axis_angle(self, coeffs: Tensor) -> Tensor:
        """(B, 2, P) PCA coefficients -> (B, 2, 45) axis-angle, relative to the same mean."""
        return self._pca_to_aa(coeffs, slice(0, 2))

    def axis_angle_to_pca(self, finger_aa: Tensor) -> Tensor:
        """(B, 2, 45) axis-angle -> (B, 2, num_pca) coefficients (exact when num_pca = 45)."""
        comps = self.hand_components[:, : self.num_pca].to(finger_aa.dtype)
        return torch.einsum("bhk,hpk->bhp", finger_aa, comps)

    def forward_numpy(self, root, finger_pose, betas=None, transl=None, root_repr: str = "aa",
                      pose_repr: str = "aa") -> tuple[np.ndarray, np.ndarray]:
        """numpy in, numpy out (float32), no gradients; a missing batch axis is added and removed.

        For data loaders: e.g. root (2, 3), finger_pose (2, 45), betas (2, 10) -> vertices
        (2, V, 3), joints (2, 21, 3).
        """
        return _numpy_call(self, 2, root, finger_pose, betas, transl, root_repr, pose_repr)

    # -- internals -------------------------------------------------------------------------

    def _pca_to_aa(self, coeffs: Tensor, hands: slice) -> Tensor:
        num = coeffs.shape[-1]
        if num > self.num_pca:
            raise ValueError(f"got {num} PCA coefficients, the layer uses num_pca={self.num_pca}")
        comps = self.hand_components[hands, :num].to(coeffs.dtype)
        return torch.einsum("bhp,hpk->bhk", coeffs, comps)

    def _forward(self, hands: slice, root: Tensor, finger_pose: Tensor, betas: Tensor | None,
                 transl: Tensor | None, root_repr: str, pose_repr: str) -> HandsOutput:
        dtype = self.v_template.dtype
        num_hands = hands.stop - hands.start
        root = _check_input(root, "root", (num_hands,) + _root_shape(root_repr), dtype)
        batch = root.shape[0]
        if pose_repr not in POSE_REPRS:
            raise ValueError(f"pose_repr must be one of {POSE_REPRS}, got {pose_repr!r}")
        width = NUM_POSE if pose_repr == "aa" else self.num_pca
        finger_pose = _check_input(finger_pose, "finger_pose", (num_hands, width), dtype, batch)
        if betas is None:
            betas = root.new_zeros(batch, num_hands, NUM_BETAS)
        betas = _check_input(betas, "betas", (num_hands, NUM_BETAS), dtype, batch)

        finger_aa = finger_pose if pose_repr == "aa" else self._pca_to_aa(finger_pose, hands)
        finger_aa = finger_aa + self.hand_mean[hands]
        rot_root = to_matrix(root, root_repr)  # (B, H, 3, 3)
        rot_fingers = self._finger_to_matrix(finger_aa.reshape(batch, num_hands, 15, 3))
        vertices, skeleton = self._skin(hands, rot_root, rot_fingers, betas)
        if self.joints_from == "skeleton":
            tips = self.tip_ids[hands][None, :, :, None].expand(batch, -1, -1, 3)
            joints = torch.cat([skeleton, vertices.gather(2, tips)], dim=2)
            joints = joints[:, :, torch.from_numpy(MANO_TO_WRIST_FIRST).to(joints.device)]
        else:
            joints = torch.einsum("hjv,bhvc->bhjc", self.joint_regressor[hands], vertices)
        if transl is not None:
            transl = _check_input(transl, "transl", (num_hands, 3), dtype, batch)
            vertices = vertices + transl[:, :, None]
            joints = joints + transl[:, :, None]
        return HandsOutput(vertices=vertices, joints=joints)

    def _skin(self, hands: slice, rot_root: Tensor, rot_fingers: Tensor, betas: Tensor) -> tuple[Tensor, Tensor]:
        """Linear blend skinning of (B, H) hands -> vertices (B, H, V, 3) and posed skeleton joints
        (B, H, 16, 3, MANO order: the kinematic chain's joint positions), before translation."""
        batch, num_hands = betas.shape[:2]
        v_shaped = self.v_template[hands] + torch.einsum("bhl,hvcl->bhvc", betas, self.shapedirs[hands])
        joints_rest = self.joint_template[hands] + torch.einsum("bhl,hjcl->bhjc", betas,
                                                                 self.joint_shapedirs[hands])
        if self.use_posedirs:
            eye = torch.eye(3, dtype=betas.dtype, device=betas.device)
            pose_feature = (rot_fingers - eye).reshape(batch, num_hands, -1)  # (B, H, 135)
            offsets = torch.einsum("bhp,hpk->bhk", pose_feature, self.posedirs[hands])
            v_shaped = v_shaped + offsets.reshape(batch, num_hands, -1, 3)

        rot_all, pos_all = _kinematic_chain(rot_root, rot_fingers, joints_rest)
        shift = pos_all - (rot_all @ joints_rest[..., None])[..., 0]  # (B, H, 16, 3)
        transforms = torch.cat([rot_all, shift[..., None]], dim=-1).flatten(-2)  # (B, H, 16, 12)
        per_vertex = torch.matmul(self.lbs_weights[hands].unsqueeze(0), transforms)  # (B, H, V, 12)
        per_vertex = per_vertex.reshape(batch, num_hands, -1, 3, 4)
        v_homogeneous = torch.cat([v_shaped, torch.ones_like(v_shaped[..., :1])], dim=-1)
        return torch.einsum("bhvik,bhvk->bhvi", per_vertex, v_homogeneous), pos_all


def _kinematic_chain(rot_root: Tensor, rot_fingers: Tensor, joints_rest: Tensor) -> tuple[Tensor, Tensor]:
    """Global joint rotations (B, H, 16, 3, 3) and positions (B, H, 16, 3) of MANO's tree.

    MANO joints 1-15 are 5 chains of 3 (joint 1 + 3 f + level) hanging on the wrist, so the tree
    is walked level by level for all fingers at once. rot_root (B, H, 3, 3), rot_fingers
    (B, H, 15, 3, 3) local rotations, joints_rest (B, H, 16, 3) rest-pose joints.
    """
    batch, num_hands = rot_root.shape[:2]
    root_pos = joints_rest[:, :, 0]  # (B, H, 3)
    finger_rest = joints_rest[:, :, 1:].reshape(batch, num_hands, NUM_FINGERS, 3, 3)
    parent_rest = torch.cat([root_pos[:, :, None, None].expand(-1, -1, NUM_FINGERS, 1, 3),
                             finger_rest[:, :, :, :-1]], dim=3)
    bones = finger_rest - parent_rest  # (B, H, 5 fingers, 3 levels, 3)
    rot_local = rot_fingers.reshape(batch, num_hands, NUM_FINGERS, 3, 3, 3)
    glob_rot = rot_root[:, :, None].expand(-1, -1, NUM_FINGERS, 3, 3)
    glob_pos = root_pos[:, :, None].expand(-1, -1, NUM_FINGERS, 3)
    rots, positions = [], []
    for level in range(3):
        glob_pos = glob_pos + (glob_rot @ bones[:, :, :, level, :, None])[..., 0]
        glob_rot = glob_rot @ rot_local[:, :, :, level]
        rots.append(glob_rot)
        positions.append(glob_pos)
    rot_all = torch.cat([rot_root[:, :, None], torch.stack(rots, dim=3).flatten(2, 3)], dim=2)
    pos_all = torch.cat([root_pos[:, :, None], torch.stack(positions, dim=3).flatten(2, 3)], dim=2)
    return rot_all, pos_all


class OneHand:
    """One hand of a TwoHands layer (shares its buffers): same forward without the hand axis."""

    def __init__(self, parent: TwoHands, index: int) -> None:
        self._parent = parent
        self.index = index
        self.side = SIDES[index]

    @property
    def faces(self) -> Tensor:
        return self._parent.faces[self.index]  # (F, 3) int64, outward normals

    @property
    def num_verts(self) -> int:
        return self._parent.num_verts

    def __call__(self, *args: Any, **kwargs: Any) -> HandsOutput:
        return self.forward(*args, **kwargs)

    def forward(self, root: Tensor, finger_pose: Tensor, betas: Tensor | None = None,
                transl: Tensor | None = None, root_repr: str = "aa", pose_repr: str = "aa") -> HandsOutput:
        """root (B, 3|6|3x3), finger_pose (B, 45|P), betas (B, 10), transl (B, 3) ->
        vertices (B, V, 3), joints (B, 21, 3)."""
        def add_axis(x: Tensor | None) -> Tensor | None:
            return None if x is None else x.unsqueeze(1)

        out = self._parent._forward(slice(self.index, self.index + 1), add_axis(root),
                                    add_axis(finger_pose), add_axis(betas), add_axis(transl),
                                    root_repr, pose_repr)
        return HandsOutput(vertices=out.vertices[:, 0], joints=out.joints[:, 0])

    def forward_numpy(self, root, finger_pose, betas=None, transl=None, root_repr: str = "aa",
                      pose_repr: str = "aa") -> tuple[np.ndarray, np.ndarray]:
        """numpy in / out (float32), no gradients; a missing batch axis is added and removed."""
        return _numpy_call(self, 1, root, finger_pose, betas, transl, root_repr, pose_repr)


def _root_shape(root_repr: str) -> tuple[int, ...]:
    if root_repr not in ROOT_SHAPES:
        raise ValueError(f"root_repr must be one of {tuple(ROOT_SHAPES)}, got {root_repr!r}")
    return ROOT_SHAPES[root_repr]


def _check_input(x: Tensor, name: str, tail: tuple[int, ...], dtype: torch.dtype,
                 batch: int | None = None) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != len(tail) + 1 or tuple(x.shape[1:]) != tail or (batch is not None and x.shape[0] != batch):
        want = ("B" if batch is None else str(batch),) + tuple(str(t) for t in tail)
        raise ValueError(f"{name} must have shape ({', '.join(want)}), got {tuple(x.shape)}")
    return x.to(dtype)


def _numpy_call(layer, num_hands: int, root, finger_pose, betas, transl, root_repr: str,
                pose_repr: str) -> tuple[np.ndarray, np.ndarray]:
    """Run `layer` on numpy inputs with or without a leading batch axis."""
    root = np.asarray(root, dtype=np.float32)
    unbatched = root.ndim == (len(_root_shape(root_repr)) + (num_hands > 1))
    device = layer.faces.device

    def tensor(x):
        if x is None:
            return None
        t = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
        return t.unsqueeze(0) if unbatched else t

    with torch.no_grad():
        out = layer(tensor(root), tensor(finger_pose), tensor(betas), tensor(transl),
                    root_repr=root_repr, pose_repr=pose_repr)
    vertices, joints = out.vertices.cpu().numpy(), out.joints.cpu().numpy()
    return (vertices[0], joints[0]) if unbatched else (vertices, joints)

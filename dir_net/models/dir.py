"""DIR: Decoupled Iterative Refinement for interacting hands (Ren et al., ICCV 2023), built module
for module as the official code (PengfeiRen96/DIR, docs/DIR_OFFICIAL.md): its state_dict keys are
the official ones minus what the official forward never uses, so a released checkpoint converts
by dropping keys (`dirnet convert --from dir-official`).

ResNet-50 `backbone` -> `init_regressor` (per-hand attention pooling of c4, absolute MANO + camera
per hand, offset from the mean of c4: stage 0) -> `decoder` (refinement stages, seg / dense
heads) -> every stage's parameters through the MANO layer (robust 6D root, quaternion finger
rotations, joints from the kinematic chain, fingertips 745/317/444|445/556/673).

Internally everything follows the official conventions (`HandsEstimate`: hands left first, offset
= right root - left root in units of 0.15 m, seg classes (background, left, right), dense channels
as OpenCV reads the file (B, G, R)); `run` returns that. `forward` converts once, at the output
boundary, to the project's contract (dir_net.structures): hand axis 0 = right, 1 = left; offset =
left wrist - right wrist in metres; root_6d = the first two columns of the root rotation actually
used; seg classes (background, right, left) and dense channels (R, G, B) -- the converter permutes
the official heads' output channels so the heads produce the project's orders directly.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

import mano
from dir_net.errors import ConfigError
from dir_net.losses import DirLoss
from dir_net.models.backbone import build_backbone
from dir_net.models.base import HandModel
from dir_net.models.decoder import Decoder
from dir_net.models.heads import HANDS, OFFSET_UNIT, HandsEstimate, InitRegressor, param_dim, split_params
from dir_net.structures import Prediction, StageOutput
from mano.layer import load_arrays
from mano.rotations import matrix_to_rot6d, robust_rot6d_to_matrix

INPUT_STRIDE = 32  # inputs must be multiples of the encoder's total stride
PROJECT_HANDS = ("right", "left")  # the project's hand axis
TIPS = "dir_official"  # fingertip vertices of the official model (left middle tip 445)
# The heads output the project's orders; index these to get the official ones back (the converter
# applies the inverse permutations, which equal these: both are involutions).
SEG_FROM_OFFICIAL = (0, 2, 1)  # official (background, left, right) <-> project (background, right, left)
DENSE_FROM_OFFICIAL = (2, 1, 0)  # official (B, G, R) <-> project (R, G, B)
MANO_ARRAY_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "hands_mean", "hands_components")


def load_model_hands(arrays: Mapping[str, Mapping[str, Any]], num_pca: int, source: str = "") -> Any:
    """The MANO layer as the official model computes it (manopth semantics, module docstring) from
    both hands' model arrays (`mano.layer.load_arrays`)."""
    return mano.TwoHands(dict(arrays["right"]), dict(arrays["left"]), tips=TIPS, num_pca=num_pca,
                         joints_from="skeleton", finger_rotation="quaternion", source=source)


def add_network(module: nn.Module, cfg: Mapping[str, Any]) -> nn.Module:
    """The learnable parts as attributes of `module`: `backbone`, `init_regressor`, `decoder` (None
    without refinement); also used by the converter to know the expected keys and shapes (built on
    the meta device, without a hand model)."""
    dcfg = cfg["model"]["dir"]
    num_pca = int(dcfg["num_pca"])
    module.backbone = build_backbone(cfg["model"]["backbone"])
    channels = module.backbone.channels
    module.init_regressor = InitRegressor(channels["c4"], num_pca, str(dcfg["attention"]))
    module.decoder = Decoder(channels, dcfg, param_dim(num_pca), mano.joints.BONES) if dcfg["refine"] else None
    return module


class ManoArrays(nn.Module):
    """The hand model as persistent buffers (`model.dir.mano_from_checkpoint: true`): a checkpoint
    then carries and restores it (the converter's `--option mano=checkpoint` fills it from the
    official MANO buffers). Faces and the kinematic tree still come from the configured files."""

    def __init__(self, arrays: Mapping[str, Mapping[str, Any]]) -> None:
        super().__init__()
        for side in PROJECT_HANDS:
            for key in MANO_ARRAY_KEYS:
                value = torch.as_tensor(np.asarray(arrays[side][key]), dtype=torch.float32)
                self.register_buffer(f"{side}_{key}", value)

    def arrays(self, base: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        out = {}
        for side in PROJECT_HANDS:
            out[side] = dict(base[side])
            for key in MANO_ARRAY_KEYS:
                out[side][key] = getattr(self, f"{side}_{key}").detach().cpu().double().numpy()
        return out


class DIRModel(HandModel):
    """Built from the whole config (`model.backbone`, `model.dir`, `mano`, `loss.dir`)."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        dcfg = cfg["model"]["dir"]
        self.num_pca = int(dcfg["num_pca"])
        self.decoder: Decoder | None = None
        add_network(self, cfg)
        base_arrays, source = load_arrays(cfg["mano"]["model_dir"])
        hands = load_model_hands(base_arrays, self.num_pca, source)
        # Not a submodule: MANO's data come from the user's model files and are kept out of the
        # parameters and the state_dict (unless mano_from_checkpoint); `_apply` moves it with us.
        self.__dict__["hands"] = hands
        self.__dict__["_base_arrays"] = base_arrays
        self.mano_arrays: ManoArrays | None = None
        if dcfg["mano_from_checkpoint"]:
            self.mano_arrays = ManoArrays(base_arrays)
            self.register_load_state_dict_post_hook(lambda module, _keys: module._rebuild_hands())
        self.criterion = DirLoss(cfg["loss"]["dir"], hands.faces)

    def _apply(self, fn: Callable, recurse: bool = True) -> "DIRModel":
        super()._apply(fn, recurse)
        self.hands._apply(fn)
        return self

    def _rebuild_hands(self) -> None:
        """After loading a state_dict with MANO buffers: the layer from those arrays."""
        old = self.hands
        arrays = self.mano_arrays.arrays(self._base_arrays)
        hands = load_model_hands(arrays, self.num_pca, source=f"{old.source} (arrays from the checkpoint)")
        self.__dict__["hands"] = hands.to(device=old.v_template.device, dtype=old.v_template.dtype)

    # -- forward ---------------------------------------------------------------------------------

    def run(self, images: Tensor, trace: dict | None = None) -> tuple[list[HandsEstimate], dict[str, Tensor]]:
        """images (B, 3, H, W), H and W multiples of 32 -> every stage in the official convention
        and the raw maps {"attention_left", "attention_right" (B, 1, h, w), "seg", "dense"}.
        `trace`, when given, receives the intermediates under the reference fixture's names, official
        conventions ("final/seg" and "final/dense" in the official channel orders)."""
        h, w = images.shape[-2:]
        if h % INPUT_STRIDE or w % INPUT_STRIDE:
            raise ConfigError(f"data.image_size: DIR needs input sides divisible by {INPUT_STRIDE}, got {h}x{w}")
        feats = self.backbone(images)
        if trace is not None:
            trace.update({f"backbone/{k}": v for k, v in feats.items()})
        params, offset, attention = self.init_regressor(feats["c4"], trace)
        stages = [self.decode(params, offset)]
        maps = {f"attention_{hand}": a for hand, a in attention.items()}
        if self.decoder is not None:
            refined, heads = self.decoder(feats, stages[0], self.decode, trace)
            stages += refined
            maps.update(heads)
        if trace is not None:
            for k, est in enumerate(stages):
                trace.update(_estimate_trace(est, f"s{k}/", self.num_pca))
                pca = torch.stack([split_params(est.params[h], self.num_pca)[1] for h in PROJECT_HANDS], dim=1)
                finger = self.hands.pca_to_axis_angle(pca) + self.hands.hand_mean  # absolute axis-angles
                trace.update({f"s{k}/finger_pose_{h}": finger[:, i] for i, h in enumerate(PROJECT_HANDS)})
            if "seg" in maps:
                trace["final/seg"] = maps["seg"][:, list(SEG_FROM_OFFICIAL)]
                trace["final/dense"] = maps["dense"][:, list(DENSE_FROM_OFFICIAL)]
        return stages, maps

    def forward(self, images: Tensor, trace: dict | None = None) -> Prediction:
        """images (B, 3, H, W) -> Prediction with every stage and the aux maps (project conventions);
        `trace` as in `run` (official conventions)."""
        stages, maps = self.run(images, trace)
        outputs = [self.to_stage_output(est) for est in stages]
        aux: dict[str, Tensor] = {}
        if "attention_left" in maps:
            aux["attention"] = torch.cat([maps["attention_right"], maps["attention_left"]], dim=1)  # (B, 2, h, w)
        if "seg" in maps:
            aux["seg"], aux["dense"] = maps["seg"], maps["dense"]
        return compose_prediction(outputs, aux, tuple(images.shape[-2:]))

    def decode(self, params: Mapping[str, Tensor], offset: Tensor) -> HandsEstimate:
        """Raw parameters {hand: (B, D)} and offset (B, 3) -> meshes, joints and projections."""
        params = {h: p.float() for h, p in params.items()}
        stacked = torch.stack([params[h] for h in PROJECT_HANDS], dim=1)  # (B, 2, D) right, left
        rotmat, joints, verts, joint_uv, vert_uv = pose_hands(self.hands, stacked, self.num_pca)
        index = {h: i for i, h in enumerate(PROJECT_HANDS)}
        pick = lambda t: {h: t[:, index[h]] for h in HANDS}  # noqa: E731
        return HandsEstimate(params=params, offset=offset.float(), rotmat=pick(rotmat), joints=pick(joints),
                             verts=pick(verts), joint_uv=pick(joint_uv), vert_uv=pick(vert_uv))

    def to_stage_output(self, est: HandsEstimate) -> StageOutput:
        """Official convention -> the project's StageOutput (module docstring)."""
        stack = lambda d: torch.stack([d[h] for h in PROJECT_HANDS], dim=1)  # noqa: E731
        _, pca, betas, cam = split_params(stack(est.params), self.num_pca)
        return StageOutput(
            root_6d=matrix_to_rot6d(stack(est.rotmat)),
            finger_pose=pca,
            betas=betas,
            cam=cam,
            offset=-OFFSET_UNIT * est.offset,  # left wrist - right wrist, metres
            vertices=stack(est.verts),
            joints=stack(est.joints),
            verts_uv=stack(est.vert_uv),
            joints_uv=stack(est.joint_uv),
        )

    def losses(self, output: Prediction, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return self.criterion(output, batch)

    def predict(self, output: Prediction, batch: Mapping[str, Tensor]) -> Prediction:
        """`forward` already fills the final-stage fields; this returns a detached copy."""
        return output.detach()


def pose_hands(hands: Any, params: Tensor, num_pca: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """DIR's parameterisation: raw per-hand vectors (B, 2, D) (right, left) through the MANO layer
    `hands` (`load_model_hands`) -> root rotation (B, 2, 3, 3), joints (B, 2, 21, 3) and vertices
    (B, 2, V, 3) in metres about each hand's own wrist, and their weak-perspective projections
    joint_uv (B, 2, 21, 2) / vert_uv (B, 2, V, 2) in [-1, 1] of the crop."""
    root_6d, pca, betas, cam = split_params(params, num_pca)
    with torch.autocast(params.device.type, enabled=False):  # skinning in fp32 under mixed precision
        rotmat = robust_rot6d_to_matrix(root_6d)
        out = hands(rotmat, pca, betas, root_repr="matrix", pose_repr="pca")
    wrist = out.joints[:, :, :1]  # (B, 2, 1, 3): the rest-pose wrist of the shaped hand
    joints, verts = out.joints - wrist, out.vertices - wrist
    scale, shift = cam[..., 0, None, None], cam[..., None, 1:]
    return rotmat, joints, verts, scale * joints[..., :2] + shift, scale * verts[..., :2] + shift


def _estimate_trace(est: HandsEstimate, prefix: str, num_pca: int) -> dict[str, Tensor]:
    """One stage under the reference fixture's names (official convention)."""
    out = {f"{prefix}offset": est.offset, f"{prefix}offset_m": est.offset * OFFSET_UNIT}
    for hand in HANDS:
        root_6d, pca, betas, cam = split_params(est.params[hand], num_pca)
        out.update({f"{prefix}params_{hand}": est.params[hand], f"{prefix}root6d_{hand}": root_6d,
                    f"{prefix}pca_{hand}": pca, f"{prefix}betas_{hand}": betas, f"{prefix}cam_{hand}": cam,
                    f"{prefix}root_rotmat_{hand}": est.rotmat[hand], f"{prefix}verts_{hand}": est.verts[hand],
                    f"{prefix}joints_{hand}": est.joints[hand], f"{prefix}joint_uv_{hand}": est.joint_uv[hand],
                    f"{prefix}vert_uv_{hand}": est.vert_uv[hand]})
    return out


def compose_prediction(stages: list[StageOutput], aux: dict[str, Tensor], image_hw: tuple[int, int]) -> Prediction:
    """Final stage -> both hands in one frame (right wrist at the origin, left at `offset`) and
    2D in crop pixels ((uv + 1) / 2 * size)."""
    final = stages[-1]
    shift = torch.stack([torch.zeros_like(final.offset), final.offset], dim=1)[:, :, None]  # (B, 2, 1, 3)
    size = final.joints_uv.new_tensor([image_hw[1], image_hw[0]])  # (x: width, y: height)
    return Prediction(
        joints=final.joints + shift,
        offset=final.offset,
        vertices=final.vertices + shift,
        joints_2d=(final.joints_uv + 1) * 0.5 * size,
        verts_2d=(final.verts_uv + 1) * 0.5 * size,
        stages=stages,
        aux=aux,
    )

"""DIR: Decoupled Iterative Refinement for interacting hands (Ren et al., ICCV 2023).

ResNet-50 encoder -> per-hand attention pooling -> initial MANO + camera per hand and the
right->left offset (stage 0) -> T refinement stages (dir_net.models.decoder) -> every stage's
parameters through the MANO layer. Auxiliary segmentation / dense-correspondence maps at 1/8.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import Tensor

import mano
from dir_net.errors import ConfigError
from dir_net.losses import DirLoss
from dir_net.models.backbone import build_backbone
from dir_net.models.base import HandModel
from dir_net.models.decoder import Decoder, resize_map
from dir_net.models.heads import AuxHeads, HandAttention, InitialRegressor, param_dim, split_params
from dir_net.structures import Prediction, StageOutput

INPUT_STRIDE = 32  # inputs must be multiples of the encoder's total stride


class DIRModel(HandModel):
    """Built from the whole config (`model.backbone`, `model.dir`, `mano`, `loss.dir`)."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        dcfg = cfg["model"]["dir"]
        self.num_pca = int(dcfg["num_pca"])
        self.backbone = build_backbone(cfg["model"]["backbone"])
        c4 = self.backbone.channels["c4"]
        self.attention = HandAttention(c4, dcfg["attention"])
        self.initial = InitialRegressor(c4, self.num_pca)
        self.decoder: Decoder | None = None
        self.aux: AuxHeads | None = None
        if dcfg["refine"]:
            self.decoder = Decoder(self.backbone.channels, dcfg, param_dim(self.num_pca),
                                   mano.joints.SKELETON_PARENTS, mano.joints.BONES)
            self.aux = AuxHeads(dcfg["width"])
        hands = mano.load_hands(cfg["mano"]["model_dir"], tips=cfg["mano"]["tips"], num_pca=self.num_pca)
        # Not a submodule: MANO's buffers are fixed data, kept out of parameters and state_dict
        # (a checkpoint must not carry or overwrite the hand model); `_apply` moves it with us.
        self.__dict__["hands"] = hands
        self.criterion = DirLoss(cfg["loss"]["dir"], hands.faces)

    def _apply(self, fn: Callable, recurse: bool = True) -> "DIRModel":
        super()._apply(fn, recurse)
        self.hands._apply(fn)
        return self

    def forward(self, images: Tensor) -> Prediction:
        """images (B, 3, H, W), H and W multiples of 32 -> Prediction with every stage and aux maps."""
        h, w = images.shape[-2:]
        if h % INPUT_STRIDE or w % INPUT_STRIDE:
            raise ConfigError(f"data.image_size: DIR needs input sides divisible by {INPUT_STRIDE}, got {h}x{w}")
        feats = self.backbone(images)
        hand_feat, attention = self.attention(feats["c4"])
        params, offset = self.initial(hand_feat, feats["c4"])
        stages = [self.decode(params, offset)]
        aux: dict[str, Tensor] = {} if attention is None else {"attention": attention}
        if self.decoder is not None and self.aux is not None:
            fmap, refined = self.decoder(feats, (h, w), stages[0], params, self.decode)
            stages += refined
            aux.update(self.aux(resize_map(fmap, (h // 8, w // 8))))
        return compose_prediction(stages, aux, (h, w))

    def decode(self, params: Tensor, offset: Tensor) -> StageOutput:
        """Packed parameters (B, 2, D) and offset (B, 3) m -> meshes, joints and projections."""
        params, offset = params.float(), offset.float()
        root_6d, finger, betas, cam = split_params(params, self.num_pca)
        with torch.autocast(params.device.type, enabled=False):  # skinning in fp32 under mixed precision
            out = self.hands(root_6d, finger, betas, root_repr="6d", pose_repr="pca")
        wrist = out.joints[:, :, :1]  # (B, 2, 1, 3)
        joints = out.joints - wrist  # (B, 2, 21, 3) m, each hand about its own wrist
        vertices = out.vertices - wrist  # (B, 2, V, 3)
        scale, shift = cam[..., 0, None, None], cam[..., None, 1:]
        return StageOutput(
            root_6d=root_6d,
            finger_pose=finger,
            betas=betas,
            cam=cam,
            offset=offset,
            vertices=vertices,
            joints=joints,
            verts_uv=scale * vertices[..., :2] + shift,  # (B, 2, V, 2) in [-1, 1]
            joints_uv=scale * joints[..., :2] + shift,
        )

    def losses(self, output: Prediction, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return self.criterion(output, batch)

    def predict(self, output: Prediction, batch: Mapping[str, Tensor]) -> Prediction:
        """`forward` already fills the final-stage fields; this returns a detached copy."""
        return output.detach()


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

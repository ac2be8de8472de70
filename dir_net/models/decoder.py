"""DIR decoder (official `decoder`): refinement stages alternating 3D joint-space interaction and
2D map refinement, then the seg / dense heads.

Stage t = 1, 2, 3 is named after its decoder level L = 4, 3, 2 (`skip_layerL`, `fusion_layerL`,
`projecter_L`, `enhance_layerL`), as in the official checkpoint (which has t = 1, 2):
  1. up = bilinear resize (align_corners False) of the previous map (c4 for t = 1, the previous
     enhanced map otherwise) to the stage size (1/16 of the input for t = 1, 1/8 afterwards, so
     only stage 1 upsamples x2 from c4 and stage 2 x2 from stage 1; stage 3 keeps 1/8);
     skip = skip_layerL(encoder map: c3, c2, c1 for t = 1, 2, 3; c1 is area-downsampled to 1/8,
     the paper's "downsampling" of maps above 32x32); fused = fusion_layerL(concat[up, skip]).
  2. projecter_L(fused, previous stage, detached) -> this stage's hands and the projected map.
  3. enhanced = enhance_layerL(concat[fused, projected]) (or of fused alone without projection).
After the last stage: f = conv_final(enhanced); seg = seg(f); dense = dense(f), raw logits / values
at the last stage's resolution (1/8 of the input for 2 or 3 stages, 1/16 for one).

Projector (official `Joint2BoneFeature`), F = fused map (B, W, h, w), previous stage detached:
  sampled_h = grid_sample(F, previous joint uv_h) (B, W, 21); joint_img_feat_h = img2joint_h;
  joint_pos_feat_h = pos_emb_h(previous joints_h / 0.15); GCN_h of their sum; plus
  global_pos_emb(joints_left / 0.15 - offset / 2) or (joints_right / 0.15 + offset / 2);
  tokens [left 21, right 21] -> interaction (transformer + head) -> (B, 42, plane_dim);
  regressor (absolute): offset = Linear(concat[f_left, f_right, previous offset]),
  params_h = Linear_h(concat[f_h, previous params_h]); f_h = the hand's 21 tokens flattened;
  MANO + projection (the model's `decode`); then the joint features (proj_feat_emb) are
  projected at THIS stage's uv (mfp.py) and fused (`fusion`).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dir_net.models import mfp
from dir_net.models.gcn import HandGCN
from dir_net.models.heads import HANDS, OFFSET_UNIT, HandsEstimate, apply_tokens, init_conv_fan_out, map_head, mlp1d
from dir_net.models.transformer import JointHead, JointTransformer

NUM_JOINTS = 21
LEVELS = (4, 3, 2)  # decoder level of stage 1, 2, 3
SKIPS = {4: "c3", 3: "c2", 2: "c1"}  # encoder map each level fuses
Decode = Callable[[dict[str, Tensor], Tensor], HandsEstimate]


class Conv(nn.Module):
    """The official residual module's conv wrapper (key `.conv`): k x k, stride 1, same padding, bias."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, padding=(kernel - 1) // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Residual(nn.Module):
    """Stacked-hourglass residual module, pre-activation (official `Residual`):
    conv3(ReLU(bn3(conv2(ReLU(bn2(conv1(ReLU(bn1(x))))))))) + skip_layer(x); conv1 1x1 in -> out/2,
    conv2 3x3, conv3 1x1 -> out; skip_layer 1x1 when in != out, identity otherwise."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = out_ch // 2
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = Conv(in_ch, mid, 1)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = Conv(mid, mid, 3)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = Conv(mid, out_ch, 1)
        self.skip_layer = Conv(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + (x if self.skip_layer is None else self.skip_layer(x))


class ImgToJoint(nn.Module):
    """Per-hand MLP on the sampled joint features (official `img2joint_h`, key `.filters`)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.filters = mlp1d(in_dim, out_dim)

    def forward(self, sampled: Tensor) -> Tensor:
        """(B, C, 21) -> (B, 21, out_dim)."""
        return self.filters(sampled).transpose(1, 2)


class Regressor(nn.Module):
    """Absolute per-stage regressor (official `regressor`): nothing is added to the previous
    estimate; the previous values are inputs. Initialised (init only, the official draws every
    weight from N(0, 1e-3)) with an identity block on the previous-value inputs, so an untrained
    stage starts by passing the previous estimate through."""

    def __init__(self, feat_dim: int, param_dim: int) -> None:
        super().__init__()
        joint_in = NUM_JOINTS * feat_dim
        self.mano_left = nn.Linear(joint_in + param_dim, param_dim)
        self.mano_right = nn.Linear(joint_in + param_dim, param_dim)
        self.offset = nn.Linear(2 * joint_in + 3, 3)
        with torch.no_grad():
            for lin, start in ((self.mano_left, joint_in), (self.mano_right, joint_in), (self.offset, 2 * joint_in)):
                nn.init.normal_(lin.weight, 0.0, 1e-3)
                lin.weight[:, start:].copy_(torch.eye(lin.out_features))
                lin.bias.zero_()

    def forward(self, tokens: Tensor, params: Mapping[str, Tensor], offset: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """tokens (B, 42, F) left then right; params {hand: (B, D)}, offset (B, 3), both detached."""
        b = tokens.shape[0]
        flat = {"left": tokens[:, :NUM_JOINTS].reshape(b, -1), "right": tokens[:, NUM_JOINTS:].reshape(b, -1)}
        new_offset = self.offset(torch.cat([flat["left"], flat["right"], offset], dim=-1))
        new_params = {h: getattr(self, f"mano_{h}")(torch.cat([flat[h], params[h]], dim=-1)) for h in HANDS}
        return new_params, new_offset


class Projector(nn.Module):
    """One refinement stage's joint-space part and projection (module docstring)."""

    def __init__(self, cfg: Mapping, param_dim: int, bones: Sequence[tuple[int, int]], radius: float) -> None:
        super().__init__()
        width, joint_dim, plane_dim = int(cfg["width"]), int(cfg["joint_dim"]), int(cfg["plane_dim"])
        self.radius = float(radius)
        self.projection = str(cfg["projection"])
        if self.projection not in mfp.PROJECTIONS:
            raise ValueError(f"unknown projection {self.projection!r}; expected one of {mfp.PROJECTIONS}")
        self.multi_plane = self.projection == "mfp"
        self.factorised = True  # False: build the explicit planes (same output; the official code's FLOPs)
        self.register_buffer("bone_parent", torch.tensor([p for p, _ in bones]), persistent=False)
        self.register_buffer("bone_child", torch.tensor([c for _, c in bones]), persistent=False)
        if cfg["gcn"]:
            self.gcn_left = HandGCN(joint_dim, int(cfg["gcn_layers"]), bones)
            self.gcn_right = HandGCN(joint_dim, int(cfg["gcn_layers"]), bones)
        self.img2joint_left = ImgToJoint(width, joint_dim)
        self.img2joint_right = ImgToJoint(width, joint_dim)
        self.pos_emb_left = mlp1d(3, joint_dim)
        self.pos_emb_right = mlp1d(3, joint_dim)
        self.global_pos_emb = mlp1d(3, joint_dim)
        if cfg["transformer"]:
            self.interaction: JointHead = JointTransformer(joint_dim, plane_dim, int(cfg["tf_layers"]),
                                                           int(cfg["tf_heads"]), float(cfg["tf_mlp_ratio"]))
        else:
            self.interaction = JointHead(joint_dim, plane_dim)
        if self.projection in ("mfp", "single_plane"):
            self.proj_feat_emb = mlp1d(plane_dim, plane_dim)
        planes = {"mfp": 2 * len(bones) * plane_dim, "single_plane": plane_dim,
                  "multi_plane_heatmap": 2 * NUM_JOINTS}.get(self.projection)
        if planes is not None:
            self.fusion = map_head(planes, width, width)
        self.regressor = Regressor(plane_dim, param_dim)
        init_conv_fan_out(self)

    def forward(self, fmap: Tensor, prev: HandsEstimate, decode: Decode, trace: dict | None = None,
                prefix: str = "") -> tuple[HandsEstimate, Tensor | None]:
        """fmap (B, W, h, w); prev: the previous stage (detached here). Returns this stage's hands and
        the fused projection (B, W, h, w) (None without projection)."""
        offset = prev.offset.detach()
        tokens = []
        for hand in HANDS:
            uv = prev.joint_uv[hand].detach()
            joints = prev.joints[hand].detach()
            sampled = F.grid_sample(fmap, uv[:, None], mode="bilinear", padding_mode="zeros",
                                    align_corners=False)[:, :, 0]  # (B, W, 21)
            img_feat = getattr(self, f"img2joint_{hand}")(sampled)
            pos_feat = apply_tokens(getattr(self, f"pos_emb_{hand}"), joints / OFFSET_UNIT)
            x = img_feat + pos_feat
            if hasattr(self, f"gcn_{hand}"):
                x_out = getattr(self, f"gcn_{hand}")(x, trace, f"{prefix}gcn_layer0_{hand}")
            else:
                x_out = x
            sign = -0.5 if hand == "left" else 0.5
            global_feat = apply_tokens(self.global_pos_emb, joints / OFFSET_UNIT + sign * offset[:, None])
            tokens.append(x_out + global_feat)
            if trace is not None:
                trace.update({f"{prefix}sampled_{hand}": sampled, f"{prefix}joint_img_feat_{hand}": img_feat,
                              f"{prefix}joint_pos_feat_{hand}": pos_feat, f"{prefix}gcn_in_{hand}": x,
                              f"{prefix}gcn_out_{hand}": x_out, f"{prefix}global_pos_feat_{hand}": global_feat})
        tf_in = torch.cat(tokens, dim=1)  # (B, 42, joint_dim): left joints 0-20, right 21-41
        tf_out = self.interaction(tf_in, trace, prefix)
        params, new_offset = self.regressor(tf_out, {h: prev.params[h].detach() for h in HANDS}, offset)
        est = decode(params, new_offset)
        if trace is not None:
            trace.update({f"{prefix}tf_in": tf_in, f"{prefix}tf_out": tf_out})
        return est, self.project(tf_out, est, fmap.shape[-2:], trace, prefix)

    def project(self, tf_out: Tensor, est: HandsEstimate, size: Sequence[int], trace: dict | None,
                prefix: str) -> Tensor | None:
        """Joint features at this stage's (not detached) uv -> fused map (B, W, h, w) or None."""
        if self.projection == "none":
            return None
        h, w = int(size[0]), int(size[1])
        if self.projection == "multi_plane_heatmap":
            px = torch.cat([mfp.uv_to_pixels(est.joint_uv[hand], h, w) for hand in HANDS], dim=1)
            return self.fusion(mfp.joint_heatmaps(px, h, w, self.radius))
        feats, weights = [], []
        for i, hand in enumerate(HANDS):
            feat = apply_tokens(self.proj_feat_emb, tf_out[:, i * NUM_JOINTS:(i + 1) * NUM_JOINTS])
            px = mfp.uv_to_pixels(est.joint_uv[hand], h, w)
            weights.append(mfp.bone_weights(px, self.bone_parent, self.bone_child, h, w, self.radius))
            feats.append(feat)
            if trace is not None:
                mask, w_parent, w_child = weights[-1]
                trace.update({f"{prefix}mfp_joint_feat_{hand}": feat,
                              f"{prefix}mfp_mask_{hand}": mask.view(-1, mask.shape[1], h, w),
                              f"{prefix}mfp_w_parent_{hand}": w_parent.view(-1, mask.shape[1], h, w),
                              f"{prefix}mfp_w_child_{hand}": w_child.view(-1, mask.shape[1], h, w)})
        if self.projection == "single_plane":
            return self.fusion(mfp.single_plane(feats, weights, self.bone_parent, self.bone_child, h, w))
        parent, child = self.bone_parent, self.bone_child
        explicit = None
        if not self.factorised or trace is not None:
            explicit = torch.cat([mfp.explicit_planes(f, parent, child, wp, wc, h, w)
                                  for f, (_, wp, wc) in zip(feats, weights)], dim=1)  # [left, right] planes
            if trace is not None:
                half = explicit.shape[1] // 2
                trace.update({f"{prefix}mfp_planes": explicit,
                              f"{prefix}proj_feat": explicit[:, :half] + explicit[:, half:]})
        if self.factorised:
            ends = torch.stack([torch.stack([f[:, parent], f[:, child]], dim=2) for f in feats], dim=1)
            maps = torch.stack([torch.stack([wp, wc], dim=2) for _, wp, wc in weights], dim=1)  # (B, 2, K, 2, P)
            out = mfp.project_fused(self.fusion[0], ends, maps, h, w)
        else:
            out = self.fusion[0](explicit)
        for layer in list(self.fusion)[1:]:  # BN, ReLU, Conv1x1
            out = layer(out)
        return out


def resize_to(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear (align_corners False) up / area down to `size`; identity when already that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.shape[-2] > size[0]:
        return F.adaptive_avg_pool2d(x, tuple(size))
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class Decoder(nn.Module):
    """`stages` refinement stages over the encoder features, then conv_final / seg / dense."""

    def __init__(self, channels: Mapping[str, int], cfg: Mapping, param_dim: int,
                 bones: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        width = int(cfg["width"])
        self.levels = LEVELS[: int(cfg["stages"])]
        for t, level in enumerate(self.levels):
            prev_ch = channels["c4"] if t == 0 else width
            setattr(self, f"skip_layer{level}", Residual(channels[SKIPS[level]], width))
            setattr(self, f"fusion_layer{level}", Residual(prev_ch + width, width))
            setattr(self, f"projecter_{level}", Projector(cfg, param_dim, bones, radius=1.0 if t == 0 else 2.0))
            enhance_in = width if cfg["projection"] == "none" else 2 * width
            setattr(self, f"enhance_layer{level}", Residual(enhance_in, width))
        self.conv_final = map_head(width, width, width, bias=False)
        self.seg = map_head(width, width // 2, 3)
        self.dense = map_head(width, width // 2, 3)
        init_conv_fan_out(self)

    def forward(self, feats: Mapping[str, Tensor], initial: HandsEstimate, decode: Decode,
                trace: dict | None = None) -> tuple[list[HandsEstimate], dict[str, Tensor]]:
        """Returns the refined stages and {"seg", "dense"} raw maps (official channel orders)."""
        fmap, prev, stages = feats["c4"], initial, []
        for t, level in enumerate(self.levels):
            size = feats["c3"].shape[-2:] if t == 0 else feats["c2"].shape[-2:]
            prefix = f"s{t + 1}/"
            up = resize_to(fmap, size)
            skip = getattr(self, f"skip_layer{level}")(resize_to(feats[SKIPS[level]], size))
            fused = getattr(self, f"fusion_layer{level}")(torch.cat([up, skip], dim=1))
            prev, projected = getattr(self, f"projecter_{level}")(fused, prev, decode, trace, prefix)
            enhance_in = fused if projected is None else torch.cat([fused, projected], dim=1)
            fmap = getattr(self, f"enhance_layer{level}")(enhance_in)
            stages.append(prev)
            if trace is not None:
                trace.update({f"{prefix}up": up, f"{prefix}skip": skip, f"{prefix}fused": fused,
                              f"{prefix}enhanced": fmap})
                if projected is not None:
                    trace[f"{prefix}mfp_fused"] = projected
        final = self.conv_final(fmap)
        if trace is not None:
            trace["final/conv_final"] = final
        return stages, {"seg": self.seg(final), "dense": self.dense(final)}

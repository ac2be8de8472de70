"""InterNet (Moon et al., ECCV 2020): 2.5D heatmaps per hand, relative root depth, handedness.

ResNet-50 -> c4 (2048 @ S/32). Per hand a deconv upsampler (dir_net.models.heatmap.DeconvHead) to
21 x D x H x W: x, y are heatmap cells of the crop (stride S / H), z is the depth relative to that
hand's wrist in D bins over [-depth_range, depth_range). From the pooled c4: a 1D heatmap of the
left-minus-right wrist depth (soft-argmax over root_bins bins in [-root_depth_range,
root_depth_range)) and the two hand-presence probabilities.

Depth spans: the official code and mmpose both map a 400 mm span (+-200 mm) for the joint depths
and for the relative root depth (mmpose config: heatmap3d_depth_bound = root_depth_bound = 400);
the defaults are 0.2 m for both, and the InterNet data pipeline invalidates targets outside
`data.internet.depth_range` (also 0.2 m) during training.

Decoding (`predict`): heatmap peak -> crop px + relative depth; absolute wrist depth Z from the GT
wrists of the batch or from a RootNet output file (`model.internet.rootnet_file`). As the official
code and mmpose evaluate it, each hand gets its own absolute wrist depth for the joints (MPJPE);
the predicted relative root depth is used only for the right-to-left wrist vector (`offset`, the
MRRPE): the left wrist at Z_right + rel. Back-projection with the crop intrinsics `K_crop` (equal
to the reference's image pixels + original camera).

Conventions (config model.internet; converted checkpoints set their reference's):
`heatmap_px` centered | scaled (cell i = crop px 4 i, official and mmpose) and `nonpositive_peak`
keep | invalid (mmpose: a joint whose maximum is <= 0 decodes to cell (-1, -1, -1)).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dir_net.errors import ConfigError, DirNetError
from dir_net.models.backbone import build_backbone
from dir_net.models.base import HandModel
from dir_net.models.heatmap import (
    DeconvHead,
    argmax_nd,
    bins_to_depth,
    crop_to_heatmap,
    depth_to_bins,
    gaussian_heatmaps,
    heatmap_to_crop,
    local_soft_argmax,
    masked_mse,
    mlp,
    soft_argmax_1d,
)
from dir_net.structures import Prediction
from mano.joints import NUM_JOINTS

HEATMAP_PEAK = 255.0  # Gaussian target amplitude (official code)
NOMINAL_ROOT_DEPTH = 1.0  # metres: back-projection depth when no absolute depth is known
DECODERS = ("argmax", "soft_argmax")
ENCODER_STRIDE = 32


@dataclass
class InterNetOutput:
    heatmaps: Tensor  # (B, 2, 21, D, H, W) hand axis 0 right, 1 left
    root_logits: Tensor  # (B, R) relative root depth 1D heatmap
    rel_root_depth: Tensor  # (B,) metres, left wrist depth - right wrist depth (soft-argmax)
    hand_logits: Tensor  # (B, 2) right, left presence logits

    def detach(self) -> "InterNetOutput":
        return InterNetOutput(**{f.name: getattr(self, f.name).detach() for f in fields(self)})


class RootNetDepths:
    """Absolute wrist depths from a RootNet output file: a JSON list of {annot_id, bbox,
    abs_depth: [right, left] mm, root_valid}. Held as sorted tensors for batched look-up."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        entries = self._read()
        ids, depths, boxes = [], [], []
        for i, entry in enumerate(entries):
            ids.append(self._field(entry, i, "annot_id", lambda v: int(v), "an integer annotation id"))
            box = entry.get("bbox") if isinstance(entry, dict) else None
            boxes.append([float(v) for v in box] if isinstance(box, list) and len(box) == 4 else [math.nan] * 4)
            depth = self._field(entry, i, "abs_depth", lambda v: [float(x) for x in v], "[right, left] in mm")
            if len(depth) != 2 or not all(math.isfinite(d) and d > 0 for d in depth):
                raise DirNetError(f"{self.path}: entry {i} field 'abs_depth' must be two positive finite "
                                  f"depths [right, left] in mm, got {depth!r}")
            depths.append(depth)
        id_tensor = torch.tensor(ids, dtype=torch.int64)
        if len(torch.unique(id_tensor)) != len(ids):
            raise DirNetError(f"{self.path}: field 'annot_id' repeats ids; each annotation needs one entry")
        self.ids, order = torch.sort(id_tensor)
        self.depths_m = torch.tensor(depths, dtype=torch.float64)[order] / 1000.0  # (N, 2) metres
        self.boxes = np.asarray(boxes, np.float64)[order.numpy()]  # (N, 4) x, y, w, h px; NaN: none

    def _read(self) -> list:
        if not self.path.is_file():
            raise DirNetError(f"model.internet.rootnet_file: {self.path} not found (RootNet output JSON, "
                              "e.g. rootnet_interhand2.6m_output_test.json; null uses GT wrist depths)")
        try:
            entries = json.loads(self.path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DirNetError(f"{self.path}: not valid JSON ({exc}); expected a list of "
                              "{annot_id, bbox, abs_depth, root_valid}") from None
        if not isinstance(entries, list) or not entries:
            raise DirNetError(f"{self.path}: expected a non-empty JSON list of "
                              "{annot_id, bbox, abs_depth, root_valid} entries")
        return entries

    def _field(self, entry: Any, i: int, name: str, convert, what: str) -> Any:
        if not isinstance(entry, dict) or name not in entry:
            raise DirNetError(f"{self.path}: entry {i} has no field '{name}' ({what})")
        try:
            return convert(entry[name])
        except (TypeError, ValueError):
            raise DirNetError(f"{self.path}: entry {i} field '{name}' is malformed ({entry[name]!r}); "
                              f"expected {what}") from None

    def bbox(self, ann_id: int) -> np.ndarray:
        """(4,) x, y, w, h px of RootNet's box of one annotation (data.internet.rootnet_box)."""
        pos = int(torch.searchsorted(self.ids, torch.tensor(ann_id, dtype=torch.int64)).clamp(max=len(self.ids) - 1))
        if int(self.ids[pos]) != ann_id:
            raise DirNetError(f"{self.path}: no RootNet entry for annotation id {ann_id}; use the RootNet file "
                              "of the evaluated split")
        box = self.boxes[pos]
        if not (np.isfinite(box).all() and box[2] > 0 and box[3] > 0):
            raise DirNetError(f"{self.path}: the entry of annotation id {ann_id} has no usable field 'bbox' "
                              "([x, y, w, h] px, w and h > 0); data.internet.rootnet_box needs it (or set it to none)")
        return box

    def lookup(self, ann_ids: Tensor) -> Tensor:
        """(B,) annotation ids -> (B, 2) wrist depths [right, left] in metres."""
        ids = ann_ids.detach().cpu().to(torch.int64)
        pos = torch.searchsorted(self.ids, ids).clamp(max=len(self.ids) - 1)
        missing = ids[self.ids[pos] != ids]
        if len(missing):
            shown = ", ".join(str(int(i)) for i in missing[:5])
            raise DirNetError(f"{self.path}: no RootNet depth for annotation ids {shown}"
                              f"{' ...' if len(missing) > 5 else ''} ({len(missing)} in this batch); "
                              "use the RootNet file of the evaluated split")
        return self.depths_m[pos].to(ann_ids.device, torch.float32)


class InterNet(HandModel):
    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        icfg = cfg["model"]["internet"]
        if icfg["decode"] not in DECODERS:
            raise ConfigError(f"model.internet.decode must be one of {list(DECODERS)}, got {icfg['decode']!r}")
        self.depth_bins = int(icfg["depth_bins"])
        self.depth_range = float(icfg["depth_range"])
        self.root_bins = int(icfg["root_bins"])
        self.root_depth_range = float(icfg["root_depth_range"])
        self.sigma = float(icfg["sigma"])
        self.decode_method = icfg["decode"]
        self.cell_convention = str(icfg["heatmap_px"])
        self.nonpositive_invalid = icfg["nonpositive_peak"] == "invalid"
        self.weights = dict(icfg["loss_weights"])
        self.backbone = build_backbone(cfg["model"]["backbone"])
        c4 = self.backbone.channels["c4"]
        layers, channels = int(icfg["deconv_layers"]), int(icfg["deconv_channels"])
        self.heads = torch.nn.ModuleList(
            DeconvHead(c4, NUM_JOINTS * self.depth_bins, layers, channels) for _ in range(2)
        )
        self.stride = ENCODER_STRIDE / 2**layers  # crop px per heatmap cell
        self.root_head = mlp(c4, int(icfg["hidden"]), self.root_bins)
        self.hand_head = mlp(c4, int(icfg["hidden"]), 2)
        self.rootnet = RootNetDepths(icfg["rootnet_file"]) if icfg["rootnet_file"] else None

    def forward(self, images: Tensor) -> InterNetOutput:
        c4 = self.backbone(images)["c4"]
        b = c4.shape[0]
        maps = [head(c4) for head in self.heads]  # 2 x (B, 21 * D, H, W)
        h, w = maps[0].shape[-2:]
        heatmaps = torch.stack(maps, 1).reshape(b, 2, NUM_JOINTS, self.depth_bins, h, w)
        pooled = c4.mean((2, 3))
        root_logits = self.root_head(pooled)
        rel_bins = soft_argmax_1d(root_logits)
        return InterNetOutput(
            heatmaps=heatmaps,
            root_logits=root_logits,
            rel_root_depth=bins_to_depth(rel_bins, self.root_depth_range, self.root_bins),
            hand_logits=self.hand_head(pooled),
        )

    # --- training ---------------------------------------------------------------------------------

    def heatmap_coords(self, joints_25d: Tensor) -> Tensor:
        """(..., 3) u, v crop px and z metres -> (..., 3) heatmap coordinates (z bin, y, x)."""
        xy = crop_to_heatmap(joints_25d[..., :2], self.stride, self.cell_convention)
        z = depth_to_bins(joints_25d[..., 2], self.depth_range, self.depth_bins)
        return torch.stack([z, xy[..., 1], xy[..., 0]], -1)

    def targets(self, joints_25d: Tensor, size_hw: tuple[int, int]) -> Tensor:
        """(B, 2, 21, 3) -> (B, 2, 21, D, H, W) Gaussian heatmaps (peak 255), built on the device."""
        coords = self.heatmap_coords(joints_25d.float())
        return gaussian_heatmaps(coords, (self.depth_bins, *size_hw), self.sigma, HEATMAP_PEAK)

    def losses(self, output: InterNetOutput, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """heatmap MSE x joint_valid, L1 relative root depth (in bins, as the official code) x
        root_valid, BCE handedness x hand_type_valid; "total" is their weighted sum."""
        target = self.targets(batch["joints_25d"], tuple(output.heatmaps.shape[-2:]))
        heatmap = masked_mse(output.heatmaps, target, batch["joint_valid"].float())
        rel_pred = depth_to_bins(output.rel_root_depth.float(), self.root_depth_range, self.root_bins)
        rel_gt = depth_to_bins(batch["rel_root_depth"][:, 0].float(), self.root_depth_range, self.root_bins)
        root = ((rel_pred - rel_gt).abs() * batch["root_valid"].float()).mean()
        bce = F.binary_cross_entropy_with_logits(output.hand_logits.float(), batch["hand_present"].float(),
                                                 reduction="none")
        hand = (bce * batch["hand_type_valid"].float()[:, None]).mean()
        terms = {"heatmap": heatmap, "root_depth": root, "hand_type": hand}
        terms["total"] = sum(self.weights[k] * v for k, v in terms.items())
        return terms

    # --- inference --------------------------------------------------------------------------------

    def heatmap_cells(self, heatmaps: Tensor) -> Tensor:
        """(..., D, H, W) -> (..., 3) heatmap coordinates (z bin, y, x) of each joint's peak."""
        if self.decode_method == "argmax":
            return argmax_nd(heatmaps, 3, self.nonpositive_invalid)
        return local_soft_argmax(heatmaps, 3, max(1, math.ceil(2 * self.sigma)))

    def decode_heatmaps(self, heatmaps: Tensor) -> Tensor:
        """(..., D, H, W) -> (..., 3) u, v crop px and z metres relative to the wrist."""
        coords = self.heatmap_cells(heatmaps)
        uv = heatmap_to_crop(coords[..., [2, 1]], self.stride, self.cell_convention)
        z = bins_to_depth(coords[..., 0], self.depth_range, self.depth_bins)
        return torch.cat([uv, z[..., None]], -1)

    def root_depths(self, batch: Mapping[str, Tensor], rel: Tensor) -> tuple[Tensor, bool]:
        """(B, 2) absolute wrist depths [right, left] (m) and whether they are absolute.

        Each hand its own: RootNet's, or the GT of the batch's valid wrists (an invalid one falls
        back to the other wrist +- rel, then to a nominal 1 m). Without either, the right wrist at
        a nominal 1 m and the left at 1 m + rel (not absolute).
        """
        if self.rootnet is not None:
            return self.rootnet.lookup(batch["id"]), True
        if "joints_3d" in batch:
            return self._gt_wrist_depths(batch, rel), True
        right = torch.full_like(rel, NOMINAL_ROOT_DEPTH)
        return torch.stack([right, right + rel], 1), False

    @staticmethod
    def _gt_wrist_depths(batch: Mapping[str, Tensor], rel: Tensor) -> Tensor:
        z = batch["joints_3d"][:, :, 0, 2].float()  # (B, 2)
        ok = batch["joint_valid"][:, :, 0] > 0
        right = torch.where(ok[:, 0], z[:, 0], torch.where(ok[:, 1], z[:, 1] - rel, NOMINAL_ROOT_DEPTH))
        left = torch.where(ok[:, 1], z[:, 1], right + rel)
        return torch.stack([right, left], 1)

    @torch.no_grad()
    def predict(self, output: InterNetOutput, batch: Mapping[str, Tensor]) -> Prediction:
        joints_25d = self.decode_heatmaps(output.heatmaps)  # (B, 2, 21, 3)
        hand_prob = torch.sigmoid(output.hand_logits.float())
        rel = output.rel_root_depth.float()
        K = batch["K_crop"].float()
        depth, absolute = self.root_depths(batch, rel)  # (B, 2) metres, each hand its own
        joints = back_project(joints_25d[..., :2], joints_25d[..., 2] + depth[:, :, None], K)
        wrists = relative_wrists(joints_25d[:, :, 0], depth[:, 0], rel, K)  # (B, 2, 3)
        if not absolute:
            joints = joints - joints[:, :1, :1]
        return Prediction(
            joints=joints,
            offset=wrists[:, 1] - wrists[:, 0],
            joints_2d=joints_25d[..., :2],
            hand_prob=hand_prob,
            absolute=absolute,
        )


def relative_wrists(wrists_25d: Tensor, right_depth: Tensor, rel: Tensor, K: Tensor) -> Tensor:
    """The wrists placed by the relative root depth (the MRRPE of the official code and mmpose).

    wrists_25d (B, 2, 3) u, v crop px and z relative to each hand's wrist (m; the wrist's own
    heatmap depth); right_depth (B,) absolute right wrist depth (m); rel (B,) predicted left minus
    right wrist depth (m). The right wrist at depth z_r + Z_right, the left at z_l + Z_right + rel.
    -> (B, 2, 3) camera frame, metres.
    """
    base = torch.stack([right_depth, right_depth + rel], 1)  # (B, 2)
    return back_project(wrists_25d[..., :2], wrists_25d[..., 2] + base, K)


def back_project(uv: Tensor, z: Tensor, K: Tensor) -> Tensor:
    """uv (B, ..., 2) px, z (B, ...) depth, K (B, 3, 3) without skew -> (B, ..., 3) camera frame."""
    shape = (K.shape[0],) + (1,) * (uv.dim() - 2)
    fx, fy = K[:, 0, 0].reshape(shape), K[:, 1, 1].reshape(shape)
    cx, cy = K[:, 0, 2].reshape(shape), K[:, 1, 2].reshape(shape)
    x = (uv[..., 0] - cx) / fx * z
    y = (uv[..., 1] - cy) / fy * z
    return torch.stack([x, y, z], -1)

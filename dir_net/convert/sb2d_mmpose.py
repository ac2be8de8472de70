"""mmpose 0.x SimpleBaseline2D on InterHand2.6M (`TopDown` + `TopdownHeatmapSimpleHead`,
res50_interhand2d_{all,human,machine}_256x256) -> dir_net SimpleBaseline2D.

Container: mmcv's `{'meta', 'state_dict', ['optimizer']}` (a leading `module.` is stripped), or a bare
state_dict. Key map (1:1): `backbone.` -> `backbone.`, `keypoint_head.deconv_layers.` ->
`head.deconv.`, `keypoint_head.final_layer.` -> `head.final.`; the 21 output channels go from
InterHand2.6M order (tips first, wrist last) to wrist-first.

The converted config sets mmpose's test conventions: per-hand tight joint box (running min from
(W, H), max from (0, 0)) squared x 1.5, box centre at crop px 128, ImageNet mean/std on a uint8
warp, flip test with the one-cell shift, cell i = crop px 4 i, quarter offset only when both
coordinates are in 2..62, a non-positive maximum decodes to cell -1, protocol `interhand2d`.
No options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from dir_net.convert import ConvertError, Converted, project_config, unwrap_state_dict
from dir_net.convert.internet_official import final_blocks, map_state_dict

SOURCE = "sb2d-mmpose"
DESCRIPTION = "mmpose 0.x SimpleBaseline2D on InterHand2.6M (res50_interhand2d_*_256x256, {'state_dict': ...})"

RENAMES = [
    ("backbone.", "backbone."),
    ("keypoint_head.deconv_layers.", "head.deconv."),
    ("keypoint_head.final_layer.", "head.final."),
]

MMPOSE_CONFIG = [
    "experiment.name=sb2d_mmpose", "model.name=simple_baseline2d", "data.pipeline=hand2d", "data.image_size=256",
    "model.simple_baseline2d.flip_test=true", "model.simple_baseline2d.flip_shift=true",
    "model.simple_baseline2d.heatmap_px=scaled", "model.simple_baseline2d.offset_border=mmpose",
    "model.simple_baseline2d.nonpositive_peak=invalid",
    "data.hand2d.normalize=imagenet", "data.hand2d.crop_center=half_size", "data.hand2d.warp=uint8",
    "data.hand2d.box=mmpose", "data.hand2d.bbox_pad=1.5", "data.hand2d.min_valid_joints=12",
    "evaluation.protocols=[interhand2d]",
]


def convert(obj: Any, src: Path, options: Mapping[str, Any]) -> Converted:
    if options:
        raise ConvertError(f"{src}: --from {SOURCE} takes no --option (got {sorted(options)[0]!r})")
    state = unwrap_state_dict(obj, src, ("state_dict", "model"))
    cfg = project_config(MMPOSE_CONFIG)
    model_state, notes = map_state_dict(state, src, RENAMES, cfg, final_blocks("interhand", block=1),
                                        "mmpose's SimpleBaseline2D")
    notes.append("conventions: ImageNet mean/std on a uint8 warp, crop centre 128, flip test with the one-cell "
                 "shift, cell i = crop px 4 i, mmpose quarter-offset border rule, non-positive maxima -> cell -1")
    return Converted(model_state, cfg, notes)

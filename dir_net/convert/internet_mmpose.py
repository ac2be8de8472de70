"""mmpose 0.x InterNet (`Interhand3D` + `Interhand3DHead`, res50_interhand3d_all_256x256) -> dir_net InterNet.

Container: mmcv's `{'meta', 'state_dict', ['optimizer']}` (keys without `module.`; a leading one is
stripped), or a bare state_dict. Key map (1:1, equal shapes): `backbone.` -> `backbone.`,
`keypoint_head.{right,left}_hand_head.deconv_layers.` -> `heads.{0,1}.deconv.`,
`keypoint_head.{right,left}_hand_head.final_layer.` -> `heads.{0,1}.final.`,
`keypoint_head.root_head.fc.` -> `root_head.`, `keypoint_head.hand_type_head.fc.` -> `hand_head.`;
the 64-channel joint blocks of the final convs go from InterHand2.6M order to wrist-first.

The converted config sets mmpose's conventions: ImageNet mean/std on a uint8 warp, box centre at
crop px 128, cell i = crop px 4 i, a joint whose maximum is <= 0 decodes to cell -1, each hand at
its own absolute depth, the RootNet box squared x 1.25 in RootNet mode, and the `mmpose` protocol
(every valid joint pooled), which the model card's numbers use. No options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from dir_net.convert import ConvertError, Converted, project_config, unwrap_state_dict
from dir_net.convert.internet_official import final_blocks, map_state_dict

SOURCE = "internet-mmpose"
DESCRIPTION = "mmpose 0.x InterNet (res50_interhand3d_all_256x256, {'state_dict': ...})"

RENAMES = [
    ("backbone.", "backbone."),
    ("keypoint_head.right_hand_head.deconv_layers.", "heads.0.deconv."),
    ("keypoint_head.right_hand_head.final_layer.", "heads.0.final."),
    ("keypoint_head.left_hand_head.deconv_layers.", "heads.1.deconv."),
    ("keypoint_head.left_hand_head.final_layer.", "heads.1.final."),
    ("keypoint_head.root_head.fc.", "root_head."),
    ("keypoint_head.hand_type_head.fc.", "hand_head."),
]

MMPOSE_CONFIG = [
    "experiment.name=internet_mmpose", "model.name=internet", "data.pipeline=internet", "data.image_size=256",
    "model.internet.heatmap_px=scaled", "model.internet.nonpositive_peak=invalid", "model.internet.decode=argmax",
    "data.internet.normalize=imagenet", "data.internet.crop_center=half_size", "data.internet.warp=uint8",
    "data.internet.rootnet_box=padded", "data.internet.bbox_pad=1.25", "evaluation.protocols=[mmpose]",
]


def convert(obj: Any, src: Path, options: Mapping[str, Any]) -> Converted:
    if options:
        raise ConvertError(f"{src}: --from {SOURCE} takes no --option (got {sorted(options)[0]!r})")
    state = unwrap_state_dict(obj, src, ("state_dict", "model"))
    cfg = project_config(MMPOSE_CONFIG)
    model_state, notes = map_state_dict(state, src, RENAMES, cfg, final_blocks("interhand"), "mmpose's InterNet")
    notes.append("conventions: ImageNet mean/std on a uint8 warp, crop centre 128, cell i = crop px 4 i, "
                 "non-positive maxima -> cell -1, each hand at its own root depth, protocol mmpose (pooled)")
    return Converted(model_state, cfg, notes)

"""InterNet of the official InterHand2.6M release (facebookresearch/InterHand2.6M) -> dir_net InterNet.

Container: `{'epoch', 'network', 'optimizer'}` (training snapshots) with DataParallel `module.` keys;
a bare state_dict is accepted too. Key map (1:1, equal shapes):
`backbone_net.resnet.` -> `backbone.`, `pose_net.joint_deconv_{1,2}.` -> `heads.{0,1}.deconv.`,
`pose_net.joint_conv_{1,2}.0.` -> `heads.{0,1}.final.`, `pose_net.root_fc.` -> `root_head.`,
`pose_net.hand_fc.` -> `hand_head.`. The 1x1 heatmap convs hold 21 blocks of 64 depth channels in the
source joint order; the blocks are reordered to the project's wrist-first order. Missing BatchNorm
`num_batches_tracked` counters are filled with 0.

The converted config sets the official conventions: RGB / 255 without mean/std, box centre at crop
px 128, float warp, cell i = crop px 4 i, argmax decoding, each hand at its own absolute depth, the
RootNet box used as it is in RootNet mode, and the `moon` protocol.

Options (`--option KEY=VALUE`), for checkpoints of the same network trained on other datasets:
- `dataset=interhand` (default) | `stb` | `rhd`: the official STB/RHD loaders put the LEFT hand in
  the first head and use their own joint orders (RHD: wrist, then per finger tip -> MCP; STB: palm
  centre, then little, ring, middle, index, thumb MCP -> tip; see REFERENCE_STB_RHD.md, marked
  unverified there). The hand-type and root heads are the same.
- `hands=right_first|left_first` and `joints=interhand|rhd|stb` override the preset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from dir_net.convert import ConvertError, Converted, fill_bn_counters, project_config, unwrap_state_dict

SOURCE = "internet-official"
DESCRIPTION = "InterNet of the official InterHand2.6M release ({'network': ...} snapshot, module. keys)"

# Source joint order -> wrist-first: project joint k takes source joint ORDERS[name][k] (per hand).
ORDERS: dict[str, tuple[int, ...]] = {
    # InterHand2.6M: per finger tip -> palm, thumb 0-3, index 4-7, middle 8-11, ring 12-15, pinky 16-19, wrist 20
    "interhand": (20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16),
    # RHD: wrist 0, thumb 1-4, index 5-8, middle 9-12, ring 13-16, little 17-20, each tip -> MCP
    "rhd": (0, 4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13, 20, 19, 18, 17),
    # STB: palm centre 0 (in the wrist slot), little 1-4, ring 5-8, middle 9-12, index 13-16, thumb 17-20, MCP -> tip
    "stb": (0, 17, 18, 19, 20, 13, 14, 15, 16, 9, 10, 11, 12, 5, 6, 7, 8, 1, 2, 3, 4),
}
HAND_ORDERS = ("right_first", "left_first")
DATASETS = {"interhand": ("right_first", "interhand"), "stb": ("left_first", "stb"), "rhd": ("left_first", "rhd")}

RENAMES = (  # source prefix (after `module.`) -> project prefix; {h} = source head 1 / 2
    ("backbone_net.resnet.", "backbone."),
    ("pose_net.joint_deconv_{h}.", "heads.{slot}.deconv."),
    ("pose_net.joint_conv_{h}.0.", "heads.{slot}.final."),
    ("pose_net.root_fc.", "root_head."),
    ("pose_net.hand_fc.", "hand_head."),
)

OFFICIAL_CONFIG = [
    "experiment.name=internet_official", "model.name=internet", "data.pipeline=internet", "data.image_size=256",
    "model.internet.heatmap_px=scaled", "model.internet.nonpositive_peak=keep", "model.internet.decode=argmax",
    "data.internet.normalize=rgb01", "data.internet.crop_center=half_size", "data.internet.warp=float",
    "data.internet.rootnet_box=as_is", "data.internet.bbox_pad=1.25", "evaluation.protocols=[moon]",
]


def convert(obj: Any, src: Path, options: Mapping[str, Any]) -> Converted:
    hands, joints = hand_and_joint_order(options, src)
    state = unwrap_state_dict(obj, src, ("network", "state_dict", "model"))
    renames = head_renames(RENAMES, hands)
    cfg = project_config(OFFICIAL_CONFIG)
    model_state, notes = map_state_dict(state, src, renames, cfg, final_blocks(joints), "the official InterNet")
    notes.append(f"heads: {hands} (source head 1 -> {'right' if hands == 'right_first' else 'left'} hand); "
                 f"joint order {joints} -> wrist-first")
    notes.append("conventions: RGB/255 input, crop centre 128, float warp, cell i = crop px 4 i, each hand at its "
                 "own root depth (relative depth only for MRRPE), protocol moon")
    return Converted(model_state, cfg, notes)


# --- shared by the InterNet / SimpleBaseline2D converters ------------------------------------------

def hand_and_joint_order(options: Mapping[str, Any], src: Path) -> tuple[str, str]:
    """(hands, joints) from `dataset=` and the `hands=` / `joints=` overrides; unknown keys refused."""
    known = {"dataset", "hands", "joints"}
    extra = sorted(set(options) - known)
    if extra:
        raise ConvertError(f"{src}: unknown --option {extra[0]!r}; this source takes {sorted(known)}")
    dataset = str(options.get("dataset", "interhand"))
    if dataset not in DATASETS:
        raise ConvertError(f"{src}: --option dataset={dataset!r}: choose one of {sorted(DATASETS)}")
    hands, joints = DATASETS[dataset]
    hands, joints = str(options.get("hands", hands)), str(options.get("joints", joints))
    if hands not in HAND_ORDERS:
        raise ConvertError(f"{src}: --option hands={hands!r}: choose one of {list(HAND_ORDERS)}")
    if joints not in ORDERS:
        raise ConvertError(f"{src}: --option joints={joints!r}: choose one of {sorted(ORDERS)}")
    return hands, joints


def head_renames(renames: tuple[tuple[str, str], ...], hands: str) -> list[tuple[str, str]]:
    """Expand the per-head patterns: source head 1 / 2 -> project slot 0 (right) / 1 (left)."""
    out = []
    for old, new in renames:
        if "{h}" not in old:
            out.append((old, new))
            continue
        for head in (1, 2):
            slot = head - 1 if hands == "right_first" else 2 - head
            out.append((old.format(h=head), new.format(slot=slot)))
    return out


def final_blocks(joints: str, block: int = 64) -> Callable[[str, Any], Any]:
    """Reorder the output channels of the heatmap 1x1 convs (`*.final.weight|bias`): `block` channels
    per joint (64 depth bins for InterNet, 1 for 2D heatmaps), joints from the source order to wrist-first."""
    import torch

    order = torch.tensor(ORDERS[joints])

    def apply(key: str, tensor: Any) -> Any:
        if ".final." not in key:
            return tensor
        blocks = tensor.reshape(len(order), block, *tensor.shape[1:])
        return blocks[order].reshape(tensor.shape).contiguous()

    return apply


def map_state_dict(state: Mapping[str, Any], src: Path, renames: list[tuple[str, str]], cfg: Mapping[str, Any],
                   transform: Callable[[str, Any], Any], what: str) -> tuple[dict[str, Any], list[str]]:
    """Rename every source key, check it against the model `cfg` builds (names, shapes), reorder the
    heatmap channels and fill missing BatchNorm counters. Any other mismatch is a ConvertError."""
    import torch

    from dir_net.models import build_model

    with torch.device("meta"):
        expected = {k: v for k, v in build_model(cfg).state_dict().items()}
    out: dict[str, Any] = {}
    dropped = []
    for key, tensor in state.items():
        new = _rename(key, renames)
        if new is None:
            if key.endswith("num_batches_tracked"):
                dropped.append(key)
                continue
            raise ConvertError(f"{src}: key {key!r} is not part of {what}; is this the right --from? "
                               f"(expected prefixes {[old for old, _ in renames]})")
        if new not in expected:
            raise ConvertError(f"{src}: key {key!r} (-> {new!r}) is not part of {what}; is this the right --from?")
        if tuple(tensor.shape) != tuple(expected[new].shape):
            raise ConvertError(f"{src}: key {key!r} has shape {list(tensor.shape)}, expected "
                               f"{list(expected[new].shape)} for {what} (ResNet-50, 3 deconvs of 256, 64^3 heatmaps)")
        if not torch.isfinite(tensor.float()).all():
            raise ConvertError(f"{src}: key {key!r} holds NaN/inf; the checkpoint is damaged")
        out[new] = transform(new, tensor.detach().clone().to(expected[new].dtype))
    notes = fill_bn_counters(out, expected)
    missing = [k for k in expected if k not in out]
    if missing:
        back = next((old for old, new in renames if missing[0].startswith(new)), "")
        raise ConvertError(f"{src}: {len(missing)} tensors of {what} are missing, first {missing[0]!r}"
                           f"{f' (source prefix {back!r})' if back else ''}; the file is incomplete or another model")
    if dropped:
        notes.append(f"ignored {len(dropped)} source counters without a project key")
    return out, notes


def _rename(key: str, renames: list[tuple[str, str]]) -> str | None:
    for old, new in renames:
        if key.startswith(old):
            return new + key[len(old):]
    return None

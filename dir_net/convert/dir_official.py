"""DIR of the official release (PengfeiRen96/DIR, ICCV 2023) -> dir_net DIR (docs/DIR_OFFICIAL.md).

Container: `{'net': state_dict, 'optimizer', 'schedule', 'last_epoch'}` as the official trainer
saves it; a bare state_dict and DataParallel `module.` keys are accepted too. The project's `dir`
model is built module for module as the official one, so every used key keeps its name and
shape; the conversion only drops what the official forward never uses and permutes two heads:

- dropped, with a note: `backbone.fc.*` (ImageNet classifier), `decoder.projecter_*.interaction.
  STEblocks.0.*` (the transformer block that is built but never run), `seg_loss.weight` (loss
  class weights), `decoder.projecter_*.img_gird` (a constant pixel grid; checked, then rebuilt by
  the model from the feature size), and the MANO buffers `*.mano_layer_{right,left}.th_*` (unless
  `--option mano=checkpoint`);
- `decoder.seg.3.*`: output channels (background, left, right) -> the project's (background,
  right, left); `decoder.dense.3.*`: (B, G, R) as OpenCV reads the dense file -> (R, G, B). Both
  permutations are exact; the model's other conventions (hand order, offset sign and unit) are
  converted at its output boundary, not in the weights.

Options (`--option KEY=VALUE`):
- `mano=files` (default): the model uses the MANO files of `mano.model_dir` / $DIRNET_MANO_DIR
  (the user's files win; the checkpoint's copies are dropped);
- `mano=checkpoint`: the checkpoint's MANO arrays (the stage-0 pair; the three pairs must agree)
  become buffers of the converted model (`model.dir.mano_from_checkpoint: true`); faces and the
  kinematic tree still come from the configured files.
Anything that does not fit (another model's file, a missing key, a wrong shape, a damaged tensor)
is refused with one line naming the file and the first offending key; nothing is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from dir_net.convert import ConvertError, Converted, fill_bn_counters, project_config, unwrap_state_dict
from dir_net.models.dir import DENSE_FROM_OFFICIAL, SEG_FROM_OFFICIAL

SOURCE = "dir-official"
DESCRIPTION = "DIR of the official release (PengfeiRen96/DIR): {'net': state_dict}, bare or module. keys accepted"

OFFICIAL_CONFIG = [
    "experiment.name=dir_official", "model.name=dir", "data.pipeline=dir", "data.image_size=256",
    "data.hand_types=interacting", "data.require_mano=true", "model.backbone.width=64",
    "model.dir.attention=official", "model.dir.refine=true", "model.dir.stages=2", "model.dir.gcn=true",
    "model.dir.transformer=true", "model.dir.projection=mfp", "model.dir.num_pca=45", "model.dir.width=256",
    "model.dir.joint_dim=128", "model.dir.plane_dim=64", "model.dir.gcn_layers=4", "model.dir.tf_layers=3",
    "model.dir.tf_heads=4", "model.dir.tf_mlp_ratio=2.0",
]
GRID_NOTE = "decoder.projecter_*.img_gird (constant pixel-centre grid, checked; rebuilt from the feature size)"
GRID_SIZES = {"decoder.projecter_4.img_gird": 16, "decoder.projecter_3.img_gird": 32}  # 256 / 16, 256 / 8
MANO_LAYERS = ("init_regressor", "decoder.projecter_4.regressor", "decoder.projecter_3.regressor")
MANO_BUFFERS = ("th_betas", "th_shapedirs", "th_posedirs", "th_v_template", "th_J_regressor", "th_weights",
                "th_faces", "th_hands_mean", "th_comps", "th_selected_comps")
# project ManoArrays key -> (official buffer, reshape)
MANO_ARRAYS = {"v_template": "th_v_template", "shapedirs": "th_shapedirs", "posedirs": "th_posedirs",
               "J_regressor": "th_J_regressor", "weights": "th_weights", "hands_mean": "th_hands_mean",
               "hands_components": "th_selected_comps"}
SEG_ORDER = SEG_FROM_OFFICIAL  # project class k = official class SEG_ORDER[k]
DENSE_ORDER = DENSE_FROM_OFFICIAL  # project channel k (R, G, B) = official channel DENSE_ORDER[k] (B, G, R)
UNUSED = (
    (re.compile(r"^backbone\.fc\."), "backbone.fc.* (ImageNet classifier, never used)"),
    (re.compile(r"^decoder\.projecter_\d\.interaction\.STEblocks\.0\."),
     "interaction.STEblocks.0.* (transformer block built but never run)"),
    (re.compile(r"^seg_loss\.weight$"), "seg_loss.weight (loss class weights)"),
)
MANO_KEY = re.compile(r"^(init_regressor|decoder\.projecter_\d\.regressor)\.mano_layer_(right|left)\.(th_\w+)$")


def convert(obj: Any, src: Path, options: Mapping[str, Any]) -> Converted:
    import torch

    mano_mode = _options(options, src)
    state = unwrap_state_dict(obj, src, ("net",))
    cfg_overrides = list(OFFICIAL_CONFIG)
    if mano_mode == "checkpoint":
        cfg_overrides.append("model.dir.mano_from_checkpoint=true")
    cfg = project_config(cfg_overrides)
    expected = expected_state(cfg)

    out: dict[str, Any] = {}
    dropped: dict[str, int] = {}
    mano: dict[tuple[str, str], dict[str, Any]] = {}
    for key, tensor in state.items():
        reason = next((why for pattern, why in UNUSED if pattern.search(key)), None)
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        if key in GRID_SIZES:
            _check_grid(key, tensor, GRID_SIZES[key], src)
            dropped[GRID_NOTE] = dropped.get(GRID_NOTE, 0) + 1
            continue
        match = MANO_KEY.match(key)
        if match is not None and match.group(3) in MANO_BUFFERS:
            mano.setdefault((match.group(1), match.group(2)), {})[match.group(3)] = tensor
            continue
        if key not in expected:
            raise ConvertError(f"{src}: key {key!r} is not part of the official DIR model; is this the right "
                               "--from? (expected backbone.*, init_regressor.*, decoder.*)")
        want = expected[key]
        if tuple(tensor.shape) != tuple(want.shape):
            raise ConvertError(f"{src}: key {key!r} has shape {list(tensor.shape)}, expected {list(want.shape)} "
                               "for the official DIR (ResNet-50, 2 stages, 256x256 input)")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ConvertError(f"{src}: key {key!r} holds NaN/inf; the checkpoint is damaged")
        out[key] = tensor.detach().clone().to(want.dtype)

    notes = fill_bn_counters(out, expected)
    if mano_mode == "checkpoint":
        out.update(_mano_arrays(mano, src))
        notes.append("MANO: the checkpoint's arrays (stage-0 pair, checked equal to the stages' copies) are "
                     "buffers of the converted model (model.dir.mano_from_checkpoint); faces and kinematic "
                     "tree come from mano.model_dir")
    elif mano:
        count = sum(len(v) for v in mano.values())
        notes.append(f"dropped {count} MANO buffers (*.mano_layer_*.th_*): the model uses the MANO files of "
                     "mano.model_dir / $DIRNET_MANO_DIR (--option mano=checkpoint keeps the checkpoint's)")
    missing = [k for k in expected if k not in out]
    if missing:
        raise ConvertError(f"{src}: {len(missing)} tensors of the official DIR model are missing, first "
                           f"{missing[0]!r}; the file is incomplete or another model")
    for what, count in dropped.items():
        notes.append(f"dropped {count} tensors: {what}")
    for key in ("decoder.seg.3.weight", "decoder.seg.3.bias"):
        out[key] = out[key][list(SEG_ORDER)].contiguous()
    for key in ("decoder.dense.3.weight", "decoder.dense.3.bias"):
        out[key] = out[key][list(DENSE_ORDER)].contiguous()
    notes.append("seg head: official classes (background, left, right) -> project (background, right, left); "
                 "dense head: official channels (B, G, R) -> project (R, G, B) (decoder.{seg,dense}.3 permuted)")
    notes.append("conventions: input RGB, ImageNet mean/std, 256x256; the model outputs hand 0 = right, "
                 "offset = left wrist - right wrist in metres (official: right - left in units of 0.15 m)")
    return Converted(out, cfg, notes)


def _options(options: Mapping[str, Any], src: Path) -> str:
    extra = sorted(set(options) - {"mano"})
    if extra:
        raise ConvertError(f"{src}: unknown --option {extra[0]!r}; this source takes ['mano']")
    mode = str(options.get("mano", "files"))
    if mode not in ("files", "checkpoint"):
        raise ConvertError(f"{src}: --option mano={mode!r}: choose files or checkpoint")
    return mode


def expected_state(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Keys -> (shape, dtype) holders of the model `cfg` builds (on the meta device, no hand model)."""
    import torch
    from torch import nn

    from dir_net.models.dir import MANO_ARRAY_KEYS, add_network

    with torch.device("meta"):
        state = dict(add_network(nn.Module(), cfg).state_dict())
    if cfg["model"]["dir"]["mano_from_checkpoint"]:
        for side in ("right", "left"):
            for key in MANO_ARRAY_KEYS:
                state[f"mano_arrays.{side}_{key}"] = torch.empty(0, device="meta")  # filled by _mano_arrays
    return state


def _check_grid(key: str, tensor: Any, size: int, src: Path) -> None:
    import torch

    from dir_net.models.mfp import pixel_centres

    grid = pixel_centres(size, size, torch.zeros((), dtype=torch.float32))
    if tuple(tensor.shape) != tuple(grid.shape) or not torch.equal(tensor.float(), grid):
        raise ConvertError(f"{src}: key {key!r} (shape {list(tensor.shape)}) is not the pixel-centre grid of a "
                           f"{size}x{size} map: a checkpoint made for another input size than 256x256")


def _mano_arrays(mano: Mapping[tuple[str, str], Mapping[str, Any]], src: Path) -> dict[str, Any]:
    """`mano_arrays.*` buffers from the checkpoint's MANO layers (`--option mano=checkpoint`)."""
    import torch

    out = {}
    for side in ("right", "left"):
        layers = [mano.get((layer, side), {}) for layer in MANO_LAYERS]
        base = layers[0]
        for name in MANO_ARRAYS.values():
            key = f"{MANO_LAYERS[0]}.mano_layer_{side}.{name}"
            if name not in base:
                raise ConvertError(f"{src}: --option mano=checkpoint: key {key!r} is missing")
            for layer, other in zip(MANO_LAYERS[1:], layers[1:]):
                if name in other and not torch.equal(other[name], base[name]):
                    raise ConvertError(f"{src}: --option mano=checkpoint: {layer}.mano_layer_{side}.{name} differs "
                                       f"from {key}; the stages disagree on the hand model")
        arrays = {
            "v_template": base["th_v_template"].reshape(-1, 3), "shapedirs": base["th_shapedirs"],
            "posedirs": base["th_posedirs"], "J_regressor": base["th_J_regressor"], "weights": base["th_weights"],
            "hands_mean": base["th_hands_mean"].reshape(-1), "hands_components": base["th_selected_comps"],
        }
        shapes = {"v_template": (778, 3), "shapedirs": (778, 3, 10), "posedirs": (778, 3, 135),
                  "J_regressor": (16, 778), "weights": (778, 16), "hands_mean": (45,), "hands_components": (45, 45)}
        for name, value in arrays.items():
            if tuple(value.shape) != shapes[name]:
                raise ConvertError(f"{src}: key {MANO_LAYERS[0]}.mano_layer_{side}.{MANO_ARRAYS[name]!s} has shape "
                                   f"{list(value.shape)}, expected a MANO hand ({list(shapes[name])})")
            out[f"mano_arrays.{side}_{name}"] = value.detach().clone().float()
    return out

"""Converters from public checkpoints to dir_net checkpoints: one small module per source format.

A source module `dir_net.convert.<module>` defines

    SOURCE = "dir-official"              # the name given to `dirnet convert --from`
    DESCRIPTION = "..."                  # one line for --help
    def convert(obj, src, options) -> Converted

`obj` is what `torch.load` returned for `src`; the module unwraps its container, renames and
checks keys, and returns the project state_dict, the resolved config the model was built with
(recorded in the checkpoint so `dirnet eval/demo/render --checkpoint` need no flags) and notes
(dropped tensors, conventions). Problems raise `ConvertError` naming the file and the first
offending key; `write_converted` writes nothing unless the conversion succeeded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from dir_net.errors import DirNetError

# CLI name -> module (imported on use)
SOURCES: dict[str, str] = {
    "dir-official": "dir_net.convert.dir_official",
    "internet-official": "dir_net.convert.internet_official",
    "internet-mmpose": "dir_net.convert.internet_mmpose",
    "sb2d-mmpose": "dir_net.convert.sb2d_mmpose",
}
FORMAT = "dir_net.checkpoint/1"


class ConvertError(DirNetError):
    """A source checkpoint cannot be converted; the message names the file and the first bad key."""


@dataclass
class Converted:
    model_state: dict[str, Any]  # project state_dict, loads strictly into build_model(config)
    config: dict[str, Any]  # resolved config (Config.to_dict())
    notes: list[str] = field(default_factory=list)  # what was dropped / assumed, one line each


def source_module(source: str) -> Any:
    if source not in SOURCES:
        raise ConvertError(f"--from {source!r}: unknown source format; choose one of {sorted(SOURCES)}")
    return importlib.import_module(SOURCES[source])


def read_source(src: str | Path) -> Any:
    """torch.load a public checkpoint on the CPU (weights only); unreadable files are one line."""
    from dir_net.engine.checkpoint import load_file

    return load_file(src, error=ConvertError)


def unwrap_state_dict(obj: Any, src: str | Path, containers: tuple[str, ...]) -> dict[str, Any]:
    """The state_dict inside `obj`: under the first of `containers` present, or `obj` itself;
    a leading `module.` (DataParallel / DDP) is stripped from every key."""
    import torch

    state = obj
    if isinstance(obj, Mapping):
        for key in containers:
            if key in obj and isinstance(obj[key], Mapping):
                state = obj[key]
                break
    if not isinstance(state, Mapping) or not state:
        raise ConvertError(f"{src}: no state_dict found (looked for {list(containers)} or a bare state_dict)")
    bad = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise ConvertError(f"{src}: key {bad!r} is not a tensor; expected a state_dict"
                           f" (or one under {list(containers)})")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def project_config(overrides: list[str]) -> dict[str, Any]:
    """The resolved config (plain dict) of the defaults with a converter's `overrides`."""
    from dir_net.config import load_config

    return load_config(None, overrides).to_dict()


def fill_bn_counters(state: dict[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Add the BatchNorm `num_batches_tracked` counters that `expected` has and `state` lacks (older
    PyTorch checkpoints and some zoos omit them) as 0; returns the note to report, if any."""
    import torch

    counters = [k for k in expected if k.endswith("num_batches_tracked") and k not in state]
    for key in counters:
        state[key] = torch.zeros((), dtype=torch.int64)
    return [f"filled {len(counters)} missing BatchNorm num_batches_tracked counters with 0"] if counters else []


def convert_file(source: str, src: str | Path, options: Mapping[str, Any] | None = None) -> Converted:
    """Convert `src` (format `source`) in memory; the CLI and the tests share this path."""
    module = source_module(source)
    return module.convert(read_source(src), Path(src), dict(options or {}))


def write_converted(converted: Converted, dst: str | Path, source: str, src: str | Path) -> Path:
    """Write a weights-only dir_net checkpoint atomically (no file unless complete)."""
    from dir_net.utils.io import torch_save

    payload = {
        "format": FORMAT,
        "model": converted.model_state,
        "config": converted.config,
        "converted_from": {"source": source, "file": Path(src).name, "notes": list(converted.notes)},
    }
    dst = Path(dst)
    torch_save(dst, payload)
    return dst

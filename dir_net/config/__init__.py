"""One config system: YAML files with `_base_` inheritance, checked against `defaults.yaml`.

`defaults.yaml` (beside this file) is the schema: every key that exists, its default and type.
A config file may name one or more `_base_` files (paths relative to itself); they are merged
first, then the file itself, then `key=value` overrides from the command line (values parsed as
YAML). Unknown keys, wrong types and values outside a key's choices are rejected with the key's
dotted name before any work starts.
"""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from dir_net.errors import ConfigError
from dir_net.utils.io import write_text

DEFAULTS_PATH = Path(__file__).with_name("defaults.yaml")

# Keys whose value must be one of a fixed set (dotted key -> allowed values).
CHOICES: dict[str, tuple[Any, ...]] = {
    "model.name": ("dir", "internet", "simple_baseline2d"),
    "model.backbone.name": ("resnet50", "plain"),
    "model.dir.attention": ("official", "paper", "none"),
    "model.dir.stages": (1, 2, 3),
    "model.dir.projection": ("none", "single_plane", "multi_plane_heatmap", "mfp"),
    "model.internet.decode": ("argmax", "soft_argmax"),
    "model.internet.heatmap_px": ("centered", "scaled"),
    "model.internet.nonpositive_peak": ("keep", "invalid"),
    "model.simple_baseline2d.heatmap_px": ("centered", "scaled"),
    "model.simple_baseline2d.offset_border": ("per_axis", "mmpose"),
    "model.simple_baseline2d.nonpositive_peak": ("keep", "invalid"),
    "data.internet.normalize": ("imagenet", "rgb01"),
    "data.internet.crop_center": ("symmetric", "half_size"),
    "data.internet.warp": ("uint8", "float"),
    "data.internet.rootnet_box": ("none", "as_is", "padded"),
    "data.hand2d.normalize": ("imagenet", "rgb01"),
    "data.hand2d.crop_center": ("symmetric", "half_size"),
    "data.hand2d.warp": ("uint8", "float"),
    "data.hand2d.box": ("tight", "mmpose"),
    "data.fps": (5, 30),
    "data.dataset": ("interhand26m", "stb", "rhd"),
    "data.stb_rhd.joint_order": ("auto", "stb", "rhd", "wrist_first"),
    "data.stb_rhd.stb_root": ("palm", "wrist"),
    "data.annot_subset": ("all", "human", "machine"),
    "data.hand_types": ("all", "interacting", "single"),
    "train.device": ("auto", "cuda", "cpu"),
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
    "train.optimizer.name": ("adamw", "adam"),
    "train.schedule.name": ("cosine", "multistep", "constant"),
    "train.best_mode": ("auto", "min", "max"),
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads `1e-4` as a float (YAML 1.1 wants `1.0e-4`) and rejects duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (the second would silently win)", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class Config(dict):
    """A nested dict with attribute access (`cfg.model.name`); values are plain YAML types."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __deepcopy__(self, memo: dict) -> "Config":
        return Config({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def get_path(self, dotted: str) -> Any:
        node: Any = self
        for part in dotted.split("."):
            node = node[part]
        return node

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, Config) else v for k, v in self.items()}

    def dump(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _wrap(obj: Any) -> Any:
    if isinstance(obj, dict):
        return Config({k: _wrap(v) for k, v in obj.items()})
    return obj


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.load(path.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_one_line(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def _one_line(exc: yaml.YAMLError) -> str:
    """'problem at line L, column C' for a YAML error (its str() spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True  # a null default means "optional, any scalar"; null clears a value
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return isinstance(value, type(default))


def _merge(schema: dict, base: dict, update: dict, source: str, prefix: str = "") -> None:
    """Merge `update` into `base` in place, checking every key against `schema`."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(f"{source}: unknown key '{dotted}'{hint}")
        default = schema[key]
        if not _type_ok(default, value):
            raise ConfigError(
                f"{source}: key '{dotted}' expects {type(default).__name__}, "
                f"got {type(value).__name__} ({value!r})"
            )
        if isinstance(default, dict) and default:
            _merge(default, base[key], value, source, dotted + ".")
        else:
            if isinstance(default, float) and isinstance(value, int):
                value = float(value)
            choices = CHOICES.get(dotted)
            if choices is not None and value not in choices:
                raise ConfigError(f"{source}: key '{dotted}' must be one of {list(choices)}, got {value!r}")
            base[key] = copy.deepcopy(value)


def _load_chain(path: Path, schema: dict, merged: dict, seen: tuple[Path, ...]) -> None:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: _base_ cycle through {[str(p) for p in seen]}")
    data = _read_yaml(path)
    bases = data.pop("_base_", [])
    for base in [bases] if isinstance(bases, str) else bases:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: _base_ must be a file name or a list of them, got {base!r}")
        if not (path.parent / base).is_file():
            raise ConfigError(f"{path}: _base_ file '{base}' not found (looked for {path.parent / base}; "
                              "_base_ paths are relative to the file that names them)")
        _load_chain(path.parent / base, schema, merged, seen + (path,))
    _merge(schema, merged, data, str(path))


def parse_overrides(items: Iterable[str]) -> dict:
    """Turn ['a.b=1', 'c=x'] into a nested dict with YAML-parsed values."""
    nested: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override '{item}': expected key=value, e.g. train.epochs=5")
        key, raw = item.split("=", 1)
        try:
            value = yaml.load(raw, Loader=_Loader) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def load_defaults() -> dict:
    return _read_yaml(DEFAULTS_PATH)


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Defaults <- config file chain (`_base_` first) <- `key=value` overrides."""
    schema = load_defaults()
    merged = copy.deepcopy(schema)
    if path is not None:
        _load_chain(Path(path), schema, merged, ())
    _merge(schema, merged, parse_overrides(overrides), "command line")
    return _wrap(merged)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config (atomically) so a run can be reproduced from it alone."""
    write_text(path, cfg.dump())

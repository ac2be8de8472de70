"""The parsed STB / RHD annotations of the official InterNet release, as a columnar index.

Layout (ROOT = data.root, the dataset folder of the official release; docs/STB_RHD.md):
    ROOT/data/STB_{train,test}.json          ROOT/data/images/{seq_name}/{file_name}
    ROOT/data/RHD_{training,evaluation}.json ROOT/data/{training,evaluation}/color/{file_name}
    ROOT/data/skeleton.txt                   (optional: names only, stored in the index meta)
    ROOT/rootnet_output/rootnet_{stb,rhd}_output.json   (optional, read for the test split)
ROOT may also be the `data/` folder itself. Splits: train -> STB_train / RHD_training; test and
val -> STB_test / RHD_evaluation (the official code validates on nothing and tests on those).

Each COCO annotation holds ONE hand: `joint_cam` (21, 3) camera mm, `joint_img` (21, 2) px,
`joint_valid` (21,), `hand_type` 'right' | 'left', `bbox` xywh px; its image has `cam_param`
{focal, princpt}. The hand is converted from the json's joint order (`data.stb_rhd.joint_order`)
to wrist-first and placed in the project's two-hand container (hand axis 0 = right, 1 = left);
the other hand is zero with joint_valid 0.

The index has the columns of `dir_net.data.index` (an identity camera per image, one "frame" of
42 joints per annotation, InterHand2.6M joint order inside the index), so the InterHand2.6M
reader, dataset class, subset filters, `dirnet data verify` and the sample pipelines read it
unchanged.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dir_net.data import index as ih_index
from dir_net.data.jsonstream import iter_items
from dir_net.data.layout import check_split
from dir_net.data.stb_rhd.joints import check_stb_root, flags_to_wrist_first, hand_to_wrist_first, resolve_order
from dir_net.errors import ConfigError, DataError
from mano.joints import INTERHAND_ROOTS, hands_to_interhand

log = logging.getLogger(__name__)

DATASETS = ("stb", "rhd")
FILE_SPLIT = {  # (dataset, project split) -> the name part of the official json
    ("stb", "train"): "train", ("stb", "val"): "test", ("stb", "test"): "test",
    ("rhd", "train"): "training", ("rhd", "val"): "evaluation", ("rhd", "test"): "evaluation",
}
HAND_SLOT = {"right": 0, "left": 1}  # hand axis of the project's container
JOINT_IMG_TOLERANCE_PX = 2.0  # joint_img further than this from the projection of joint_cam is counted
INDEX_FORMAT = 2  # bump when the columns written here change


def json_name(dataset: str, file_split: str) -> str:
    return f"{dataset.upper()}_{file_split}.json"


def rootnet_name(dataset: str) -> str:
    return f"rootnet_{dataset}_output.json"


@dataclass(frozen=True)
class ParsedFiles:
    """The files of one split of a parsed STB / RHD release."""

    dataset: str  # stb | rhd
    split: str  # project split (train | val | test)
    data: Path  # STB_{train,test}.json / RHD_{training,evaluation}.json
    image_dir: Path  # an index file name (see `_file_name`) is relative to this folder
    rootnet: Path | None = None
    skeleton: Path | None = None
    layout: str = "parsed"

    @property
    def root(self) -> Path:
        """The dataset folder (parent of data/), where dirnet_cache/ goes."""
        base = self.data.parent
        return base.parent if base.name == "data" else base

    def sources(self) -> dict[str, Path]:
        roles = {"data": self.data}
        if self.rootnet is not None:
            roles["rootnet"] = self.rootnet
        if self.skeleton is not None:
            roles["skeleton"] = self.skeleton
        return roles


def check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ConfigError(f"key 'data.dataset' must be interhand26m or one of {list(DATASETS)}, got {dataset!r}")
    return dataset


def locate(root: str | Path, dataset: str, split: str) -> ParsedFiles:
    """The files of `split` under a parsed STB / RHD root (ROOT/data/... or ROOT itself = data/)."""
    check_dataset(dataset)
    check_split(split)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data root not found; set data.root, or make a synthetic set with "
                        f"`dirnet data synth --dataset {dataset} {root}`")
    file_split = FILE_SPLIT[(dataset, split)]
    name = json_name(dataset, file_split)
    candidates = [root / "data" / name, root / name]
    data = next((c for c in candidates if c.is_file()), None)
    if data is None:
        raise DataError(f"{root}: {name} not found (looked in {candidates[0].parent} and {root}); point data.root "
                        f"at the {dataset.upper()} folder of the InterNet release, or convert the original release "
                        f"with `dirnet data convert-{dataset}`")
    base = data.parent
    image_dir = base / "images" if dataset == "stb" else base / file_split / "color"
    dsroot = base.parent if base.name == "data" else base
    rootnet = dsroot / "rootnet_output" / rootnet_name(dataset)
    skeleton = base / "skeleton.txt"
    return ParsedFiles(
        dataset=dataset, split=split, data=data, image_dir=image_dir,
        rootnet=rootnet if file_split in ("test", "evaluation") and rootnet.is_file() else None,
        skeleton=skeleton if skeleton.is_file() else None,
    )


# -- reading the json -------------------------------------------------------------------------------
def _array(entry: dict, name: str, shape: tuple[int, ...], path: Path, what: str) -> np.ndarray:
    """Field `name` of one json object as float64 of `shape`, or a DataError naming it."""
    ident = entry.get("id", "?")
    if name not in entry:
        raise DataError(f"{path}: {what} id {ident}: field '{name}' missing")
    try:
        a = np.asarray(entry[name], np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: {what} id {ident}: field '{name}' is not numeric") from None
    if a.size != int(np.prod(shape)):
        expected = "x".join(str(s) for s in shape)
        raise DataError(f"{path}: {what} id {ident}: field '{name}' must hold {expected} values (21 joints per hand), "
                        f"got shape {list(a.shape)}")
    return a.reshape(shape)


def _int(entry: dict, name: str, path: Path, what: str) -> int:
    try:
        return int(entry[name])
    except KeyError:
        raise DataError(f"{path}: {what} id {entry.get('id', '?')}: field '{name}' missing") from None
    except (TypeError, ValueError):
        raise DataError(f"{path}: {what} id {entry.get('id', '?')}: field '{name}' is not an integer "
                        f"({entry[name]!r})") from None


@dataclass
class _Image:
    file_name: str  # relative to ParsedFiles.image_dir
    size: tuple[int, int]  # width, height px
    focal: np.ndarray  # (2,) px
    princpt: np.ndarray  # (2,) px


def _image(entry: dict, dataset: str, path: Path) -> _Image:
    file_name = entry.get("file_name")
    if not isinstance(file_name, str) or not file_name:
        raise DataError(f"{path}: image id {entry.get('id', '?')}: field 'file_name' missing or not a string")
    if dataset == "stb":
        seq = entry.get("seq_name")
        if not isinstance(seq, str) or not seq:
            raise DataError(f"{path}: image id {entry.get('id', '?')}: field 'seq_name' missing (STB images live in "
                            "images/{seq_name}/{file_name})")
        file_name = f"{seq}/{file_name}"
    cam = entry.get("cam_param")
    if not isinstance(cam, dict):
        raise DataError(f"{path}: image id {entry.get('id', '?')}: field 'cam_param' ({{focal, princpt}} px) missing")
    cam = {**cam, "id": entry.get("id", "?")}
    return _Image(
        file_name=file_name,
        size=(_int(entry, "width", path, "image"), _int(entry, "height", path, "image")),
        focal=_array(cam, "focal", (2,), path, "image (cam_param)"),
        princpt=_array(cam, "princpt", (2,), path, "image (cam_param)"),
    )


@dataclass
class _Hand:
    ann_id: int
    image_id: int
    hand_type: str
    bbox: np.ndarray  # (4,) xywh px
    joint_cam: np.ndarray  # (21, 3) mm, json order
    joint_img: np.ndarray  # (21, 2) px, json order
    joint_valid: np.ndarray  # (21,) json order


def _hand(entry: dict, path: Path) -> _Hand:
    hand_type = entry.get("hand_type")
    if hand_type not in HAND_SLOT:
        raise DataError(f"{path}: annotation id {entry.get('id', '?')}: field 'hand_type' must be 'right' or 'left' "
                        f"(one hand per annotation), got {hand_type!r}")
    return _Hand(
        ann_id=_int(entry, "id", path, "annotation"),
        image_id=_int(entry, "image_id", path, "annotation"),
        hand_type=hand_type,
        bbox=_array(entry, "bbox", (4,), path, "annotation"),
        joint_cam=_array(entry, "joint_cam", (21, 3), path, "annotation"),
        joint_img=_array(entry, "joint_img", (21, 2), path, "annotation"),
        joint_valid=_array(entry, "joint_valid", (21,), path, "annotation"),
    )


def read_parsed(path: Path, dataset: str) -> tuple[dict[int, _Image], list[_Hand]]:
    """images by id and the annotations (file order) of a parsed STB / RHD json."""
    images: dict[int, _Image] = {}
    hands: list[_Hand] = []
    for keys, value in iter_items(path, 2):
        if len(keys) != 2 or keys[0] not in ("images", "annotations"):
            continue
        if not isinstance(value, dict):
            raise DataError(f"{path}: {keys[0]}[{keys[1]}] is not a JSON object")
        if keys[0] == "images":
            images[_int(value, "id", path, "image")] = _image(value, dataset, path)
        else:
            hands.append(_hand(value, path))
    if not hands:
        raise DataError(f"{path}: no annotations (expected a COCO json with 'images' and 'annotations' lists)")
    return images, hands


def read_skeleton(path: Path) -> list[str]:
    """The 42 joint names of skeleton.txt ('name index parent' lines, '#' comments; left block first)."""
    names: dict[int, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        try:
            names[int(parts[1])] = parts[0]
            int(parts[2])
        except (IndexError, ValueError):
            raise DataError(f"{path}:{n}: expected 'name index parent', got {line!r}") from None
    if sorted(names) != list(range(42)):
        raise DataError(f"{path}: expected 42 joints with indices 0-41 (left hand first), got {len(names)}")
    return [names[i] for i in range(42)]


# -- index -------------------------------------------------------------------------------------------
def _container(hand: _Hand, order: str, stb_root: str) -> tuple[np.ndarray, np.ndarray]:
    """(42, 3) mm and (42,) validity in the index's InterHand2.6M order (right hand first).

    The absent hand gets a copy of the present one's joints with valid 0 (the official loader
    zero-fills it; a copy keeps every projection finite, and valid 0 keeps it out of losses and scores)."""
    valid = np.zeros((2, 21))
    slot = HAND_SLOT[hand.hand_type]
    joints = np.repeat(hand_to_wrist_first(hand.joint_cam, order, stb_root)[None], 2, axis=0)
    valid[slot] = flags_to_wrist_first((hand.joint_valid > 0).astype(np.float64), order, stb_root)
    return hands_to_interhand(joints), hands_to_interhand(valid, joint_axis=-1)


def _tables(files: ParsedFiles, order: str, stb_root: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    images, hands = read_parsed(files.data, files.dataset)
    hands.sort(key=lambda h: h.ann_id)
    ids = np.array([h.ann_id for h in hands], np.int64)
    if len(np.unique(ids)) != len(ids):
        dup = int(ids[1:][ids[1:] == ids[:-1]][0])
        raise DataError(f"{files.data}: annotation id {dup} appears more than once; ids must be unique")
    image_ids = sorted(images)
    image_row_of = {img_id: r for r, img_id in enumerate(image_ids)}
    missing = [h.ann_id for h in hands if h.image_id not in image_row_of]
    if missing:
        raise DataError(f"{files.data}: annotation id {missing[0]}: field 'image_id' names no image "
                        f"({len(missing)} annotations affected)")
    n = len(hands)
    world = np.zeros((n, 42, 3), np.float32)
    valid = np.zeros((n, 42), np.uint8)
    mismatch = 0
    for i, h in enumerate(hands):
        joints, flags = _container(h, order, stb_root)
        world[i], valid[i] = joints, flags > 0
        img = images[h.image_id]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = h.joint_cam[:, :2] / h.joint_cam[:, 2:] * img.focal + img.princpt
        mismatch += int(np.nanmax(np.abs(uv - h.joint_img), initial=0.0) > JOINT_IMG_TOLERANCE_PX)
    image_row = np.array([image_row_of[h.image_id] for h in hands], np.int32)
    blobs = [images[i].file_name.encode("utf-8") for i in image_ids]
    offsets = np.zeros(len(blobs) + 1, np.int64)
    np.cumsum([len(b) for b in blobs], out=offsets[1:])
    bbox = np.array([h.bbox for h in hands], np.float32).reshape(n, 4)
    nonfinite = ~np.isfinite(world).all(axis=(1, 2)) | ~np.isfinite(bbox).all(1)
    m = len(image_ids)
    tables = {
        # samples
        "ann_id": ids, "image_row": image_row, "cam_row": image_row.copy(),
        "frame_row": np.arange(n, dtype=np.int32), "mano_row": np.full(n, -1, np.int32), "bbox": bbox,
        "joint_valid": valid, "hand_type": np.array([HAND_SLOT[h.hand_type] for h in hands], np.int8),
        "hand_type_valid": np.ones(n, np.uint8), "nonfinite": nonfinite.astype(np.uint8),
        # images
        "img_id": np.array(image_ids, np.int64), "img_capture": np.zeros(m, np.int32),
        "img_frame": np.zeros(m, np.int32), "img_subject": np.full(m, -1, np.int32),
        "img_size": np.array([images[i].size for i in image_ids], np.int32).reshape(m, 2),
        "img_camera": np.zeros(m, np.int32), "img_path_offsets": offsets,
        "img_path_blob": np.frombuffer(b"".join(blobs), np.uint8),
        # one "frame" of joints per annotation (camera frame = world frame: identity cameras)
        "frame_key": np.arange(n, dtype=np.int64), "world": world, "frame_valid": np.ones((n, 42), np.uint8),
        "cam_key": np.arange(m, dtype=np.int64), "cam_R": np.tile(np.eye(3), (m, 1, 1)),
        "cam_pos": np.zeros((m, 3)), "cam_focal": np.array([images[i].focal for i in image_ids]).reshape(m, 2),
        "cam_princpt": np.array([images[i].princpt for i in image_ids]).reshape(m, 2),
    }
    counts = {"annotations": n, "images": m, "right_hands": int((tables["hand_type"] == 0).sum()),
              "left_hands": int((tables["hand_type"] == 1).sum()), "joint_img_mismatch": mismatch,
              "nonfinite": int(nonfinite.sum()), "invalid_joints": int(21 * n - valid.sum())}
    return tables, counts


def build_parsed_index(files: ParsedFiles, out_dir: Path, order: str, stb_root: str) -> Path:
    signature = ih_index.source_signature(files)
    tables, counts = _tables(files, order, stb_root)
    if files.rootnet is not None:
        tables.update(ih_index._read_rootnet(files.rootnet, tables["ann_id"]))
    meta = {
        "version": ih_index.INDEX_VERSION, "format": f"stb_rhd-{INDEX_FORMAT}", "dataset": files.dataset,
        "split": files.split, "layout": files.layout, "image_dir": str(files.image_dir.resolve()),
        "sources": signature, "joint_order": order, "stb_root": stb_root,
        "skeleton_names": read_skeleton(files.skeleton) if files.skeleton is not None else None,
        "num_samples": counts["annotations"], "num_images": counts["images"], "num_frames": counts["annotations"],
        "num_mano_frames": 0, "has_mano": False, "has_rootnet": files.rootnet is not None,
        "camera_names": ["camera"], "counts": counts,
    }
    ih_index._write_dir(out_dir, tables, meta)
    return out_dir


def cache_root(files: ParsedFiles, cache_dir: str | Path | None) -> Path:
    if cache_dir:
        return Path(cache_dir)
    candidate = files.root / "dirnet_cache"
    if os.access(candidate if candidate.exists() else files.root, os.W_OK):
        return candidate
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "dirnet" / hashlib.sha1(str(files.root.resolve()).encode()).hexdigest()[:12]


def index_dir_for(files: ParsedFiles, cache_dir: str | Path | None, order: str, stb_root: str) -> Path:
    key = f"{files.data.resolve()}|{order}|{stb_root}|{INDEX_FORMAT}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return cache_root(files, cache_dir) / "index" / f"{files.dataset}-{files.split}-{digest}"


def open_parsed_index(files: ParsedFiles, cache_dir: str | Path | None = None, joint_order: str = "auto",
                      stb_root: str = "palm", rebuild: bool = False) -> ih_index.InterHandIndex:
    """The split's index, (re)built when missing, stale (a source changed) or `rebuild`."""
    order = resolve_order(files.dataset, joint_order)
    stb_root = check_stb_root(stb_root)
    directory = index_dir_for(files, cache_dir, order, stb_root)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.with_name(directory.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if rebuild or not ih_index.index_is_current(directory, files):
            log.info("building the %s %s index from %s into %s", files.dataset, files.split, files.data, directory)
            build_parsed_index(files, directory, order, stb_root)
    return ih_index.InterHandIndex(directory)


def open_from_config(cfg: Any, split: str, root: str | Path | None = None, rebuild: bool = False
                     ) -> ih_index.InterHandIndex:
    files = locate(root or cfg.data.root, cfg.data.dataset, split)
    s = cfg.data.stb_rhd
    return open_parsed_index(files, cfg.data.cache_dir, s.joint_order, s.stb_root, rebuild=rebuild)


def build_stb_rhd_dataset(cfg: Any, split: str, train: bool) -> Any:
    """The STB / RHD dataset of `split` through the InterHand2.6M dataset class and `data.pipeline`."""
    from dir_net.data.dataset import InterHandDataset
    from dir_net.data.pipelines import build_pipeline
    from dir_net.data.subsets import select_rows

    if cfg.data.pipeline == "dir":
        raise ConfigError(f"key 'data.pipeline': the dir pipeline needs MANO fits, which {cfg.data.dataset.upper()} "
                          "does not have; use model.name=internet (data.pipeline=internet)")
    index = open_from_config(cfg, split)
    rows = select_rows(index, cfg.data)
    pipeline = build_pipeline(cfg, train)
    make_dataset = getattr(pipeline, "make_dataset", None)
    return make_dataset(index, rows) if make_dataset else InterHandDataset(index, rows, pipeline)


# -- root depths for the InterNet model ------------------------------------------------------------------
ROOT_DEPTH_SOURCES = ("gt", "rootnet")


def root_depth_entries(index: ih_index.InterHandIndex, source: str = "gt") -> list[dict[str, Any]]:
    """Entries for `model.internet.rootnet_file` ({annot_id, bbox, abs_depth [right, left] mm,
    root_valid}) giving the scored hand the official STB / RHD absolute depth: `gt` = the z of the
    hand's root whatever its valid flag (official trans_test='gt'; the model's own GT fallback skips
    an invalid root), with the padded GT box; `rootnet` = the release's scalar RootNet depth and box."""
    if source not in ROOT_DEPTH_SOURCES:
        raise DataError(f"--source must be one of {list(ROOT_DEPTH_SOURCES)}, got {source!r}")
    ann_ids = np.asarray(index.col("ann_id"))
    if source == "rootnet":
        if not index.meta.get("has_rootnet"):
            raise DataError(f"{index.dir}: the {index.meta['split']} split has no RootNet output (rootnet_output/"
                            f"rootnet_{index.meta.get('dataset', '?')}_output.json, read for the test split only)")
        depth = np.asarray(index.col("rootnet_depth"))[:, 0]
        boxes = np.asarray(index.col("rootnet_bbox"), np.float64)
    else:
        roots = np.asarray(INTERHAND_ROOTS)[np.asarray(index.col("hand_type")).astype(np.int64)]
        depth = np.asarray(index.col("world"))[np.arange(len(ann_ids)), roots, 2]
        bbox = np.asarray(index.col("bbox"), np.float64)
        side = bbox[:, 2:].max(1) * 1.25
        centre = bbox[:, :2] + bbox[:, 2:] / 2
        boxes = np.concatenate([centre - side[:, None] / 2, side[:, None], side[:, None]], 1)
    return [{"annot_id": int(a), "bbox": [float(v) for v in b], "abs_depth": [float(d), float(d)], "root_valid": 1}
            for a, b, d in zip(ann_ids, boxes, depth)]


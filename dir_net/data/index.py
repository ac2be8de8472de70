"""Compact columnar index of one InterHand2.6M split.

`build_index` converts the JSON files once into a directory of .npy files (one per column), streaming
the big files so peak memory stays bounded (no dict per sample is ever held for the whole split).
`open_index` rebuilds it when a source file changed (sizes and mtimes are stored in meta.json) and
returns an `InterHandIndex`, whose columns are memory-mapped read-only, so every dataloader worker
shares the page cache instead of copying per-sample Python objects.

Tables (row counts N samples, I images, F joint_3d frames, M MANO frames, C cameras):
  samples (sorted by annotation id): ann_id, image_row, cam_row, frame_row (-1: no joint_3d entry),
    mano_row (-1: no MANO frame), bbox (N, 4) px xywh, joint_valid (N, 42) InterHand order,
    hand_type (0 right, 1 left, 2 interacting, -1 unknown), hand_type_valid, nonfinite,
    optional RootNet: rootnet_depth (N, 2) mm [right, left], rootnet_bbox (N, 4), rootnet_valid.
  images: img_id, img_capture, img_frame, img_subject, img_size (I, 2) width/height,
    img_camera (code into meta["camera_names"]), file names as one byte blob + offsets.
  frames: frame_key (capture << 32 | frame_idx, sorted), world (F, 42, 3) mm, frame_valid (F, 42).
  mano: mano_key (sorted), mano_pose (M, 2, 48), mano_shape (M, 2, 10), mano_trans (M, 2, 3) m,
    mano_present (M, 2) [right, left].
  cameras: cam_key (capture << 32 | camera code), cam_R (C, 3, 3), cam_pos (C, 3) mm,
    cam_focal (C, 2), cam_princpt (C, 2).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from dir_net.data.camera import Camera
from dir_net.data.jsonstream import iter_items, load_small
from dir_net.data.layout import SplitFiles
from dir_net.errors import DataError
from dir_net.utils.io import write_json

log = logging.getLogger(__name__)

INDEX_VERSION = 1
HAND_TYPES = ("right", "left", "interacting")
HAND_TYPE_CODE = {name: i for i, name in enumerate(HAND_TYPES)}
CHUNK = 16384  # JSON values converted to numpy at a time
QUALITY_FILE = "quality.npy"  # per-sample image status written by `dirnet data verify/prepare`
QUALITY_OK, QUALITY_MISSING, QUALITY_UNREADABLE, QUALITY_BLACK = 0, 1, 2, 3
QUALITY_NAMES = ("ok", "missing", "unreadable", "black")


def frame_key(capture: Any, frame: Any) -> np.ndarray:
    """int64 key of (capture, frame_idx) or (capture, camera code)."""
    return (np.asarray(capture, np.int64) << 32) | np.asarray(frame, np.int64)


class _Columns:
    """Numpy chunks per column, concatenated at the end (bounded overhead per value)."""

    def __init__(self) -> None:
        self.chunks: dict[str, list[np.ndarray]] = {}

    def add(self, **arrays: np.ndarray) -> None:
        for name, a in arrays.items():
            self.chunks.setdefault(name, []).append(a)

    def get(self, name: str, empty: np.ndarray) -> np.ndarray:
        parts = self.chunks.pop(name, [])
        return np.concatenate(parts) if parts else empty


def _chunked(items: Iterable[Any], size: int = CHUNK) -> Iterable[list]:
    buf: list = []
    for item in items:
        buf.append(item)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _field(entries: list[dict], name: str, path: Path, what: str, dtype: Any, default: Any = None) -> np.ndarray:
    """Column `name` of a list of JSON objects, with a DataError naming the first bad entry."""
    try:
        values = [e[name] if default is None else e.get(name, default) for e in entries]
        return np.asarray(values, dtype=dtype)
    except (KeyError, TypeError, ValueError):
        for e in entries:
            v = e.get(name, default) if isinstance(e, dict) else None
            try:
                np.asarray(v, dtype=dtype)
                ok = v is not None
            except (TypeError, ValueError):
                ok = False
            if not ok:
                ident = e.get("id", "?") if isinstance(e, dict) else "?"
                raise DataError(f"{path}: {what} id {ident}: field '{name}' missing or malformed ({v!r})") from None
        raise DataError(f"{path}: {what}s: field '{name}' has different shapes in different entries") from None


def _int_key(key: str, path: Path, what: str) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        raise DataError(f"{path}: {what} key {key!r} is not an integer") from None


# -- data.json -----------------------------------------------------------------------------------
class _ImageTable:
    def __init__(self) -> None:
        self.cols = _Columns()
        self.blob = bytearray()
        self.camera_codes: dict[str, int] = {}

    def add(self, entries: list[dict], path: Path) -> None:
        names = [str(e.get("camera")) for e in entries]
        codes = [self.camera_codes.setdefault(n, len(self.camera_codes)) for n in names]
        files = [str(e.get("file_name", "")).encode("utf-8") for e in entries]
        for e, f in zip(entries, files):
            if not f or e.get("camera") is None:
                raise DataError(f"{path}: image id {e.get('id', '?')}: field 'file_name' or 'camera' missing")
            self.blob += f
        self.cols.add(
            img_id=_field(entries, "id", path, "image", np.int64),
            img_capture=_field(entries, "capture", path, "image", np.int32),
            img_frame=_field(entries, "frame_idx", path, "image", np.int32),
            img_subject=_field(entries, "subject", path, "image", np.int32, default=-1),
            img_size=np.stack([_field(entries, "width", path, "image", np.int32, default=0),
                               _field(entries, "height", path, "image", np.int32, default=0)], 1),
            img_camera=np.asarray(codes, np.int32),
            img_path_len=np.asarray([len(f) for f in files], np.int64),
        )


def _annotation_chunk(entries: list[dict], path: Path) -> dict[str, np.ndarray]:
    n = len(entries)
    valid = _field(entries, "joint_valid", path, "annotation", np.float32)
    if valid.size != n * 42:
        raise DataError(f"{path}: annotations: field 'joint_valid' must hold 42 values per annotation, "
                        f"got shape {valid.shape[1:]}")
    bbox = np.full((n, 4), np.nan, np.float32)
    for k, e in enumerate(entries):
        b = e.get("bbox")
        if b is not None and len(b) == 4:
            bbox[k] = [np.nan if v is None else v for v in b]
    hand_type = np.asarray([HAND_TYPE_CODE.get(e.get("hand_type"), -1) for e in entries], np.int8)
    return dict(
        ann_id=_field(entries, "id", path, "annotation", np.int64),
        ann_image_id=_field(entries, "image_id", path, "annotation", np.int64),
        bbox=bbox,
        joint_valid=(valid.reshape(n, 42) > 0).astype(np.uint8),
        hand_type=hand_type,
        hand_type_valid=np.asarray([bool(e.get("hand_type_valid", 0)) for e in entries], np.uint8),
    )


def _read_data_json(path: Path) -> tuple[_ImageTable, _Columns]:
    images, anns = _ImageTable(), _Columns()
    img_buf: list[dict] = []
    ann_buf: list[dict] = []
    for keys, value in iter_items(path, 2):
        if len(keys) != 2 or keys[0] not in ("images", "annotations") or not isinstance(value, dict):
            continue
        buf = img_buf if keys[0] == "images" else ann_buf
        buf.append(value)
        if len(img_buf) >= CHUNK:
            images.add(img_buf, path)
            img_buf = []
        if len(ann_buf) >= CHUNK:
            anns.add(**_annotation_chunk(ann_buf, path))
            ann_buf = []
    if img_buf:
        images.add(img_buf, path)
    if ann_buf:
        anns.add(**_annotation_chunk(ann_buf, path))
    return images, anns


# -- joint_3d.json / MANO_NeuralAnnot.json -----------------------------------------------------------
def _read_joint_3d(path: Path) -> dict[str, np.ndarray]:
    cols = _Columns()
    for chunk in _chunked(iter_items(path, 2)):
        chunk = [(k, v) for k, v in chunk if len(k) == 2 and isinstance(v, dict)]
        if not chunk:
            continue
        keys = frame_key([_int_key(k[0], path, "capture") for k, _ in chunk],
                         [_int_key(k[1], path, "frame") for k, _ in chunk])
        world = np.empty((len(chunk), 42, 3), np.float32)
        valid = np.zeros((len(chunk), 42), np.uint8)
        for i, ((cap, frame), v) in enumerate(chunk):
            try:
                world[i] = np.asarray(v["world_coord"], np.float32).reshape(42, 3)
                valid[i] = np.asarray(v.get("joint_valid", np.ones(42)), np.float32).reshape(42) > 0
            except (KeyError, TypeError, ValueError):
                raise DataError(
                    f"{path}: capture {cap} frame {frame}: field 'world_coord' (42x3 mm) or 'joint_valid' "
                    "missing or malformed"
                ) from None
        cols.add(frame_key=keys, world=world, frame_valid=valid)
    shapes = {"world": (42, 3), "frame_valid": (42,)}
    return _sorted_by_key(cols, "frame_key", shapes, {"world": np.float32, "frame_valid": np.uint8})


def _mano_hand(v: Any, path: Path, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    if v is None:
        return None
    try:
        pose = np.asarray(v["pose"], np.float32).reshape(48)
        shape = np.asarray(v["shape"], np.float32).reshape(10)
        trans = np.asarray(v["trans"], np.float32).reshape(3)
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: {where}: fields 'pose' (48), 'shape' (10), 'trans' (3) missing or "
                        "malformed") from None
    return pose, shape, trans


def _read_mano(path: Path) -> dict[str, np.ndarray]:
    cols = _Columns()
    for chunk in _chunked(iter_items(path, 2)):
        chunk = [(k, v) for k, v in chunk if len(k) == 2]
        if not chunk:
            continue
        n = len(chunk)
        pose, shape = np.zeros((n, 2, 48), np.float32), np.zeros((n, 2, 10), np.float32)
        trans, present = np.zeros((n, 2, 3), np.float32), np.zeros((n, 2), np.uint8)
        for i, ((cap, frame), v) in enumerate(chunk):
            for h, hand in enumerate(("right", "left")):
                fit = _mano_hand((v or {}).get(hand), path, f"capture {cap} frame {frame} {hand}")
                if fit is not None:
                    pose[i, h], shape[i, h], trans[i, h] = fit
                    present[i, h] = 1
        keys = frame_key([_int_key(k[0], path, "capture") for k, _ in chunk],
                         [_int_key(k[1], path, "frame") for k, _ in chunk])
        cols.add(mano_key=keys, mano_pose=pose, mano_shape=shape, mano_trans=trans, mano_present=present)
    shapes = {"mano_pose": (2, 48), "mano_shape": (2, 10), "mano_trans": (2, 3), "mano_present": (2,)}
    dtypes = {k: (np.uint8 if k == "mano_present" else np.float32) for k in shapes}
    return _sorted_by_key(cols, "mano_key", shapes, dtypes)


def _sorted_by_key(cols: _Columns, key: str, shapes: dict, dtypes: dict) -> dict[str, np.ndarray]:
    keys = cols.get(key, np.zeros(0, np.int64))
    order = np.argsort(keys, kind="stable")
    out = {key: keys[order]}
    for name, shape in shapes.items():
        out[name] = cols.get(name, np.zeros((0,) + shape, dtypes[name]))[order]
    return out


# -- camera.json -------------------------------------------------------------------------------------
def _read_cameras(path: Path, camera_codes: dict[str, int]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Camera table; cameras not named in data.json get new codes (names list returned)."""
    raw = load_small(path)
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected {{capture: {{campos|camrot|focal|princpt: {{camera: value}}}}}}")
    keys, R, pos, focal, princpt = [], [], [], [], []
    for cap, params in raw.items():
        capture = _int_key(cap, path, "capture")
        missing = [f for f in ("campos", "camrot", "focal", "princpt") if f not in (params or {})]
        if missing:
            raise DataError(f"{path}: capture {cap}: fields {missing} missing")
        for cam in params["campos"]:
            code = camera_codes.setdefault(str(cam), len(camera_codes))
            values = []
            for fname, shape in (("camrot", (3, 3)), ("campos", (3,)), ("focal", (2,)), ("princpt", (2,))):
                try:
                    a = np.asarray(params[fname][cam], np.float64).reshape(shape)
                except (KeyError, TypeError, ValueError):
                    raise DataError(
                        f"{path}: capture {cap} camera {cam}: field '{fname}' missing or malformed") from None
                if not np.isfinite(a).all():
                    raise DataError(f"{path}: capture {cap} camera {cam}: field '{fname}' has non-finite values")
                values.append(a)
            keys.append(int(frame_key(capture, code)))
            for column, value in zip((R, pos, focal, princpt), values):
                column.append(value)
    order = np.argsort(np.asarray(keys, np.int64), kind="stable")
    table = {
        "cam_key": np.asarray(keys, np.int64).reshape(-1)[order],
        "cam_R": np.asarray(R, np.float64).reshape(-1, 3, 3)[order],
        "cam_pos": np.asarray(pos, np.float64).reshape(-1, 3)[order],
        "cam_focal": np.asarray(focal, np.float64).reshape(-1, 2)[order],
        "cam_princpt": np.asarray(princpt, np.float64).reshape(-1, 2)[order],
    }
    names = sorted(camera_codes, key=camera_codes.get)
    return table, names


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Row of each key in sorted_keys, -1 where absent."""
    if len(sorted_keys) == 0:
        return np.full(len(keys), -1, np.int64)
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == keys, pos, -1)


# -- RootNet -----------------------------------------------------------------------------------------
def _read_rootnet(path: Path, ann_ids: np.ndarray) -> dict[str, np.ndarray]:
    n = len(ann_ids)
    depth = np.zeros((n, 2), np.float32)
    bbox = np.zeros((n, 4), np.float32)
    valid = np.zeros(n, np.float32)
    for chunk in _chunked(iter_items(path, 1)):
        entries = [v for _, v in chunk if isinstance(v, dict)]
        ids = _field(entries, "annot_id", path, "RootNet entry", np.int64)
        rows = _lookup(ann_ids, ids)
        keep = rows >= 0
        d = _field(entries, "abs_depth", path, "RootNet entry", np.float32).reshape(len(entries), -1)
        if d.shape[1] == 1:  # single-value depth: the same for both hands
            d = np.repeat(d, 2, axis=1)
        depth[rows[keep]] = d[keep, :2]
        bbox[rows[keep]] = _field(entries, "bbox", path, "RootNet entry", np.float32).reshape(-1, 4)[keep]
        rv = np.asarray([np.mean(e.get("root_valid", 1)) for e in entries], np.float32)
        valid[rows[keep]] = rv[keep]
    return {"rootnet_depth": depth, "rootnet_bbox": bbox, "rootnet_valid": valid}


# -- build -------------------------------------------------------------------------------------------
def source_signature(files: SplitFiles) -> dict[str, dict]:
    sig = {}
    for role, p in files.sources().items():
        st = p.stat()
        sig[role] = {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return sig


def _join_samples(images: _ImageTable, anns: _Columns, counts: dict) -> tuple[dict, dict]:
    """Samples (sorted by annotation id) joined with their image rows on image_id."""
    img_id = images.cols.get("img_id", np.zeros(0, np.int64))
    img_names = ("img_capture", "img_frame", "img_subject", "img_size", "img_camera", "img_path_len")
    img_cols = {k: images.cols.get(k, np.zeros(0)) for k in img_names}
    img_order = np.argsort(img_id, kind="stable")
    counts["duplicate_image_ids"] = int(len(img_id) - len(np.unique(img_id)))
    ann_names = ("ann_id", "ann_image_id", "bbox", "joint_valid", "hand_type", "hand_type_valid")
    ann = {k: anns.get(k, np.zeros(0)) for k in ann_names}
    order = np.argsort(ann["ann_id"], kind="stable")
    ann = {k: v[order] for k, v in ann.items()}
    dup = np.zeros(len(order), bool)
    dup[1:] = ann["ann_id"][1:] == ann["ann_id"][:-1]
    counts["duplicate_annotation_ids"] = int(dup.sum())
    image_row = _lookup(img_id[img_order], ann["ann_image_id"])
    image_row = np.where(image_row >= 0, img_order[np.maximum(image_row, 0)], -1)
    no_image = image_row < 0
    counts["annotations_without_image"] = int(no_image.sum())
    keep = ~dup & ~no_image
    samples = {k: v[keep] for k, v in ann.items() if k != "ann_image_id"}
    samples["image_row"] = image_row[keep].astype(np.int32)
    offsets = np.zeros(len(img_id) + 1, np.int64)
    np.cumsum(img_cols.pop("img_path_len"), out=offsets[1:])
    image_table = {"img_id": img_id, **img_cols, "img_path_offsets": offsets,
                   "img_path_blob": np.frombuffer(bytes(images.blob), np.uint8)}
    return samples, image_table


def _attach(samples: dict, image_table: dict, frames: dict, mano: dict | None, cams: dict,
            camera_names: list[str], files: SplitFiles, counts: dict) -> None:
    rows = samples["image_row"]
    capture = image_table["img_capture"][rows]
    frame = image_table["img_frame"][rows]
    key = frame_key(capture, frame)
    samples["frame_row"] = _lookup(frames["frame_key"], key).astype(np.int32)
    counts["samples_without_joint_3d"] = int((samples["frame_row"] < 0).sum())
    if mano is not None:
        samples["mano_row"] = _lookup(mano["mano_key"], key).astype(np.int32)
        counts["samples_without_mano_frame"] = int((samples["mano_row"] < 0).sum())
    else:
        samples["mano_row"] = np.full(len(rows), -1, np.int32)
    cam_row = _lookup(cams["cam_key"], frame_key(capture, image_table["img_camera"][rows]))
    if (cam_row < 0).any():
        bad = int(np.flatnonzero(cam_row < 0)[0])
        name = camera_names[image_table["img_camera"][rows][bad]]
        raise DataError(
            f"{files.camera}: no parameters for capture {capture[bad]} camera {name} (annotation id "
            f"{samples['ann_id'][bad]}; {(cam_row < 0).sum()} samples affected); the camera file does "
            "not match data.json"
        )
    samples["cam_row"] = cam_row.astype(np.int32)
    world_ok = np.isfinite(frames["world"]).all(axis=(1, 2))
    frame_rows = samples["frame_row"]
    frame_bad = (frame_rows >= 0) & ~world_ok[np.maximum(frame_rows, 0)] if len(world_ok) else np.zeros(len(rows), bool)
    bbox_bad = ~np.isfinite(samples["bbox"]).all(1)
    samples["nonfinite"] = (frame_bad | bbox_bad).astype(np.uint8)
    counts["nonfinite_world_coord"] = int(frame_bad.sum())
    counts["nonfinite_bbox"] = int(bbox_bad.sum())


def _drop_nonfinite_mano(mano: dict, counts: dict) -> None:
    ok = np.ones(mano["mano_present"].shape, bool)
    for name in ("mano_pose", "mano_shape", "mano_trans"):
        ok &= np.isfinite(mano[name]).all(-1)
    bad = (mano["mano_present"] > 0) & ~ok
    counts["nonfinite_mano_hands"] = int(bad.sum())
    mano["mano_present"][bad] = 0


def build_index(files: SplitFiles, out_dir: str | Path) -> Path:
    """Convert the split's JSON files into `out_dir` (built in a temporary folder, then renamed)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    signature = source_signature(files)
    counts: dict[str, int] = {}
    images, anns = _read_data_json(files.data)
    samples, image_table = _join_samples(images, anns, counts)
    if len(samples["ann_id"]) == 0:
        raise DataError(f"{files.data}: no annotation joins an image ('images' and 'annotations' are empty or "
                        "their image_id fields do not match); check that this is the split's data.json")
    frames = _read_joint_3d(files.joint_3d)
    mano = _read_mano(files.mano) if files.mano is not None else None
    if mano is not None:
        _drop_nonfinite_mano(mano, counts)
    cams, camera_names = _read_cameras(files.camera, images.camera_codes)
    _attach(samples, image_table, frames, mano, cams, camera_names, files, counts)
    if files.rootnet is not None:
        samples.update(_read_rootnet(files.rootnet, samples["ann_id"]))
    tables = {**samples, **image_table, **frames, **cams, **(mano or {})}
    meta = {
        "version": INDEX_VERSION,
        "split": files.split,
        "layout": files.layout,
        "image_dir": str(files.image_dir.resolve()),
        "sources": signature,
        "num_samples": int(len(samples["ann_id"])),
        "num_images": int(len(image_table["img_id"])),
        "num_frames": int(len(frames["frame_key"])),
        "num_mano_frames": int(len(mano["mano_key"])) if mano is not None else 0,
        "has_mano": mano is not None,
        "has_rootnet": files.rootnet is not None,
        "camera_names": camera_names,
        "counts": counts,
    }
    _write_dir(out_dir, tables, meta)
    return out_dir


def _write_dir(out_dir: Path, tables: dict[str, np.ndarray], meta: dict) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the index is shared by readers
    try:
        for name, array in tables.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array))
        write_json(tmp / "meta.json", meta)
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# -- open --------------------------------------------------------------------------------------------
def default_cache_dir(files: SplitFiles) -> Path:
    """ROOT/dirnet_cache (or beside the data file for explicit files); ~/.cache/dirnet if read-only."""
    base = files.image_dir.parent.parent if files.layout != "explicit" else files.data.parent
    candidate = base / "dirnet_cache"
    probe = candidate if candidate.exists() else base
    if os.access(probe, os.W_OK):
        return candidate
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "dirnet" / hashlib.sha1(str(base.resolve()).encode()).hexdigest()[:12]


def index_key(files: SplitFiles) -> str:
    return f"{files.split}-{hashlib.sha1(str(files.data.resolve()).encode()).hexdigest()[:10]}"


def index_dir_for(files: SplitFiles, cache_dir: str | Path | None = None) -> Path:
    root = Path(cache_dir) if cache_dir else default_cache_dir(files)
    return root / "index" / index_key(files)


def aux_dir_for(index_dir: Path) -> Path:
    """Prepared seg/dense maps live beside the index: {cache}/aux/{index key}/."""
    return index_dir.parent.parent / "aux" / index_dir.name


def index_is_current(directory: Path, files: SplitFiles) -> bool:
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return meta.get("version") == INDEX_VERSION and meta.get("sources") == source_signature(files)


def open_index(files: SplitFiles, cache_dir: str | Path | None = None, rebuild: bool = False) -> "InterHandIndex":
    """The split's index, (re)built first when missing, stale or `rebuild` is set."""
    directory = index_dir_for(files, cache_dir)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.with_name(directory.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent processes (DDP ranks) build it once
        if rebuild or not index_is_current(directory, files):
            log.info("building the %s index from %s into %s", files.split, files.data, directory)
            build_index(files, directory)
            stale_aux = aux_dir_for(directory)
            if stale_aux.is_dir():  # maps rendered from the previous annotations
                log.info("removing seg/dense maps of the previous index: %s", stale_aux)
                shutil.rmtree(stale_aux)
    return InterHandIndex(directory)


class InterHandIndex:
    """Read-only view of an index directory; columns are memory-mapped on first use (per process)."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        meta_path = self.dir / "meta.json"
        if not meta_path.is_file():
            raise DataError(f"{self.dir}: not an index directory (no meta.json); build it with `dirnet data prepare`")
        self.meta = json.loads(meta_path.read_text())
        self._cols: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {"dir": self.dir, "meta": self.meta, "_cols": {}}  # workers re-map, never copy

    def __len__(self) -> int:
        return int(self.meta["num_samples"])

    def has(self, name: str) -> bool:
        return name in self._cols or (self.dir / f"{name}.npy").is_file()

    def col(self, name: str) -> np.ndarray:
        a = self._cols.get(name)
        if a is None:
            path = self.dir / f"{name}.npy"
            if not path.is_file():
                raise DataError(
                    f"{self.dir}: index column '{name}' missing; rebuild with `dirnet data index --rebuild`")
            a = self._cols[name] = np.load(path, mmap_mode="r")
        return a

    @property
    def image_dir(self) -> Path:
        return Path(self.meta["image_dir"])

    def file_name(self, i: int) -> str:
        """Image path of sample i relative to the split's image folder."""
        r = int(self.col("image_row")[i])
        offsets = self.col("img_path_offsets")
        return bytes(self.col("img_path_blob")[offsets[r] : offsets[r + 1]]).decode("utf-8")

    def image_path(self, i: int) -> Path:
        return self.image_dir / self.file_name(i)

    def camera(self, i: int) -> Camera:
        c = int(self.col("cam_row")[i])
        return Camera(
            np.array(self.col("cam_R")[c]), np.array(self.col("cam_pos")[c]),
            np.array(self.col("cam_focal")[c]), np.array(self.col("cam_princpt")[c]),
        )

    def image_field(self, name: str, i: int) -> Any:
        return self.col(name)[int(self.col("image_row")[i])]

    def world_joints(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(42, 3) world mm and (42,) validity (data.json's, and joint_3d's) in InterHand order."""
        f = int(self.col("frame_row")[i])
        valid = np.array(self.col("joint_valid")[i], np.float32)
        if f < 0:
            return np.zeros((42, 3), np.float32), np.zeros(42, np.float32)
        return np.array(self.col("world")[f]), valid * self.col("frame_valid")[f]

    def mano(self, i: int) -> dict[str, np.ndarray] | None:
        """NeuralAnnot fit of sample i's frame (world, metres) or None; present (2,) right/left."""
        if not self.meta["has_mano"]:
            return None
        m = int(self.col("mano_row")[i])
        if m < 0:
            return None
        return {k: np.array(self.col(f"mano_{k}")[m]) for k in ("pose", "shape", "trans", "present")}

    def quality(self) -> np.ndarray | None:
        """Per-sample image status (QUALITY_*) from `dirnet data verify`, or None if not run."""
        path = self.dir / QUALITY_FILE
        return np.load(path, mmap_mode="r") if path.is_file() else None

    def write_quality(self, status: np.ndarray) -> None:
        from dir_net.utils.io import atomic_path

        with atomic_path(self.dir / QUALITY_FILE) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(status, np.uint8))

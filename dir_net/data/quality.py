"""`dirnet data verify` / `prepare`: image checks, annotation consistency, prepared seg/dense maps.

Results are stored beside the index (they vanish with it when a source file changes):
  {index}/quality.npy         per-sample status (index.QUALITY_*) read by the subset filters
  {index}/verify_report.json  counts
  {index}/bad_ids.txt         "ann_id<TAB>reason" for every offending sample
  {cache}/aux/{key}/NNNNN/{ann_id}.png   seg (alpha) + dense (BGR) maps, full image size
  {cache}/aux/{key}/hand_model.json      the hand model (hash of its arrays) the maps were drawn with
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from dir_net.data.index import (
    QUALITY_BLACK,
    QUALITY_MISSING,
    QUALITY_NAMES,
    QUALITY_OK,
    QUALITY_UNREADABLE,
    InterHandIndex,
)
from dir_net.data.reader import (
    AUX_STAMP,
    BadImage,
    aux_dir_for,
    aux_path,
    aux_stamp,
    hands_of_type,
    load_image,
    read_aux_stamp,
)
from dir_net.data.subsets import mano_complete
from dir_net.utils.io import atomic_path, write_json, write_text

log = logging.getLogger(__name__)

BLACK_MEAN = 10.0  # an image whose mean intensity is below this is a black frame


def image_status(path: str) -> tuple[int, float]:
    """(QUALITY_* code, mean intensity) of one image, decoded at 1/4 resolution for speed."""
    p = Path(path)
    if not p.is_file():
        return QUALITY_MISSING, 0.0
    try:  # truncated JPEGs (no end marker) count as unreadable
        img = load_image(p, cv2.IMREAD_REDUCED_COLOR_4)
    except BadImage:
        return QUALITY_UNREADABLE, 0.0
    mean = float(img.mean())
    return (QUALITY_BLACK if mean < BLACK_MEAN else QUALITY_OK), mean


def _map(fn: Any, items: Iterable[Any], workers: int, chunksize: int = 64) -> list:
    items = list(items)
    if workers <= 1 or len(items) < 2 * chunksize:
        return [fn(x) for x in items]
    with mp.get_context("fork").Pool(workers) as pool:
        return pool.map(fn, items, chunksize=chunksize)


def check_images(index: InterHandIndex, workers: int = 1) -> np.ndarray:
    """(N,) uint8 status per sample; every distinct image is read once."""
    image_rows = np.asarray(index.col("image_row"))
    uniq, inverse = np.unique(image_rows, return_inverse=True)
    first = np.zeros(len(uniq), np.int64)
    first[inverse[::-1]] = np.arange(len(image_rows))[::-1]
    paths = [str(index.image_path(int(i))) for i in first]
    results = _map(image_status, paths, workers)
    status = np.asarray([r[0] for r in results], np.uint8)
    return status[inverse]


def annotation_issues(index: InterHandIndex) -> dict[str, np.ndarray]:
    """Reason -> (N,) bool mask of per-sample annotation inconsistencies."""
    ht = np.asarray(index.col("hand_type"))
    valid = np.asarray(index.col("joint_valid")).reshape(-1, 2, 21)
    present = np.stack([(ht == 0) | (ht == 2), (ht == 1) | (ht == 2)], 1)
    hand_has_joints = valid.any(-1)
    bbox = np.asarray(index.col("bbox"))
    size = np.asarray(index.col("img_size"))[np.asarray(index.col("image_row"))]
    outside = ((bbox[:, :2] >= size).any(1)) | ((bbox[:, :2] + bbox[:, 2:]) <= 0).any(1)
    issues = {
        "unknown hand_type": ht < 0,
        "no joint_3d entry": np.asarray(index.col("frame_row")) < 0,
        "non-finite values": np.asarray(index.col("nonfinite")) > 0,
        "annotated hand without valid joints": (present & ~hand_has_joints).any(1),
        "bbox outside the image": outside & (size[:, 0] > 0),
    }
    if index.meta["has_mano"]:
        issues["hand without MANO fit"] = (ht >= 0) & ~mano_complete(index)
    return issues


def verify(index: InterHandIndex, workers: int = 1) -> dict[str, Any]:
    """Check every image and annotation; store quality.npy, verify_report.json and bad_ids.txt."""
    status = check_images(index, workers)
    index.write_quality(status)
    issues = annotation_issues(index)
    ann_ids = np.asarray(index.col("ann_id"))
    lines = [f"{ann_ids[i]}\t{QUALITY_NAMES[s]} image" for i, s in enumerate(status) if s != QUALITY_OK]
    for reason, mask in issues.items():
        lines += [f"{a}\t{reason}" for a in ann_ids[mask]]
    report = {
        "split": index.meta["split"],
        "samples": len(index),
        "images": {name: int((status == code).sum()) for code, name in enumerate(QUALITY_NAMES)},
        "annotations": {reason: int(mask.sum()) for reason, mask in issues.items()},
        "index_build": index.meta["counts"],
        "bad_ids_file": str(index.dir / "bad_ids.txt"),
    }
    write_text(index.dir / "bad_ids.txt", "".join(line + "\n" for line in lines))
    write_json(index.dir / "verify_report.json", report)
    return report


# -- seg / dense maps ------------------------------------------------------------------------------------
_render_ctx: dict[str, Any] = {}


def _render_one(row: int) -> str:
    """Render and store the seg/dense maps of index row `row`; returns 'written' or why not."""
    from dir_net.render.renderer import segmentation_and_dense

    index, hands, aux_dir = (_render_ctx[k] for k in ("index", "hands", "aux_dir"))
    if "template" not in _render_ctx:  # computed in the worker: no torch work before the fork
        _render_ctx["template"] = hands.template()
    path = aux_path(aux_dir, int(index.col("ann_id")[row]))
    reason = _no_map_reason(index, row)
    if reason is not None:
        path.unlink(missing_ok=True)  # a map an older version drew is wrong as well
        return reason
    fit = index.mano(row)
    use = hands_of_type(int(index.col("hand_type")[row]))
    camera = index.camera(row)
    gt = hands.camera_frame(fit, camera)
    width, height = (int(v) for v in index.image_field("img_size", row))
    seg, dense = segmentation_and_dense(
        gt["vertices"][0] if use[0] else None,
        gt["vertices"][1] if use[1] else None,
        hands.faces, camera.K, (width, height), _render_ctx["template"],
    )
    bgra = np.dstack([(dense[..., ::-1] * 255.0 + 0.5).astype(np.uint8), seg])
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # the temporary name keeps the .png suffix cv2 needs
        if not cv2.imwrite(str(tmp), bgra):
            raise OSError(f"{path}: cannot write the seg/dense map")
    return "written"


def _no_map_reason(index: InterHandIndex, row: int) -> str | None:
    """Why index row `row` gets no seg/dense map, or None when one can be drawn.

    Every annotated hand needs a MANO fit: an interacting frame drawn with one hand would teach
    the other, visible hand as background."""
    fit = index.mano(row)
    if fit is None:
        return "no MANO frame"
    annotated = hands_of_type(int(index.col("hand_type")[row]))
    fitted = annotated & (fit["present"] > 0)
    if not fitted.any():
        return "no MANO fit for the annotated hands"
    if (annotated & ~fitted).any():
        return "interacting frame with one MANO fit"
    width, height = (int(v) for v in index.image_field("img_size", row))
    if width <= 0 or height <= 0:
        return "image size unknown"
    return None


def _start_aux_dir(aux_dir: Path, hand_fingerprint: str) -> None:
    """Make aux_dir hold maps of this hand model only: maps drawn with another model (or by an
    older version, without a stamp) are removed, then the stamp is written."""
    stamp = aux_stamp(hand_fingerprint)
    if read_aux_stamp(aux_dir) == stamp:
        return
    if aux_dir.is_dir():
        log.warning("%s: the seg/dense maps there were drawn with another hand model or an older "
                    "version; removing them to render them again", aux_dir)
        shutil.rmtree(aux_dir)
    aux_dir.mkdir(parents=True)
    write_json(aux_dir / AUX_STAMP, stamp)


def prepare_aux(index: InterHandIndex, hands: Any, rows: np.ndarray | None = None, workers: int = 1,
                force: bool = False) -> dict[str, int]:
    """Render seg/dense maps from the GT meshes for `rows` (default: all); existing maps of the same
    hand model are kept unless `force`. Returns counts per outcome."""
    aux_dir = aux_dir_for(index.dir)
    _start_aux_dir(aux_dir, hands.fingerprint())
    rows = np.arange(len(index)) if rows is None else np.asarray(rows)
    ann_ids = np.asarray(index.col("ann_id"))
    todo = [int(r) for r in rows if force or not aux_path(aux_dir, int(ann_ids[r])).is_file()]
    _render_ctx.clear()
    _render_ctx.update(index=index, hands=hands, aux_dir=aux_dir)
    counts = Counter(_map(_render_one, todo, workers, chunksize=16))
    counts["already present"] = len(rows) - len(todo)
    return dict(counts)


def prepare(cfg: Any, files: Any, workers: int = 1, aux: bool = True, force: bool = False,
            rebuild: bool = False) -> dict[str, Any]:
    """Index (built if stale) + verify + seg/dense maps for one split; what `dirnet data prepare` runs.
    files: the split's SplitFiles (e.g. `dir_net.data.split_files(cfg, split)`)."""
    from dir_net.data.index import open_index
    from dir_net.data.mano_gt import GTHands

    index = open_index(files, cfg.data.cache_dir, rebuild=rebuild)
    report: dict[str, Any] = {"index": str(index.dir), "verify": verify(index, workers)}
    if aux and index.meta["has_mano"]:
        report["aux_maps"] = prepare_aux(index, GTHands(cfg.mano.model_dir, cfg.mano.tips), workers=workers, force=force)
    return report

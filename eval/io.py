"""Reading, validating and matching the evaluation interchange files.

`predictions.npz` / `groundtruth.npz` hold one row per annotation (see docs/EVALUATION.md):
ids (N,) int64, joints (N, 2, 21, 3) mm in the camera frame (hand axis 0 right, 1 left,
wrist-first joints), optional verts (N, 2, V, 3) mm, verts_2d (N, 2, V, 2) px,
joints_2d (N, 2, 21, 2) px, hand_prob (N, 2) (predictions), joint_valid (N, 2, 21) bool and
hand_type (N,) 0 right / 1 left / 2 interacting (ground truth), and faces (2, F, 3) int.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator, Literal, Mapping

import numpy as np

from mano.joints import BONES, NUM_JOINTS

Role = Literal["pred", "gt"]
Arrays = dict[str, np.ndarray]

# field -> expected shape after the row axis; "V" = any vertex count shared within a file.
_ROW_SHAPES: dict[str, tuple[int | str, ...]] = {
    "ids": (),
    "joints": (2, NUM_JOINTS, 3),
    "verts": (2, "V", 3),
    "verts_2d": (2, "V", 2),
    "joints_2d": (2, NUM_JOINTS, 2),
    "hand_prob": (2,),
    "offset": (3,),
    "joint_valid": (2, NUM_JOINTS),
    "verts_valid": (2,),
    "hand_type": (),
}
_ROLE_FIELDS: dict[str, tuple[str, ...]] = {
    "pred": ("ids", "joints", "verts", "verts_2d", "joints_2d", "hand_prob", "offset"),
    "gt": ("ids", "joints", "verts", "verts_2d", "joints_2d", "joint_valid", "verts_valid", "hand_type"),
}
_FLOAT_FIELDS = ("joints", "verts", "verts_2d", "joints_2d", "hand_prob", "offset")


class InputError(ValueError):
    """Bad evaluation input; the message names the file (or batch), the field and the fix."""


def load_npz(path: str | os.PathLike, role: Role, *, check_finite: bool = True) -> Arrays:
    """Read and validate a predictions (role "pred") or ground-truth (role "gt") file.

    With check_finite=False, rows holding NaN/inf are kept so that the caller can report and
    drop them with `nonfinite_rows` / `select_rows`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None
    if "ids" not in raw:
        raise InputError(f"{path}: missing field 'ids' ((N,) int64 annotation ids)")
    return validate(raw, role, str(path), check_finite=check_finite)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; on success it gets the mode a plain open()
    would give (0666 minus the umask, not mkstemp's private 0600) and replaces `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write arrays to an .npz file atomically (temporary file, then rename)."""
    with atomic_output(path, ".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **{k: np.asarray(v) for k, v in arrays.items()})


def validate(raw: Mapping[str, object], role: Role, source: str, *,
             check_finite: bool = True) -> Arrays:
    """Check fields, shapes, dtypes and units; return the known fields as numpy arrays."""
    if role not in _ROLE_FIELDS:
        raise ValueError(f"role must be 'pred' or 'gt', got {role!r}")
    if "joints" not in raw:
        raise InputError(f"{source}: missing field 'joints' ((N, 2, 21, 3) millimetres)")
    arrays = {k: _as_numpy(raw[k]) for k in _ROLE_FIELDS[role] if k in raw}
    num_rows = arrays["joints"].shape[0] if arrays["joints"].ndim else -1
    for field, array in arrays.items():
        arrays[field] = _check_field(field, array, num_rows, source)
    if num_rows == 0:
        raise InputError(f"{source}: no rows (field 'joints' has shape {arrays['joints'].shape}); "
                         "write at least one annotation")
    if "faces" in raw:
        arrays["faces"] = _check_faces(_as_numpy(raw["faces"]), arrays, source)
    _check_vertex_counts(arrays, source)
    _check_values(arrays, source)
    if check_finite:
        require_finite(arrays, source)
    _check_units(arrays, source)
    return arrays


def _as_numpy(value: object) -> np.ndarray:
    """numpy view of an array-like; CPU torch tensors are detached without importing torch."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()  # type: ignore[attr-defined]
    return np.asarray(value)


def _check_field(field: str, array: np.ndarray, num_rows: int, source: str) -> np.ndarray:
    expected = ("N",) + _ROW_SHAPES[field]
    shape_text = "(" + ", ".join(str(d) for d in expected) + ")"
    ok = array.ndim == len(expected) and array.shape[0] == num_rows and all(
        isinstance(want, str) or got == want for got, want in zip(array.shape[1:], expected[1:])
    )
    if not ok:
        raise InputError(
            f"{source}: field '{field}' has shape {array.shape}; expected {shape_text} "
            f"with N = {num_rows} rows like 'joints'"
        )
    if field in ("ids", "hand_type"):
        if not np.issubdtype(array.dtype, np.integer):
            raise InputError(f"{source}: field '{field}' must hold integers, got {array.dtype}")
        return array.astype(np.int64, copy=False)
    if field in ("joint_valid", "verts_valid"):
        if array.dtype != np.bool_ and not np.isin(array, (0, 1)).all():
            raise InputError(f"{source}: field '{field}' must hold booleans or 0/1")
        return array.astype(bool, copy=False)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(f"{source}: field '{field}' must hold real numbers, got {array.dtype}")
    return array.astype(np.float64, copy=False)  # no copy when already float64


def _check_faces(faces: np.ndarray, arrays: Arrays, source: str) -> np.ndarray:
    if faces.ndim != 3 or faces.shape[0] != 2 or faces.shape[2] != 3:
        raise InputError(f"{source}: field 'faces' has shape {faces.shape}; expected (2, F, 3)")
    if not np.issubdtype(faces.dtype, np.integer):
        raise InputError(f"{source}: field 'faces' must hold integer vertex indices")
    num_verts = arrays["verts"].shape[2] if "verts" in arrays else None
    if faces.min(initial=0) < 0 or (num_verts is not None and faces.max(initial=0) >= num_verts):
        raise InputError(
            f"{source}: field 'faces' indexes vertices outside 0..{num_verts}; "
            "faces must index the rows of 'verts'"
        )
    return faces.astype(np.int64)


def _check_vertex_counts(arrays: Arrays, source: str) -> None:
    if "verts" in arrays and "verts_2d" in arrays and (
        arrays["verts"].shape[2] != arrays["verts_2d"].shape[2]
    ):
        raise InputError(
            f"{source}: 'verts' has {arrays['verts'].shape[2]} vertices per hand but "
            f"'verts_2d' has {arrays['verts_2d'].shape[2]}"
        )


def _check_values(arrays: Arrays, source: str) -> None:
    ids = arrays.get("ids")
    if ids is not None:
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise InputError(
                f"{source}: field 'ids' has duplicates, e.g. {_few(unique[counts > 1])}; "
                "each annotation id must appear once"
            )
    hand_type = arrays.get("hand_type")
    if hand_type is not None and not np.isin(hand_type, (0, 1, 2)).all():
        raise InputError(
            f"{source}: field 'hand_type' must be 0 (right), 1 (left) or 2 (interacting), "
            f"got values {_few(np.setdiff1d(hand_type, (0, 1, 2)))}"
        )
    prob = arrays.get("hand_prob")
    if prob is not None and ((prob < 0) | (prob > 1)).any():
        raise InputError(
            f"{source}: field 'hand_prob' must hold probabilities in [0, 1] "
            "(apply the sigmoid to logits first)"
        )


_UNIT_CHECK_ROWS = 256  # units are global: a spread-out sample of rows decides


def _check_units(arrays: Arrays, source: str) -> None:
    num_rows = len(arrays["joints"])
    sample = np.unique(np.linspace(0, num_rows - 1, min(num_rows, _UNIT_CHECK_ROWS)).astype(int))
    arrays = select_rows(arrays, sample)
    joints = arrays["joints"]
    parents, children = (np.array(idx) for idx in zip(*BONES))
    lengths = np.linalg.norm(joints[:, :, children] - joints[:, :, parents], axis=-1)
    usable = np.isfinite(lengths) & (lengths > 0)
    if "joint_valid" in arrays:
        valid = arrays["joint_valid"]
        usable &= valid[:, :, children] & valid[:, :, parents]
    if usable.any() and np.median(lengths[usable]) < 1.0:
        raise InputError(
            f"{source}: field 'joints' has a median bone length of "
            f"{np.median(lengths[usable]):.4g}; it looks like metres, multiply by 1000 "
            "(the interchange format is millimetres)"
        )
    verts = arrays.get("verts")
    if verts is not None and verts.size:
        spread = np.linalg.norm(verts - verts.mean(axis=2, keepdims=True), axis=-1)
        spread = spread[np.isfinite(spread) & (spread > 0)]
        if spread.size and np.median(spread) < 1.0:
            raise InputError(
                f"{source}: field 'verts' has a median distance to the hand centre of "
                f"{np.median(spread):.4g}; it looks like metres, multiply by 1000"
            )


def nonfinite_rows(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N,) bool: rows with NaN or inf in any float field."""
    bad = np.zeros(len(arrays["joints"]), dtype=bool)
    for field in _FLOAT_FIELDS:
        if field in arrays:
            values = arrays[field]
            bad |= ~_finite_rows(values)
    return bad


def _finite_rows(values: np.ndarray) -> np.ndarray:
    """(N,) bool: every value of the row is finite (also for N = 0)."""
    return np.isfinite(values).all(axis=tuple(range(1, values.ndim)))


def require_finite(arrays: Mapping[str, np.ndarray], source: str) -> None:
    """Raise naming the source, the field and some row ids if any value is NaN or inf."""
    for field in _FLOAT_FIELDS:
        if field not in arrays:
            continue
        values = arrays[field]
        bad = ~_finite_rows(values)
        if bad.any():
            where = arrays["ids"][bad] if "ids" in arrays else np.flatnonzero(bad)
            label = "ids" if "ids" in arrays else "rows"
            raise InputError(
                f"{source}: field '{field}' has NaN/inf in {int(bad.sum())} rows "
                f"({label} {_few(where)}); fix them or pass --drop-invalid to exclude them"
            )


def select_rows(arrays: Mapping[str, np.ndarray], rows: np.ndarray) -> Arrays:
    """Index every per-row field with `rows` (bool mask or indices); 'faces' is kept."""
    return {k: (v if k == "faces" else v[rows]) for k, v in arrays.items()}


def match_rows(pred: Arrays, gt: Arrays, pred_source: str, gt_source: str
               ) -> tuple[Arrays, list[str]]:
    """Reorder prediction rows to the ground-truth ids; returns (pred, notes).

    Every ground-truth id must have a prediction; extra predictions are dropped with a note.
    """
    if "ids" not in pred or "ids" not in gt:
        raise InputError(f"{pred_source if 'ids' not in pred else gt_source}: missing 'ids'")
    order = np.argsort(pred["ids"], kind="stable")
    sorted_ids = pred["ids"][order]
    where = np.searchsorted(sorted_ids, gt["ids"])
    where = np.minimum(where, max(len(sorted_ids) - 1, 0))
    found = sorted_ids[where] == gt["ids"] if len(sorted_ids) else np.zeros(len(gt["ids"]), bool)
    if not found.all():
        missing = gt["ids"][~found]
        raise InputError(
            f"{pred_source}: no prediction for {len(missing)} of {len(gt['ids'])} ground-truth "
            f"ids in {gt_source}, e.g. {_few(missing)} (--drop-invalid scores only the predicted ids)"
        )
    notes = []
    extra = len(pred["ids"]) - len(gt["ids"])
    if extra:
        notes.append(f"{pred_source}: ignored {extra} predictions whose ids are not in {gt_source}")
    return select_rows(pred, order[where]), notes


def _few(values: np.ndarray, limit: int = 5) -> str:
    values = np.asarray(values).ravel()
    text = ", ".join(str(v) for v in values[:limit].tolist())
    return text + (", ..." if len(values) > limit else "")


def check_pair(pred: Arrays, gt: Arrays, pred_source: str, gt_source: str) -> None:
    """Check that row-matched predictions and ground truth fit together."""
    if len(pred["joints"]) != len(gt["joints"]):
        raise InputError(
            f"{pred_source} has {len(pred['joints'])} rows but {gt_source} has "
            f"{len(gt['joints'])}; rows must correspond"
        )
    if "ids" in pred and "ids" in gt and not np.array_equal(pred["ids"], gt["ids"]):
        raise InputError(
            f"{pred_source}: ids differ from {gt_source} row by row; match rows by id first "
            "(eval.io.match_rows)"
        )
    for field in ("verts", "verts_2d"):
        if field in pred and field in gt and pred[field].shape[2] != gt[field].shape[2]:
            raise InputError(
                f"{pred_source}: '{field}' has {pred[field].shape[2]} vertices per hand but "
                f"{gt_source} has {gt[field].shape[2]}; both must use the same mesh"
            )
    faces = pred.get("faces", gt.get("faces"))
    if faces is not None and "verts" in pred and faces.max(initial=0) >= pred["verts"].shape[2]:
        raise InputError(
            f"{gt_source if 'faces' not in pred else pred_source}: 'faces' index vertex "
            f"{faces.max()} but {pred_source} has {pred['verts'].shape[2]} vertices per hand"
        )


def write_json(path: str | os.PathLike, payload: object) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")

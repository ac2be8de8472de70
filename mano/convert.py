"""Read MANO model files (official .pkl without chumpy, or converted .npz), validate, write .npz.

The official MANO_{RIGHT,LEFT}.pkl files hold chumpy objects and a scipy.sparse J_regressor.
chumpy does not import on current Python / numpy, so the pickle is read by an Unpickler that maps
every `chumpy.*` class to a stub and takes the array a chumpy object keeps under 'x'. Only numpy,
scipy.sparse and a few builtin helpers may appear in the pickle; anything else is rejected.

The .npz schema is the one `smplx.MANO(..., ext='npz')` reads (float64 arrays):
v_template (V,3), shapedirs (V,3,10), posedirs (V,3,135), J_regressor (16,V) dense,
weights (V,16), kintree_table (2,16) int64 (root parent -1), f (F,3) int32,
hands_components (45,45) rows = components, hands_mean (45,), plus is_rhand (bool) and side (str).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .joints import MANO_PARENTS, MANO_SKELETON_NAMES

NUM_SKELETON = 16
NUM_BETAS = 10
NUM_POSE = 45  # 15 finger joints x 3 (axis-angle)
OFFICIAL_NUM_VERTS = 778
OFFICIAL_NUM_FACES = 1538
SIDES = ("right", "left")

FLOAT_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
              "hands_components", "hands_mean")
MODEL_KEYS = FLOAT_KEYS + ("kintree_table", "f")


class ModelFileError(ValueError):
    """A model file that cannot be read or is not a valid MANO model; the message names the file."""


class ModelNotFoundError(ModelFileError, FileNotFoundError):
    """The MANO model folder or file does not exist; the message says where it looked."""


# ----------------------------------------------------------------------------------------------
# chumpy-free pickle reading


class _ChumpyStub:
    """Stand-in for any chumpy class: accepts any construction and keeps the pickled state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


_NUMPY_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}
_BUILTIN_GLOBALS = {
    ("copyreg", "_reconstructor"), ("builtins", "object"), ("builtins", "set"),
    ("builtins", "frozenset"), ("_codecs", "encode"),
}

_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}  # protocol-2 pickles use these


class _MANOUnpickler(pickle.Unpickler):
    """Unpickler for official MANO files: chumpy -> stub; only numpy / scipy.sparse allowed."""

    def find_class(self, module: str, name: str) -> Any:
        module = _PY2_MODULES.get(module, module)
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStub
        if (module, name) in _NUMPY_GLOBALS:
            if module.startswith("numpy.core") and hasattr(np, "_core"):
                module = module.replace("numpy.core", "numpy._core", 1)
            return getattr(importlib.import_module(module), name)
        if (module, name) in _BUILTIN_GLOBALS:
            return super().find_class(module, name)
        if module.startswith("scipy.sparse") and name.endswith(("_matrix", "_array")):
            import scipy.sparse

            if hasattr(scipy.sparse, name):
                return getattr(scipy.sparse, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} (not a MANO model pickle)")


def _unwrap(value: Any, key: str) -> Any:
    """Chumpy stubs -> their 'x' array; sparse matrices -> dense arrays."""
    if isinstance(value, _ChumpyStub):
        state = value.state
        if isinstance(state, tuple):  # (dict, slots) form
            state = state[0]
        if not isinstance(state, dict) or "x" not in state:
            raise ValueError(f"field {key!r} is a chumpy object without a stored value ('x')")
        return np.asarray(state["x"])
    if hasattr(value, "toarray") and hasattr(value, "nnz"):
        return np.asarray(value.toarray())
    return value


def read_pickle_model(path: str | os.PathLike) -> dict[str, Any]:
    """Raw fields of a MANO .pkl with chumpy objects replaced by arrays (no validation)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = _MANOUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: file not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, ImportError, UnicodeDecodeError, MemoryError) as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, EOFError):
            detail = "the file ends early (truncated download?)"
        raise ModelFileError(f"{path}: not a readable MANO .pkl ({detail}); "
                             "re-download MANO_RIGHT.pkl / MANO_LEFT.pkl") from None
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: expected a dict of model arrays, found {type(data).__name__}; "
                             "not a MANO model file")
    try:
        return {str(k): _unwrap(v, str(k)) for k, v in data.items()}
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None


# ----------------------------------------------------------------------------------------------
# validation and side


def _expect_shape(arrays: dict[str, np.ndarray], key: str, shape: tuple[int | None, ...],
                  source: str) -> None:
    got = arrays[key].shape
    if len(got) != len(shape) or any(s is not None and g != s for g, s in zip(got, shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ModelFileError(f"{source}: field {key!r} has shape {got}, expected {want}")


def validate_model(raw: dict[str, Any], source: str, official: bool = False) -> dict[str, np.ndarray]:
    """Check and normalise model fields (dtypes, shapes, finiteness, kinematic tree).

    official=True also requires the real MANO mesh (778 vertices, 1538 faces); otherwise any
    vertex and face count consistent across fields is accepted (e.g. the synthetic hand).
    Returns the MODEL_KEYS arrays with float64 floats, int64 kintree_table, int32 faces.
    """
    missing = [k for k in MODEL_KEYS if k not in raw]
    if missing:
        raise ModelFileError(f"{source}: missing field(s) {', '.join(missing)}; not a MANO model file")
    out: dict[str, np.ndarray] = {}
    for key in MODEL_KEYS:
        try:
            arr = np.asarray(raw[key])
        except Exception as exc:  # noqa: BLE001 - any failure to make an array is a bad field
            raise ModelFileError(f"{source}: field {key!r} is not an array ({exc})") from None
        if arr.dtype.kind not in "fiub":
            raise ModelFileError(f"{source}: field {key!r} has dtype {arr.dtype}, expected numbers")
        out[key] = arr
    _expect_shape(out, "v_template", (OFFICIAL_NUM_VERTS if official else None, 3), source)
    num_verts = out["v_template"].shape[0]
    expected: dict[str, tuple[int | None, ...]] = {
        "v_template": (num_verts, 3),
        "shapedirs": (num_verts, 3, NUM_BETAS),
        "posedirs": (num_verts, 3, 9 * (NUM_SKELETON - 1)),
        "J_regressor": (NUM_SKELETON, num_verts),
        "weights": (num_verts, NUM_SKELETON),
        "kintree_table": (2, NUM_SKELETON),
        "f": (OFFICIAL_NUM_FACES if official else None, 3),
        "hands_components": (NUM_POSE, NUM_POSE),
        "hands_mean": (NUM_POSE,),
    }
    for key, shape in expected.items():
        _expect_shape(out, key, shape, source)
    for key in FLOAT_KEYS:
        out[key] = out[key].astype(np.float64)
        if not np.isfinite(out[key]).all():
            raise ModelFileError(f"{source}: field {key!r} contains NaN or infinite values")
    _check_faces(out, num_verts, source)
    _check_kintree(out, source)
    _check_weights(out, source)
    return out


def _check_faces(out: dict[str, np.ndarray], num_verts: int, source: str) -> None:
    faces = out["f"]
    if faces.dtype.kind not in "iu" or faces.size == 0:
        raise ModelFileError(f"{source}: field 'f' must be a non-empty integer array, got {faces.dtype}")
    if faces.min() < 0 or faces.max() >= num_verts:
        raise ModelFileError(f"{source}: field 'f' indexes vertices outside 0..{num_verts - 1}")
    out["f"] = faces.astype(np.int32)


def _check_kintree(out: dict[str, np.ndarray], source: str) -> None:
    raw = out["kintree_table"]
    if raw.dtype.kind not in "iu":
        raise ModelFileError(f"{source}: field 'kintree_table' must be integer, got {raw.dtype}")
    # The root has no parent: the official files store 4294967295 (2^32 - 1, as int64 or uint32)
    # and every MANO / SMPL loader reads any value there as -1; only the other 15 are checked.
    table = raw.astype(np.int64)
    table[0, 0] = -1
    if not np.array_equal(table[1], np.arange(NUM_SKELETON)) or not np.array_equal(table[0], MANO_PARENTS):
        raise ModelFileError(
            f"{source}: field 'kintree_table' is not MANO's 16-joint tree "
            f"(parents {MANO_PARENTS.tolist()}, root's ignored); got parents {raw[0].tolist()}")
    out["kintree_table"] = table


def _check_weights(out: dict[str, np.ndarray], source: str) -> None:
    sums = out["weights"].sum(axis=1)
    if np.abs(sums - 1.0).max() > 1e-3:
        raise ModelFileError(f"{source}: field 'weights' rows must sum to 1 (skinning weights), "
                             f"worst row sums to {sums[np.argmax(np.abs(sums - 1))]:.4f}")


def infer_side(arrays: dict[str, np.ndarray]) -> str | None:
    """'right' / 'left' from the geometry, or None when the data does not say.

    With d = middle MCP - wrist and l = index MCP - pinky MCP (rest joints), d x l is the dorsal
    normal of a right hand and the palmar normal of a left one; finger flexion (towards the palm)
    is a rotation about dorsal x d, i.e. about +l for a right hand and -l for a left one. The
    mean hand pose is flexed, so the sign of its MCP axes along l gives the side.
    """
    joints = arrays["J_regressor"] @ arrays["v_template"]  # (16, 3) rest joints
    name = MANO_SKELETON_NAMES.index
    lateral = joints[name("index1")] - joints[name("pinky1")]
    lateral /= max(np.linalg.norm(lateral), 1e-12)
    mcp_axes = np.stack([arrays["hands_mean"][3 * (name(f"{f}1") - 1):3 * name(f"{f}1")]
                         for f in ("index", "middle", "ring", "pinky")])
    mean_axis = mcp_axes.mean(axis=0)
    if np.linalg.norm(mean_axis) < 0.05:  # (nearly) flat mean hand: no flexion to read
        return None
    along = float(mean_axis @ lateral) / float(np.linalg.norm(mean_axis))
    if abs(along) < 0.3:
        return None
    return "right" if along > 0 else "left"


def side_from_name(path: str | os.PathLike) -> str | None:
    name = Path(path).name.upper()
    has_right, has_left = "RIGHT" in name, "LEFT" in name
    if has_right == has_left:
        return None
    return "right" if has_right else "left"


def resolve_side(arrays: dict[str, np.ndarray], path: str | os.PathLike,
                 hints: list[tuple[str, str | None]]) -> str:
    """Side from the data when it is decisive, else the first given hint; conflicts are errors.

    hints: (origin, side or None) in priority order, e.g. [("the file name", "right"), ("--side", None)].
    """
    for origin, value in hints:
        if value is not None and value not in SIDES:
            raise ModelFileError(f"{path}: {origin} must be 'right' or 'left', got {value!r}")
    from_data = infer_side(arrays)
    for origin, value in hints:
        if from_data is not None and value is not None and value != from_data:
            raise ModelFileError(f"{path}: the model data is a {from_data} hand but {origin} says "
                                 f"{value}; check that the file is the one you meant")
    resolved = from_data or next((value for _, value in hints if value is not None), None)
    if resolved is None:
        raise ModelFileError(f"{path}: cannot tell whether this is a right or a left hand; "
                             "pass --side right|left (or name the file MANO_RIGHT / MANO_LEFT)")
    return resolved


# ----------------------------------------------------------------------------------------------
# loading and writing


def load_model_arrays(path: str | os.PathLike, side: str | None = None) -> dict[str, Any]:
    """Validated model arrays from a MANO .pkl (official shapes) or .npz (any vertex count).

    The result carries 'side' ('right' / 'left'): from the data when decisive, else the .npz
    'side' field, else the file name (RIGHT / LEFT), else `side`.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: file not found")
    hints: list[tuple[str, str | None]] = []
    if path.suffix.lower() == ".pkl":
        arrays: dict[str, Any] = validate_model(read_pickle_model(path), str(path), official=True)
    elif path.suffix.lower() == ".npz":
        raw = _read_npz(path)
        arrays = validate_model(raw, str(path))
        hints.append(("its 'side' field", str(raw["side"]) if "side" in raw else None))
    else:
        raise ModelFileError(f"{path}: unknown model file type; expected .pkl (official MANO) or .npz")
    hints += [("the file name", side_from_name(path)), ("--side", side)]
    arrays["side"] = resolve_side(arrays, path, hints)
    return arrays


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{path}: cannot read the .npz ({type(exc).__name__}: {exc}); truncated "
                             "or not a model file: re-create it with `python -m mano convert`") from None


def model_npz_bytes(arrays: dict[str, Any]) -> bytes:
    """The .npz file content for validated model arrays (with 'side')."""
    buf = io.BytesIO()
    payload = {k: arrays[k] for k in MODEL_KEYS}
    payload["is_rhand"] = np.array(arrays["side"] == "right")
    payload["side"] = np.array(arrays["side"])
    np.savez_compressed(buf, **payload)
    return buf.getvalue()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to `path` through a temporary file in the same folder and os.replace."""
    dst = Path(path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def model_fingerprint(models: dict[str, dict[str, Any]]) -> str:
    """sha256 (hex) of both hands' validated model arrays (`load_model_arrays` output per side):
    equal exactly when the meshes posed from the two models are equal. No arithmetic, so the same
    files give the same fingerprint on every machine."""
    digest = hashlib.sha256()
    for side in SIDES:
        for key in MODEL_KEYS:
            array = np.ascontiguousarray(models[side][key])
            digest.update(f"{side}/{key}/{array.dtype.str}/{array.shape};".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def convert(src: str | os.PathLike, dst: str | os.PathLike, side: str | None = None) -> str:
    """Convert an official MANO .pkl (or re-check a model .npz) into a model .npz; returns the side."""
    arrays = load_model_arrays(src, side)
    write_atomic(dst, model_npz_bytes(arrays))
    return arrays["side"]

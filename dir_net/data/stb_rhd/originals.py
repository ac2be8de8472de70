"""Converters from the ORIGINAL public STB and RHD releases to the parsed format the loader reads.

RHD (RHD_published_v2): `{training,evaluation}/anno_{split}.pickle` = {sample id: {'xyz' (42, 3) m,
'uv_vis' (42, 3) px + visible flag, 'K' (3, 3)}}, rows 0-20 the left hand and 21-41 the right, each
wrist then thumb .. pinky tip -> MCP; images `{split}/color/%05d.png`, 320 x 320. Pickles are read
with an allow-list unpickler (dicts, lists, numbers, strings and numpy arrays only).
  -> data/RHD_{training,evaluation}.json: joint_cam = xyz x 1000 (RHD order), joint_valid = the
     visible flag (inferred), one annotation per image (`dominant`: the hand with more visible
     joints, the classic protocol's hand by mask size approximated) or per hand with a visible
     joint (`visible`).
STB: `labels/{seq}_BB.mat` (and `_SK.mat`) with `handPara` (3, 21, F) mm in that camera's frame,
STB order (palm centre first); images `{seq}/BB_{left,right}_{i}.png` (and `SK_color_{i}.png`).
  -> data/STB_{train,test}.json: test = B1Counting + B1Random, hand_type 'left', joint_valid 1;
     Bumblebee left view as labelled, right view shifted by the baseline along -x (inferred).
Both write skeleton.txt and link the image folders beside the json as the loader expects.
"""

from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from dir_net.data.stb_rhd.writer import annotation_entry, image_entry, write_parsed_json, write_skeleton
from dir_net.errors import DataError

# STB Bumblebee BB intrinsics (px) and stereo baseline (mm), from the STB release
STB_BB_FOCAL = (822.79041, 822.79041)
STB_BB_PRINCPT = (318.47345, 250.31296)
STB_BASELINE_MM = 120.054
STB_SIZE = (640, 480)
STB_TEST_SEQUENCES = ("B1Counting", "B1Random")
STB_VIEWS = ("left", "right")
RHD_SIZE = (320, 320)
RHD_SPLITS = ("training", "evaluation")
RHD_BLOCKS = {"left": slice(0, 21), "right": slice(21, 42)}


# -- allow-list unpickler -----------------------------------------------------------------------------
def _numpy_multiarray() -> Any:
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy < 2
        return importlib.import_module("numpy.core.multiarray")


def _allowed() -> dict[tuple[str, str], Any]:
    import codecs

    multiarray = _numpy_multiarray()
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): codecs.encode}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class _AllowListUnpickler(pickle.Unpickler):
    """Builds plain containers, numbers, strings and numpy arrays; any other global is refused."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="latin1")  # RHD's pickles come from Python 2
        self.path = path
        self.allowed = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        found = self.allowed.get((module, name))
        if found is None:
            raise DataError(f"{self.path}: refusing to unpickle {module}.{name} (only dicts, lists, numbers and numpy "
                            "arrays are allowed); this is not an RHD annotation file")
        return found


def load_pickle(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, "rb") as f:
            return _AllowListUnpickler(f, path).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise DataError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); the file is truncated or "
                        "corrupt - download it again") from None


# -- RHD ------------------------------------------------------------------------------------------------
def _rhd_field(entry: Any, sample: Any, name: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    if not isinstance(entry, dict) or name not in entry:
        raise DataError(f"{path}: sample {sample}: field '{name}' missing (expected keys xyz, uv_vis, K)")
    try:
        a = np.asarray(entry[name], np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: sample {sample}: field '{name}' is not numeric") from None
    if a.shape != shape:
        raise DataError(f"{path}: sample {sample}: field '{name}' must be {'x'.join(map(str, shape))} "
                        f"(42 joints = left 0-20, right 21-41), got shape {list(a.shape)}")
    return a


def _rhd_hands(visible: np.ndarray, policy: str) -> list[str]:
    """Which hands of one RHD sample become annotations; visible (42,) bool."""
    counts = {side: int(visible[block].sum()) for side, block in RHD_BLOCKS.items()}
    if policy == "dominant":
        return ["left" if counts["left"] > counts["right"] else "right"]
    return [side for side in ("right", "left") if counts[side] > 0]


def convert_rhd_split(pickle_path: Path, policy: str = "dominant") -> tuple[list[dict], list[dict]]:
    """(images, annotations) of one RHD annotation pickle in the parsed format."""
    anno = load_pickle(pickle_path)
    if not isinstance(anno, dict) or not anno:
        raise DataError(f"{pickle_path}: expected a non-empty dict {{sample id: {{xyz, uv_vis, K}}}}, "
                        f"got {type(anno).__name__}")
    images: list[dict] = []
    annotations: list[dict] = []
    for sample in sorted(anno):
        entry = anno[sample]
        xyz_mm = _rhd_field(entry, sample, "xyz", (42, 3), pickle_path) * 1000.0
        uv_vis = _rhd_field(entry, sample, "uv_vis", (42, 3), pickle_path)
        K = _rhd_field(entry, sample, "K", (3, 3), pickle_path)
        focal, princpt = K[[0, 1], [0, 1]], K[[0, 1], [2, 2]]
        images.append(image_entry(int(sample), f"{int(sample):05d}.png", *RHD_SIZE, focal, princpt))
        visible = uv_vis[:, 2] > 0
        for side in _rhd_hands(visible, policy):
            block = RHD_BLOCKS[side]
            annotations.append(annotation_entry(len(annotations), int(sample), side, xyz_mm[block], focal, princpt,
                                                visible[block]))
    return images, annotations


def _link(target: Path, link: Path) -> bool:
    """Make `link` point at `target` (folders the parsed layout expects); False when it already is it."""
    if link.exists() and link.resolve() == target.resolve():
        return False
    if link.is_symlink() or link.exists():
        raise DataError(f"{link}: exists and is not a link to {target}; remove it or convert into a new folder")
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.abspath(target), link, target_is_directory=True)
    return True


def convert_rhd(src: str | Path, out: str | Path, policy: str = "dominant", link_images: bool = True
                ) -> dict[str, Any]:
    """RHD_published_v2 at `src` -> the parsed layout under `out` (out/data/RHD_*.json)."""
    if policy not in ("dominant", "visible"):
        raise DataError(f"--hands must be dominant or visible, got {policy!r}")
    src, out = Path(src), Path(out)
    found = [s for s in RHD_SPLITS if (src / s / f"anno_{s}.pickle").is_file()]
    if not found:
        raise DataError(f"{src}: no {{training,evaluation}}/anno_{{split}}.pickle; "
                        "point at the RHD_published_v2 folder")
    summary: dict[str, Any] = {"out": str(out)}
    for split in found:
        images, annotations = convert_rhd_split(src / split / f"anno_{split}.pickle", policy)
        write_parsed_json(out / "data" / f"RHD_{split}.json", images, annotations)
        if link_images:
            _link(src / split, out / "data" / split)
        summary[split] = {"images": len(images), "annotations": len(annotations)}
    write_skeleton(out / "data" / "skeleton.txt", "rhd")
    return summary


# -- STB ------------------------------------------------------------------------------------------------
def load_stb_labels(path: str | Path) -> np.ndarray:
    """(F, 21, 3) mm from an STB label file (`handPara`, 3 x 21 x F)."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        mat = scipy.io.loadmat(str(path))
    except (ValueError, OSError, TypeError, EOFError, IndexError, scipy.io.matlab.MatReadError) as exc:
        raise DataError(f"{path}: not a readable .mat file ({type(exc).__name__}: {exc}); the file is truncated or "
                        "corrupt - download it again") from None
    if "handPara" not in mat:
        names = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{path}: field 'handPara' missing (found {names}); expected STB labels (3 x 21 x frames, mm)")
    para = np.asarray(mat["handPara"], np.float64)
    if para.ndim == 2 and para.shape == (3, 21):
        para = para[..., None]
    if para.ndim != 3 or para.shape[:2] != (3, 21):
        raise DataError(f"{path}: field 'handPara' must be 3 x 21 x frames (21 joints, mm), "
                        f"got shape {list(para.shape)}")
    return para.transpose(2, 1, 0)


def _stb_views(camera: str, views: tuple[str, ...], intrinsics: tuple[float, ...] | None
               ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(file prefix, focal, princpt, offset mm added to the labels) per view."""
    if camera == "sk":
        if intrinsics is None or len(intrinsics) != 4:
            raise DataError("--camera sk needs --intrinsics fx,fy,cx,cy of the SK colour camera (not verified here)")
        return [("SK_color", np.array(intrinsics[:2]), np.array(intrinsics[2:]), np.zeros(3))]
    if camera != "bb":
        raise DataError(f"--camera must be bb or sk, got {camera!r}")
    bad = [v for v in views if v not in STB_VIEWS]
    if bad or not views:
        raise DataError(f"--views must name left and/or right, got {list(views)}")
    focal, princpt = np.array(STB_BB_FOCAL), np.array(STB_BB_PRINCPT)
    offsets = {"left": np.zeros(3), "right": np.array([-STB_BASELINE_MM, 0.0, 0.0])}
    return [(f"BB_{v}", focal, princpt, offsets[v]) for v in views]


def convert_stb(src: str | Path, out: str | Path, camera: str = "bb", views: tuple[str, ...] = STB_VIEWS,
                intrinsics: tuple[float, ...] | None = None, link_images: bool = True) -> dict[str, Any]:
    """The STB release at `src` (labels/, sequence folders) -> the parsed layout under `out`."""
    src, out = Path(src), Path(out)
    suffix = "_BB.mat" if camera == "bb" else "_SK.mat"
    view_list = _stb_views(camera, tuple(views), intrinsics)
    label_files = sorted((src / "labels").glob(f"*{suffix}"))
    if not label_files:
        raise DataError(f"{src / 'labels'}: no *{suffix} label files; point at the STB folder holding labels/")
    parts: dict[str, tuple[list[dict], list[dict]]] = {"train": ([], []), "test": ([], [])}
    for path in label_files:
        seq = path.name[: -len(suffix)]
        joints = load_stb_labels(path)  # (F, 21, 3) mm, STB order
        images, annotations = parts["test" if seq in STB_TEST_SEQUENCES else "train"]
        for prefix, focal, princpt, offset in view_list:
            for frame, hand in enumerate(joints):
                image_id = len(images)
                images.append(image_entry(image_id, f"{prefix}_{frame}.png", *STB_SIZE, focal, princpt, seq_name=seq))
                annotations.append(annotation_entry(len(annotations), image_id, "left", hand + offset, focal, princpt,
                                                    np.ones(21)))
    summary: dict[str, Any] = {"out": str(out)}
    for split, (images, annotations) in parts.items():
        if images:
            write_parsed_json(out / "data" / f"STB_{split}.json", images, annotations)
        summary[split] = {"images": len(images), "annotations": len(annotations)}
    write_skeleton(out / "data" / "skeleton.txt", "stb")
    if link_images:
        _link(src, out / "data" / "images")
    return summary

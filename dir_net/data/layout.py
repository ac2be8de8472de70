"""Where the files of one InterHand2.6M split are: release v1.0, v0.0, or explicit paths.

v1.0 (the release papers use; also what `dirnet data synth` writes):
    ROOT/annotations/{split}/InterHand2.6M_{split}_{data,camera,joint_3d,MANO_NeuralAnnot}.json
    ROOT/annotations/{split}/aid_{human,machine}_annot_{split}.txt   (annotation subsets, optional)
    ROOT/images/{split}/Capture{c}/{seq}/cam{camera}/image{frame}.jpg
    ROOT/rootnet_output/rootnet_interhand2.6m_output_{split}[_30fps].json   (optional)
v0.0: ROOT/annotations/{all,human_annot,machine_annot}/InterHand2.6M_{split}_*.json.
The 5 fps and 30 fps releases share this layout; they differ in the RootNet file suffix and in the
download folder name (`InterHand2.6M_{5,30}fps_batch1`), which is accepted as ROOT's only child.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dir_net.errors import DataError

SPLITS = ("train", "val", "test")
ANNOT_SUBSETS = ("all", "human", "machine")
FPS_CHOICES = (5, 30)
_V0_DIRS = {"all": "all", "human": "human_annot", "machine": "machine_annot"}


@dataclass(frozen=True)
class SplitFiles:
    """The source files of one split. `mano`, `rootnet` and `aid_list` may be None."""

    split: str
    data: Path
    camera: Path
    joint_3d: Path
    image_dir: Path  # file_name in data.json is relative to this folder
    mano: Path | None = None
    rootnet: Path | None = None
    aid_list: Path | None = None  # annotation ids of the chosen human/machine subset
    layout: str = "v1.0"

    def sources(self) -> dict[str, Path]:
        """Role -> path of every annotation source the index is built from."""
        roles = {"data": self.data, "camera": self.camera, "joint_3d": self.joint_3d}
        if self.mano is not None:
            roles["mano"] = self.mano
        if self.rootnet is not None:
            roles["rootnet"] = self.rootnet
        return roles


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}': valid splits are {', '.join(SPLITS)}")


def _release_root(root: Path, fps: int) -> Path:
    if (root / "annotations").is_dir():
        return root
    batch = root / f"InterHand2.6M_{fps}fps_batch1"
    if (batch / "annotations").is_dir():
        return batch
    raise DataError(
        f"{root}: no annotations/ folder (nor InterHand2.6M_{fps}fps_batch1/annotations/); "
        "point data.root at the InterHand2.6M root, or generate a synthetic one with "
        "`dirnet data synth DIR`"
    )


def _split_names_on_disk(ann: Path) -> list[str]:
    return sorted(p.name for p in ann.iterdir() if p.is_dir()) if ann.is_dir() else []


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: {what} not found; the download is incomplete or data.root is wrong")
    return path


def _aid_list(ann: Path, split: str, subset: str) -> Path:
    name = f"aid_{subset}_annot_{split}.txt"
    candidates = [ann / split / name, ann / name]
    for c in candidates:
        if c.is_file():
            return c
    raise DataError(
        f"data.annot_subset={subset}: annotation id list {name} not found (looked in "
        f"{', '.join(str(c.parent) for c in candidates)}); use data.annot_subset=all or add the list"
    )


def locate_split(root: str | Path, split: str, fps: int = 5, annot_subset: str = "all") -> SplitFiles:
    """Find the files of `split` under an InterHand2.6M root (v1.0 or v0.0 layout)."""
    check_split(split)
    if fps not in FPS_CHOICES:
        raise DataError(f"data.fps must be one of {FPS_CHOICES}, got {fps}")
    if annot_subset not in ANNOT_SUBSETS:
        raise DataError(f"data.annot_subset must be one of {ANNOT_SUBSETS}, got {annot_subset!r}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data root not found; set data.root or run `dirnet data synth {root}`")
    base = _release_root(root, fps)
    ann = base / "annotations"
    prefix = f"InterHand2.6M_{split}"
    rootnet = base / "rootnet_output" / f"rootnet_interhand2.6m_output_{split}{'_30fps' if fps == 30 else ''}.json"
    rootnet_path = rootnet if rootnet.is_file() else None
    image_dir = base / "images" / split
    v1 = ann / split / f"{prefix}_data.json"
    if v1.is_file():
        d = ann / split
        mano = d / f"{prefix}_MANO_NeuralAnnot.json"
        return SplitFiles(
            split=split,
            data=v1,
            camera=_require(d / f"{prefix}_camera.json", "camera file"),
            joint_3d=_require(d / f"{prefix}_joint_3d.json", "joint_3d file"),
            image_dir=image_dir,
            mano=mano if mano.is_file() else None,
            rootnet=rootnet_path,
            aid_list=None if annot_subset == "all" else _aid_list(ann, split, annot_subset),
            layout="v1.0",
        )
    d = ann / _V0_DIRS[annot_subset]
    v0 = d / f"{prefix}_data.json"
    if v0.is_file():
        mano_name = f"{prefix}_MANO_NeuralAnnot.json"
        mano = next((p for p in (d / mano_name, ann / split / mano_name) if p.is_file()), None)
        return SplitFiles(
            split=split,
            data=v0,
            camera=_require(d / f"{prefix}_camera.json", "camera file"),
            joint_3d=_require(d / f"{prefix}_joint_3d.json", "joint_3d file"),
            image_dir=image_dir,
            mano=mano,
            rootnet=rootnet_path,
            layout="v0.0",
        )
    found = _split_names_on_disk(ann)
    raise DataError(
        f"{root}: no annotations for split '{split}' (looked for {v1} and {v0}); "
        f"folders under {ann}: {', '.join(found) or 'none'}"
    )


def explicit_files(
    data: str | Path,
    camera: str | Path,
    joint_3d: str | Path,
    image_dir: str | Path | None = None,
    mano: str | Path | None = None,
    rootnet: str | Path | None = None,
    split: str = "test",
) -> SplitFiles:
    """SplitFiles from explicit paths (image_dir defaults to the folder of data.json)."""
    check_split(split)
    data = _require(Path(data), "data file")
    return SplitFiles(
        split=split,
        data=data,
        camera=_require(Path(camera), "camera file"),
        joint_3d=_require(Path(joint_3d), "joint_3d file"),
        image_dir=Path(image_dir) if image_dir is not None else data.parent,
        mano=_require(Path(mano), "MANO file") if mano is not None else None,
        rootnet=_require(Path(rootnet), "RootNet file") if rootnet is not None else None,
        layout="explicit",
    )


def sample_files(directory: str | Path, prefix: str = "test_interhand2.6m") -> SplitFiles:
    """The mmpose-style sample set: {prefix}_{data,camera,joint_3d}.json and the images beside them."""
    d = Path(directory)
    mano = d / f"{prefix}_MANO_NeuralAnnot.json"
    return explicit_files(
        d / f"{prefix}_data.json",
        d / f"{prefix}_camera.json",
        d / f"{prefix}_joint_3d.json",
        image_dir=d,
        mano=mano if mano.is_file() else None,
    )

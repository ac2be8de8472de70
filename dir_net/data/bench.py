"""Index benchmark: the columnar index against the plain approach (json.load + a dict per sample).

`run_index_benchmark(n, workdir)` writes an annotation-only split of `n` samples (streamed, no
images), then measures in separate processes (peak RSS from `getrusage(RUSAGE_CHILDREN).ru_maxrss`
of a wrapper that runs exactly one measured child):
  index: conversion time and peak RSS, open time, RSS of a worker after reading `probe` random rows;
  plain: load time and peak RSS (that is also each worker's footprint: every worker holds the list).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dir_net.data.layout import SplitFiles, explicit_files

_WRAPPER = (
    "import resource, subprocess, sys, json\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "if p.returncode: sys.stderr.write(p.stderr); sys.exit(p.returncode)\n"
    "out = json.loads(p.stdout.strip().splitlines()[-1])\n"
    "out['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
    "print(json.dumps(out))\n"
)


def _measured(*args: str) -> dict[str, Any]:
    """Run `python -m dir_net.data.bench <args>` under the RSS-measuring wrapper."""
    cmd = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "dir_net.data.bench", *args]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"benchmark step {args[0]} failed:\n{p.stderr[-4000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _rss_mb(kind: str = "VmRSS") -> float:
    """Resident memory of this process from /proc/self/status: VmRSS (all), RssAnon (private heap,
    what each worker really costs), RssFile (file pages, shared by all workers through the page cache)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(kind + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- synthetic annotation set -----------------------------------------------------------------------
def write_annotations(out_dir: str | Path, n: int, cameras_per_frame: int = 10, seed: int = 0) -> SplitFiles:
    """Stream-write data/camera/joint_3d/MANO JSON files for `n` samples (n / cameras_per_frame frames)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    frames = max(1, n // cameras_per_frame)
    frames_per_capture = 10000
    cams = [str(400000 + k) for k in range(cameras_per_frame)]
    captures = (frames + frames_per_capture - 1) // frames_per_capture
    camera = {
        str(c): {
            "campos": {k: rng.uniform(-500, 500, 3).round(3).tolist() for k in cams},
            "camrot": {k: np.eye(3).tolist() for k in cams},
            "focal": {k: [1250.0, 1250.0] for k in cams},
            "princpt": {k: [167.0, 256.0] for k in cams},
        }
        for c in range(captures)
    }
    (out / "bench_camera.json").write_text(json.dumps(camera))
    types = ("right", "left", "interacting")
    with open(out / "bench_data.json", "w") as f:
        f.write('{"images": [')
        for i in range(n):
            fr, cam = divmod(i, cameras_per_frame)
            cap = fr // frames_per_capture
            img = {"id": i, "file_name": f"Capture{cap}/seq/cam{cams[cam]}/image{fr}.jpg", "width": 334,
                   "height": 512, "capture": cap, "subject": cap, "seq_name": "seq", "camera": cams[cam],
                   "frame_idx": fr}
            f.write(("," if i else "") + json.dumps(img))
        f.write('], "annotations": [')
        valid = json.dumps([[1]] * 42)
        valid_3d = json.dumps([[True]] * 42)
        for i in range(n):
            bbox = json.dumps([float(x) for x in rng.uniform(0, 200, 4).round(4)])
            f.write(("," if i else "") + f'{{"id": {i}, "image_id": {i}, "bbox": {bbox}, "joint_valid": {valid}, '
                    f'"hand_type": "{types[i % 3]}", "hand_type_valid": 1}}')
        f.write("]}")
    with open(out / "bench_joint_3d.json", "w") as f, open(out / "bench_MANO_NeuralAnnot.json", "w") as g:
        f.write("{")
        g.write("{")
        for cap in range(captures):
            f.write(("," if cap else "") + f'"{cap}": {{')
            g.write(("," if cap else "") + f'"{cap}": {{')
            span = range(cap * frames_per_capture, min(frames, (cap + 1) * frames_per_capture))
            for j, fr in enumerate(span):
                world = json.dumps(rng.normal(0, 100, (42, 3)).round(4).tolist())
                f.write(("," if j else "") + f'"{fr}": {{"world_coord": {world}, "joint_valid": {valid_3d}, '
                        f'"hand_type": "interacting", "hand_type_valid": true}}')
                hand = lambda: json.dumps({"pose": rng.normal(0, 0.2, 48).round(5).tolist(),  # noqa: E731
                                           "shape": rng.normal(0, 1, 10).round(5).tolist(),
                                           "trans": rng.normal(0, 0.1, 3).round(5).tolist()})
                g.write(("," if j else "") + f'"{fr}": {{"right": {hand()}, "left": {hand()}}}')
            f.write("}")
            g.write("}")
        f.write("}")
        g.write("}")
    return explicit_files(out / "bench_data.json", out / "bench_camera.json", out / "bench_joint_3d.json",
                          mano=out / "bench_MANO_NeuralAnnot.json", split="train")


# -- measured steps (run in child processes) -----------------------------------------------------------
def _step_convert(data: str, camera: str, joint: str, mano: str, index_dir: str) -> dict:
    from dir_net.data.index import build_index

    t = time.perf_counter()
    build_index(explicit_files(data, camera, joint, mano=mano, split="train"), index_dir)
    return {"seconds": time.perf_counter() - t}


def _read_rows(index: Any, rows: np.ndarray) -> None:
    for r in rows:
        index.file_name(r)
        index.camera(r)
        index.world_joints(r)
        index.mano(r)
        index.col("bbox")[r].copy()


def _step_open(index_dir: str, probe: str) -> dict:
    from dir_net.data.index import InterHandIndex

    base = _rss_mb()
    t = time.perf_counter()
    index = InterHandIndex(index_dir)
    n = len(index)
    index.col("ann_id"), index.col("image_row")
    open_s = time.perf_counter() - t
    rows = np.random.default_rng(0).integers(0, n, int(probe))
    t = time.perf_counter()
    _read_rows(index, rows)
    return {"open_seconds": open_s, "read_seconds": time.perf_counter() - t, "rss_before_mb": base,
            "worker_rss_mb": _rss_mb(), "worker_rss_anon_mb": _rss_mb("RssAnon"),
            "worker_rss_file_mb": _rss_mb("RssFile"), "samples": n}


def _step_plain(data: str, camera: str, joint: str, mano: str, probe: str) -> dict:
    """The official loaders' approach: json.load everything, then one dict per sample."""
    base = _rss_mb()
    t = time.perf_counter()
    d = json.load(open(data))
    cams = json.load(open(camera))
    joints = json.load(open(joint))
    manos = json.load(open(mano))
    images = {img["id"]: img for img in d["images"]}
    datalist = []
    for ann in d["annotations"]:
        img = images[ann["image_id"]]
        cap, cam, fr = str(img["capture"]), img["camera"], str(img["frame_idx"])
        datalist.append({
            "img_path": img["file_name"], "ann_id": ann["id"], "bbox": np.array(ann["bbox"], np.float32),
            **{k: np.array(cams[cap][k][cam], np.float32) for k in ("campos", "camrot", "focal", "princpt")},
            "joint_world": np.array(joints[cap][fr]["world_coord"], np.float32),
            "joint_valid": np.array(ann["joint_valid"], np.float32).reshape(42), "hand_type": ann["hand_type"],
            "mano": manos[cap].get(fr),
        })
    load_s = time.perf_counter() - t
    rows = np.random.default_rng(0).integers(0, len(datalist), int(probe))
    for r in rows:
        datalist[r]["joint_world"].copy()
    return {"seconds": load_s, "rss_before_mb": base, "worker_rss_mb": _rss_mb(),
            "worker_rss_anon_mb": _rss_mb("RssAnon"), "samples": len(datalist)}


_STEPS = {"convert": _step_convert, "open": _step_open, "plain": _step_plain}


def run_index_benchmark(n: int = 1_000_000, workdir: str | Path = "work_dirs/bench_index", probe: int = 10_000,
                        plain: bool = True, seed: int = 0) -> dict[str, Any]:
    """Generate, convert and probe an `n`-sample split; returns the figures (MB, seconds) and ratios."""
    work = Path(workdir)
    t = time.perf_counter()
    files = write_annotations(work / "annotations", n, seed=seed)
    gen_s = time.perf_counter() - t
    srcs = [str(files.data), str(files.camera), str(files.joint_3d), str(files.mano)]
    index_dir = str(work / "index")
    conv = _measured("convert", *srcs, index_dir)
    opened = _measured("open", index_dir, str(probe))
    result: dict[str, Any] = {
        "samples": n,
        "json_mb": sum(Path(p).stat().st_size for p in srcs) / 2**20,
        "index_mb": sum(p.stat().st_size for p in Path(index_dir).glob("*.npy")) / 2**20,
        "generate_seconds": gen_s,
        "index": {"convert_seconds": conv["seconds"], "convert_peak_rss_mb": conv["peak_rss_mb"],
                  "open_seconds": opened["open_seconds"], "read_seconds": opened["read_seconds"],
                  "worker_rss_mb": opened["worker_rss_mb"], "worker_rss_anon_mb": opened["worker_rss_anon_mb"],
                  "worker_rss_file_mb": opened["worker_rss_file_mb"], "worker_peak_rss_mb": opened["peak_rss_mb"]},
    }
    if plain:
        pl = _measured("plain", *srcs, str(probe))
        result["plain"] = {"load_seconds": pl["seconds"], "peak_rss_mb": pl["peak_rss_mb"],
                           "worker_rss_mb": pl["worker_rss_mb"], "worker_rss_anon_mb": pl["worker_rss_anon_mb"]}
        result["memory_ratio_worker"] = pl["worker_rss_mb"] / opened["worker_rss_mb"]
        result["memory_ratio_worker_private"] = pl["worker_rss_anon_mb"] / opened["worker_rss_anon_mb"]
        result["memory_ratio_peak"] = pl["peak_rss_mb"] / conv["peak_rss_mb"]
    result["targets"] = {
        "open_under_1s": result["index"]["open_seconds"] < 1.0,
        "worker_rss_under_300mb": result["index"]["worker_rss_mb"] < 300.0,
        **({"plain_over_20x_worker_memory": result["memory_ratio_worker"] >= 20.0} if plain else {}),
    }
    return result


if __name__ == "__main__":
    step, *rest = sys.argv[1:]
    print(json.dumps(_STEPS[step](*rest)))

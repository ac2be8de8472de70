"""`dirnet data synth | index | verify | prepare | convert-rhd | convert-stb`: build, check and prepare
InterHand2.6M-format data, and STB / RHD in the parsed format of the InterNet release."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dir_net.commands.config import add_config_arguments

DATASETS = ("interhand26m", "stb", "rhd")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="InterHand2.6M data: synthesise, index, verify, prepare")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    synth = sub.add_parser("synth", help="write a synthetic dataset in the InterHand2.6M v1.0 format (~0.1 s per "
                           "image on a 2-core CPU: --frames 400 x 4 cameras x 3 splits, ~7 min)")
    synth.add_argument("out", help="output root (annotations/, images/)")
    synth.add_argument("--frames", type=int, default=64, help="frames per split (each seen by every camera)")
    synth.add_argument("--cameras", type=int, default=4, help="calibrated cameras per capture")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--frames-per-sequence", type=int, default=None,
                       help="frames per sequence (default: up to 8, interpolated between two key poses); 1 gives "
                            "every frame its own pose and background, the variety a model needs to generalise")
    synth.add_argument("--gestures", type=int, default=None,
                       help="draw fingers from a library of K gestures shared by all captures and splits, as "
                            "InterHand2.6M's subjects perform one gesture list (default: free PCA poses)")
    synth.add_argument("--splits", default="train,val,test", help="comma-separated splits")
    synth.add_argument("--force", action="store_true", help="replace a different dataset (or any content) in OUT; "
                       "without it OUT must be empty, or hold the same dataset (then nothing is done)")
    synth.add_argument("--dataset", default="interhand26m", choices=DATASETS,
                       help="stb / rhd: a parsed STB / RHD set plus the original release layout (--frames per split)")
    synth.set_defaults(func=_synth)
    _register_converters(sub)

    for name, helptext in (
        ("index", "build (or refresh) the columnar index of a split"),
        ("verify", "report missing, unreadable and black images and annotation problems"),
        ("prepare", "index + verify + render the seg/dense maps of the DIR pipeline"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("root", nargs="?", default=None, help="InterHand2.6M root, or a folder of "
                       "test_interhand2.6m_*.json samples (default: data.root)")
        p.add_argument("--split", default="train")
        p.add_argument("--rebuild", action="store_true", help="rebuild the index even if it is current")
        p.add_argument("--dataset", default=None, choices=DATASETS, help="default: data.dataset")
        if name != "index":
            p.add_argument("--workers", type=int, default=1, help="processes for image checks / rendering")
        if name == "prepare":
            p.add_argument("--no-aux", action="store_true", help="skip the seg/dense maps")
            p.add_argument("--force", action="store_true", help="re-render existing seg/dense maps")
        add_config_arguments(p)
        p.set_defaults(func={"index": _index, "verify": _verify, "prepare": _prepare}[name])


def _files(args: argparse.Namespace):
    from dir_net.config import load_config
    from dir_net.data.layout import locate_split, sample_files

    cfg = load_config(args.config, args.overrides)
    root = Path(args.root or cfg.data.root)
    if (root / "test_interhand2.6m_data.json").is_file():
        return cfg, sample_files(root)
    return cfg, locate_split(root, args.split, int(cfg.data.fps), cfg.data.annot_subset)


def _open(args: argparse.Namespace):
    from dir_net.data.index import open_index

    cfg = _stb_rhd_config(args)
    if cfg is not None:
        from dir_net.data.stb_rhd.parsed import locate, open_from_config

        return cfg, locate(args.root or cfg.data.root, cfg.data.dataset, args.split), open_from_config(
            cfg, args.split, args.root, rebuild=args.rebuild)
    cfg, files = _files(args)
    return cfg, files, open_index(files, cfg.data.cache_dir, rebuild=args.rebuild)


def _index(args: argparse.Namespace) -> int:
    _, _, index = _open(args)
    keys = ("split", "layout", "num_samples", "num_images", "num_frames", "num_mano_frames", "counts")
    keys += tuple(k for k in ("dataset", "joint_order", "stb_root", "skeleton_names") if k in index.meta)
    meta = {k: index.meta[k] for k in keys}
    print(json.dumps({"index": str(index.dir), **meta}, indent=2))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from dir_net.data.quality import verify

    _, _, index = _open(args)
    print(json.dumps(verify(index, args.workers), indent=2))
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from dir_net.data.quality import prepare, verify

    if _stb_rhd_config(args) is not None:  # no MANO, no seg/dense maps: index + verify
        _, _, index = _open(args)
        print(json.dumps({"index": str(index.dir), "verify": verify(index, args.workers)}, indent=2))
        return 0
    cfg, files = _files(args)
    report = prepare(cfg, files, workers=args.workers, aux=not args.no_aux, force=args.force, rebuild=args.rebuild)
    print(json.dumps(report, indent=2))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from dir_net.data.synth import existing_dataset, generate

    if args.dataset != "interhand26m":
        from dir_net.data.synth_stb_rhd import generate as generate_stb_rhd

        print(json.dumps(generate_stb_rhd(args.out, args.dataset, frames=args.frames, seed=args.seed), indent=2))
        return 0
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    request = dict(frames=args.frames, seed=args.seed, splits=splits, cameras=args.cameras,
                   frames_per_sequence=args.frames_per_sequence, gestures=args.gestures)
    summary = existing_dataset(args.out, **request, force=args.force)
    if summary is not None:
        print(f"{args.out}: already holds this synthetic dataset (same arguments); nothing to do "
              "(--force regenerates it)", file=sys.stderr)
    else:
        summary = generate(args.out, **request)
    print(json.dumps(summary, indent=2))
    return 0


def _stb_rhd_config(args: argparse.Namespace):
    """The config with data.dataset from --dataset when it names STB / RHD, else None."""
    from dir_net.config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.dataset:
        cfg.data["dataset"] = args.dataset
    return cfg if cfg.data.dataset != "interhand26m" else None


def _register_converters(sub: argparse._SubParsersAction) -> None:
    rhd = sub.add_parser("convert-rhd", help="RHD_published_v2 (anno_*.pickle) -> the parsed RHD format of InterNet")
    rhd.add_argument("src", help="RHD_published_v2 folder ({training,evaluation}/anno_*.pickle, color/)")
    rhd.add_argument("out", help="output dataset folder (data/RHD_*.json; use as data.root)")
    rhd.add_argument("--hands", default="dominant", choices=("dominant", "visible"),
                     help="dominant: one hand per image (more visible joints); "
                          "visible: every hand with a visible joint")
    rhd.add_argument("--no-link", action="store_true", help="do not link the image folders into out/data/")
    rhd.set_defaults(func=_convert_rhd)
    stb = sub.add_parser("convert-stb", help="STB (labels/*_BB.mat) -> the parsed STB format of InterNet")
    stb.add_argument("src", help="STB folder (labels/{seq}_BB.mat, {seq}/BB_left_{i}.png ...)")
    stb.add_argument("out", help="output dataset folder (data/STB_{train,test}.json; use as data.root)")
    stb.add_argument("--camera", default="bb", choices=("bb", "sk"),
                     help="Bumblebee stereo (bb) or RealSense (sk) labels")
    stb.add_argument("--views", default="left,right", help="bb views to write: left,right | left | right")
    stb.add_argument("--intrinsics", default=None, help="sk only: fx,fy,cx,cy of the SK colour camera")
    stb.add_argument("--no-link", action="store_true", help="do not link the STB folder as out/data/images")
    stb.set_defaults(func=_convert_stb)
    depths = sub.add_parser("root-depths",
                            help="STB / RHD: a model.internet.rootnet_file with the official root depths")
    depths.add_argument("root", nargs="?", default=None, help="the STB / RHD folder (default: data.root)")
    depths.add_argument("--dataset", default=None, choices=DATASETS[1:], help="default: data.dataset")
    depths.add_argument("--split", default="test")
    depths.add_argument("--source", default="gt", choices=("gt", "rootnet"),
                        help="gt: the GT root z whatever its valid flag; rootnet: the release's RootNet depth and box")
    depths.add_argument("--out", required=True, help="output JSON for model.internet.rootnet_file")
    depths.add_argument("--rebuild", action="store_true", help="rebuild the index even if it is current")
    add_config_arguments(depths)
    depths.set_defaults(func=_root_depths)


def _convert_rhd(args: argparse.Namespace) -> int:
    from dir_net.data.stb_rhd.originals import convert_rhd

    print(json.dumps(convert_rhd(args.src, args.out, args.hands, link_images=not args.no_link), indent=2))
    return 0


def _convert_stb(args: argparse.Namespace) -> int:
    from dir_net.data.stb_rhd.originals import convert_stb
    from dir_net.errors import DataError

    intrinsics = None
    if args.intrinsics:
        try:
            intrinsics = tuple(float(v) for v in args.intrinsics.split(","))
        except ValueError:
            raise DataError(f"--intrinsics must be fx,fy,cx,cy numbers, got {args.intrinsics!r}") from None
    views = tuple(v.strip() for v in args.views.split(",") if v.strip())
    summary = convert_stb(args.src, args.out, args.camera, views, intrinsics, link_images=not args.no_link)
    print(json.dumps(summary, indent=2))
    return 0


def _root_depths(args: argparse.Namespace) -> int:
    from dir_net.data.stb_rhd.parsed import root_depth_entries
    from dir_net.errors import ConfigError
    from dir_net.utils.io import write_json

    if _stb_rhd_config(args) is None:
        raise ConfigError("dirnet data root-depths is for STB / RHD: pass --dataset stb|rhd or set data.dataset")
    _, _, index = _open(args)
    entries = root_depth_entries(index, args.source)
    write_json(args.out, entries, indent=None)
    print(json.dumps({"out": args.out, "entries": len(entries), "source": args.source}))
    return 0

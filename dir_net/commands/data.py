"""`dirnet data synth | index | verify | prepare`: build, check and prepare InterHand2.6M-format data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dir_net.commands.config import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="InterHand2.6M data: synthesise, index, verify, prepare")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    synth = sub.add_parser("synth", help="write a synthetic dataset in the InterHand2.6M v1.0 format")
    synth.add_argument("out", help="output root (annotations/, images/)")
    synth.add_argument("--frames", type=int, default=64, help="frames per split (each seen by every camera)")
    synth.add_argument("--cameras", type=int, default=4, help="calibrated cameras per capture")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--splits", default="train,val,test", help="comma-separated splits")
    synth.add_argument("--force", action="store_true", help="replace a different dataset (or any content) in OUT; "
                       "without it OUT must be empty, or hold the same dataset (then nothing is done)")
    synth.set_defaults(func=_synth)

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

    cfg, files = _files(args)
    return cfg, files, open_index(files, cfg.data.cache_dir, rebuild=args.rebuild)


def _index(args: argparse.Namespace) -> int:
    _, _, index = _open(args)
    keys = ("split", "layout", "num_samples", "num_images", "num_frames", "num_mano_frames", "counts")
    meta = {k: index.meta[k] for k in keys}
    print(json.dumps({"index": str(index.dir), **meta}, indent=2))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from dir_net.data.quality import verify

    _, _, index = _open(args)
    print(json.dumps(verify(index, args.workers), indent=2))
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from dir_net.data.quality import prepare

    cfg, files = _files(args)
    report = prepare(cfg, files, workers=args.workers, aux=not args.no_aux, force=args.force, rebuild=args.rebuild)
    print(json.dumps(report, indent=2))
    return 0


def _synth(args: argparse.Namespace) -> int:
    from dir_net.data.synth import existing_dataset, generate

    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    request = dict(frames=args.frames, seed=args.seed, splits=splits, cameras=args.cameras)
    summary = existing_dataset(args.out, **request, force=args.force)
    if summary is not None:
        print(f"{args.out}: already holds this synthetic dataset (same arguments); nothing to do "
              "(--force regenerates it)", file=sys.stderr)
    else:
        summary = generate(args.out, **request)
    print(json.dumps(summary, indent=2))
    return 0

"""`dirnet convert --from SOURCE SRC DST.pt`: public checkpoints in, dir_net checkpoints out."""

from __future__ import annotations

import argparse
import importlib


def register(subparsers: argparse._SubParsersAction) -> None:
    from dir_net.convert import SOURCES

    parser = subparsers.add_parser(
        "convert", help="convert a public checkpoint (official DIR / InterNet, mmpose) into a dir_net checkpoint",
        description="Reads a released checkpoint and writes a dir_net checkpoint that `dirnet eval/demo/render "
                    "--checkpoint` load without flags. A file that does not fit the source format is refused "
                    "with one line (exit 2) and nothing is written.",
    )
    parser.add_argument("--from", dest="source", required=True, choices=sorted(SOURCES), help="source format")
    parser.add_argument("src", help="the public checkpoint file")
    parser.add_argument("dst", help="output dir_net checkpoint (.pt)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="source-specific option (see the source's notes in docs/CONVERT.md)")
    parser.set_defaults(func=_convert)


def _convert(args: argparse.Namespace) -> int:
    from dir_net.convert import ConvertError, convert_file, write_converted

    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConvertError(f"--option {item!r}: expected KEY=VALUE")
        options[key] = value
    converted = convert_file(args.source, args.src, options)
    dst = write_converted(converted, args.dst, args.source, args.src)
    for note in converted.notes:
        print(f"note: {note}")
    print(f"wrote {dst} ({len(converted.model_state)} tensors, model {converted.config['model']['name']})")
    return 0

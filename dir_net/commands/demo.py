"""`dirnet demo`: two hands from one image and a box around them (scripts/demo.sh)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dir_net.commands.config import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run DIR on one image: overlay, side view, meshes and MANO parameters",
        description="Crops a square around --bbox, runs DIR and writes overlay.png, panel.png, side.png, "
                    "meshes/hands_{right,left,both}.{obj,ply} and mano_params.json into --out (default: "
                    "{image stem}_demo/ in the current directory). Without "
                    "--checkpoint the weights are untrained (said in the log and in the JSON).")
    p.add_argument("--image", required=True, help="RGB image (PNG, JPEG, ...)")
    p.add_argument("--bbox", required=True,
                   help="box around both hands: x,y,w,h in pixels, inside the image (write --bbox=x,y,w,h)")
    p.add_argument("--checkpoint", help="DIR checkpoint .pt (its config is used when --config is absent)")
    p.add_argument("--out", help="output directory (default: ./{image stem}_demo)")
    add_config_arguments(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from dir_net.config import load_config
    from dir_net.render.demo import read_inputs, run_demo

    read_inputs(args.image, args.bbox)  # bad inputs fail before the checkpoint is read
    if args.checkpoint is not None and args.config is None:
        from dir_net.engine.evaluation import config_from_checkpoint

        cfg = config_from_checkpoint(args.checkpoint, args.overrides)
    else:
        cfg = load_config(args.config, args.overrides)
    out = args.out or f"{Path(args.image).stem}_demo"
    record = run_demo(cfg, args.image, args.bbox, out, args.checkpoint)
    if record["untrained"]:
        print(f"note: {record['weights']}")
    for path in record["files"].values():
        print(path)
    return 0

"""`dirnet eval [run]` (checkpoint -> predictions, metrics, table, PCK plot) and the stand-alone
toolkit's `dirnet eval score` / `score2d` / `plot-pck` (delegated to eval.cli).

`dirnet eval --config CFG --checkpoint CKPT --split test` is `dirnet eval run ...`: without an
action name, `run` is implied.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from dir_net.commands.config import add_config_arguments

DELEGATED = {
    "score": "score predictions.npz against a groundtruth_*.npz (python -m eval score)",
    "score2d": "score 2D keypoint files (python -m eval score2d)",
    "plot-pck": "PCK curves of several prediction files (python -m eval plot-pck)",
}
ACTIONS = ("run", *DELEGATED)


class _EvalParser(argparse.ArgumentParser):
    """The `eval` parser: arguments that do not start with an action name are `run`'s."""

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        args = list(sys.argv[1:] if args is None else args)
        if args and args[0] not in ACTIONS and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_known_args(args, namespace)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate checkpoints or score prediction files",
        description="dirnet eval [run] --checkpoint CKPT [--config CFG] [--split S]: evaluate a checkpoint "
                    "(run is implied); score / score2d / plot-pck: the stand-alone toolkit.",
    )
    parser.__class__ = _EvalParser  # argparse builds sub-parsers itself; only parsing differs
    sub = parser.add_subparsers(dest="eval_action", metavar="ACTION", required=True,
                                parser_class=argparse.ArgumentParser)
    run = sub.add_parser(
        "run", help="run a checkpoint over a split and score it (the default action; scripts/eval.sh)",
        description="Writes predictions.npz, groundtruth_{mano,annot,hand2d}.npz (one per ground truth "
                    "scored; millimetres), metrics.json, metrics.md, metrics.csv and pck.png.",
    )
    add_config_arguments(run)
    run.add_argument("--checkpoint", required=True, help="checkpoint .pt (its config is used when --config is absent)")
    run.add_argument("--split", help="dataset split (default: evaluation.split)")
    run.add_argument("--out", help="output directory (default: {run}/eval/{split})")
    run.set_defaults(func=_run)
    for action, text in DELEGATED.items():
        # prefix_chars="+" passes every option (also --help) through to eval.cli untouched
        delegate = sub.add_parser(action, help=text, prefix_chars="+", add_help=False)
        delegate.add_argument("args", nargs=argparse.REMAINDER)
        delegate.set_defaults(func=_delegate, eval_cli_action=action)


def _run(args: argparse.Namespace) -> int:
    from dir_net.config import load_config
    from dir_net.engine.runtime import check_engine_config

    if args.config is not None:
        cfg = load_config(args.config, args.overrides)
    else:
        from dir_net.engine.evaluation import config_from_checkpoint

        cfg = config_from_checkpoint(args.checkpoint, args.overrides)
    check_engine_config(cfg)

    from dir_net.engine.distributed import shutdown_distributed
    from dir_net.engine.evaluation import default_out_dir, evaluate_checkpoint

    split = args.split or cfg.evaluation.split
    out_dir = Path(args.out) if args.out else default_out_dir(args.checkpoint, split)
    try:
        result = evaluate_checkpoint(cfg, args.checkpoint, split, out_dir)
    finally:
        shutdown_distributed()
    if result.files:
        print(result.files["metrics.md"].read_text(), end="")
        print(f"results in {result.out_dir}")
    return 0


def _delegate(args: argparse.Namespace) -> int:
    from eval.cli import main

    return main([args.eval_cli_action, *args.args])

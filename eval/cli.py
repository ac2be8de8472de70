"""Command line: `python -m eval score ...`, `python -m eval plot-pck ...` and
`python -m eval score2d ...` (2D keypoints, eval.keypoints2d).

`add_arguments(parser)` adds the subcommands to any argparse parser (so `dirnet eval` can reuse
them); each subcommand sets `func`, which takes the parsed namespace and returns an exit code
(0 ok, 2 bad input with a one-line message on stderr).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from eval.evaluator import METRIC_NAMES, evaluate
from eval.io import (
    Arrays, InputError, load_npz, match_rows, nonfinite_rows, select_rows, write_json,
)
from eval.keypoints2d import add_score2d_parser
from eval.protocols import PROTOCOLS

UNITS = {
    "mpjpe": "mm", "mpjpe_single": "mm", "mpjpe_interacting": "mm", "mpjpe_all": "mm",
    "mpvpe": "mm", "mrrpe": "mm", "miaa": "px", "auc": "", "handedness_acc": "",
    "ap_h": "", "iv": "cm^3",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `score` and `plot-pck` subcommands."""
    sub = parser.add_subparsers(dest="eval_command", metavar="COMMAND", required=True)
    score = sub.add_parser("score", help="score predictions.npz against groundtruth.npz")
    score.add_argument("--pred", required=True, help="predictions .npz (millimetres)")
    score.add_argument("--gt", required=True, help="ground-truth .npz (millimetres)")
    score.add_argument("--protocol", default="all", choices=[*PROTOCOLS, "all"],
                       help="protocol name, or 'all' for every protocol side by side")
    score.add_argument("--json", help="also write {protocol: {metric: value}} to this file")
    score.add_argument("--drop-invalid", action="store_true",
                       help="exclude rows with NaN/inf and ground-truth ids without a prediction "
                            "(both reported) instead of failing")
    score.add_argument("--no-iv", action="store_true",
                       help="skip the interpenetration volume (the slowest metric)")
    score.set_defaults(func=_guarded(run_score))
    plot = sub.add_parser("plot-pck", help="PCK curves of several prediction files, one axis")
    plot.add_argument("--gt", required=True, help="ground-truth .npz")
    plot.add_argument("--pred", required=True, action="append",
                      help="predictions .npz; repeat for several runs")
    plot.add_argument("--label", action="append",
                      help="legend label per --pred, in order (default: file names)")
    plot.add_argument("--protocol", default="mcp_scaled", choices=list(PROTOCOLS))
    plot.add_argument("--out", required=True, help="figure path (.png, .pdf or .svg)")
    plot.add_argument("--title")
    plot.add_argument("--drop-invalid", action="store_true",
                      help="exclude rows with NaN/inf (reported) instead of failing")
    plot.set_defaults(func=_guarded(run_plot_pck))
    add_score2d_parser(sub, _guarded)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval", description="Two-hand pose and mesh evaluation (mm, px)."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


class _StderrWarnings(logging.Handler):
    """Warnings of the toolkit's loggers ('eval.*') as `eval: warning: ...` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"eval: warning: {record.getMessage()}", file=sys.stderr)


def _guarded(command: Callable[[argparse.Namespace], int]
             ) -> Callable[[argparse.Namespace], int]:
    """Turn InputError into a one-line message on stderr and exit code 2; logged warnings go to
    stderr as `eval: warning:` lines (not through the host program's log handlers)."""

    def run(args: argparse.Namespace) -> int:
        logger = logging.getLogger("eval")
        handler, propagate = _StderrWarnings(logging.WARNING), logger.propagate
        logger.addHandler(handler)
        logger.propagate = False
        try:
            return command(args)
        except InputError as exc:
            print(f"eval: error: {exc}", file=sys.stderr)
            return 2
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate

    run.__name__ = command.__name__
    return run


def load_pair(pred_path: str, gt_path: str, drop_invalid: bool) -> tuple[Arrays, Arrays]:
    """Load both files, match rows by id; notes to stderr. With `drop_invalid`, ids with NaN/inf
    and ground-truth ids without a prediction are left out (reported) instead of failing."""
    pred = load_npz(pred_path, "pred", check_finite=not drop_invalid)
    gt = load_npz(gt_path, "gt", check_finite=not drop_invalid)
    if drop_invalid:
        bad_ids = np.union1d(pred["ids"][nonfinite_rows(pred)], gt["ids"][nonfinite_rows(gt)])
        if len(bad_ids):
            shown = ", ".join(str(i) for i in bad_ids[:10].tolist())
            print(f"eval: dropped {len(bad_ids)} ids with NaN/inf values "
                  f"({shown}{', ...' if len(bad_ids) > 10 else ''})", file=sys.stderr)
            pred = select_rows(pred, ~np.isin(pred["ids"], bad_ids))
            gt = select_rows(gt, ~np.isin(gt["ids"], bad_ids))
        gt = _drop_unpredicted(pred, gt, gt_path)
    pred, notes = match_rows(pred, gt, pred_path, gt_path)
    for note in notes:
        print(f"eval: note: {note}", file=sys.stderr)
    return pred, gt


def _drop_unpredicted(pred: Arrays, gt: Arrays, gt_path: str) -> Arrays:
    """--drop-invalid: ground-truth rows whose id has no prediction are dropped (reported)."""
    missing = ~np.isin(gt["ids"], pred["ids"])
    if not missing.any():
        return gt
    if missing.all():
        raise InputError(f"{gt_path}: no ground-truth id has a prediction; nothing to score")
    ids = gt["ids"][missing]
    shown = ", ".join(str(i) for i in ids[:10].tolist())
    print(f"eval: dropped {len(ids)} of {len(gt['ids'])} ground-truth ids in {gt_path} that have no "
          f"prediction ({shown}{', ...' if len(ids) > 10 else ''})", file=sys.stderr)
    return select_rows(gt, ~missing)


def run_score(args: argparse.Namespace) -> int:
    pred, gt = load_pair(args.pred, args.gt, args.drop_invalid)
    names = list(PROTOCOLS) if args.protocol == "all" else [args.protocol]
    if "moon" in names and Path(args.gt).name == "groundtruth_mano.npz":  # as `dirnet eval` names it
        print(f"eval: warning: {args.gt}: protocol moon is defined on the annotated joints with joint_valid "
              "(groundtruth_annot.npz, every frame); on these MANO-regressed joints of interacting frames its "
              "numbers are not comparable with published moon results", file=sys.stderr)
    results = evaluate(pred, gt, names, iv=not args.no_iv,
                       pred_source=args.pred, gt_source=args.gt).compute()
    print(format_table(results))
    if args.json:
        write_json(args.json, results)
    return 0


def run_plot_pck(args: argparse.Namespace) -> int:
    from eval.plots import plot_pck_curves

    labels = args.label or [Path(p).stem for p in args.pred]
    if len(labels) != len(args.pred):
        raise InputError(f"got {len(labels)} --label for {len(args.pred)} --pred; give one each")
    curves = {}
    for label, pred_path in zip(labels, args.pred):
        pred, gt = load_pair(pred_path, args.gt, args.drop_invalid)
        found = evaluate(pred, gt, [args.protocol], iv=False,
                         pred_source=pred_path, gt_source=args.gt).pck_curves()
        if args.protocol not in found:
            raise InputError(f"{pred_path}: no joint counts under protocol {args.protocol}")
        curves[label] = found[args.protocol]
    plot_pck_curves(curves, args.out, title=args.title or f"PCK, protocol {args.protocol}")
    print(f"wrote {args.out}")
    return 0


def format_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """Metrics as rows, protocols as columns; '-' where a protocol has no value."""
    names = list(results)
    metrics = [m for m in METRIC_NAMES if any(m in r for r in results.values())]
    header = ["metric", "unit", *names]
    rows = [[m, UNITS[m], *(_fmt(m, results[n].get(m)) for n in names)] for m in metrics]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if UNITS[metric] == "" else f"{value:.2f}"

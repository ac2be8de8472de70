"""PCK curves of several runs on one axis (matplotlib, Agg, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from eval.evaluator import PckCurve
from eval.io import InputError, atomic_output
from eval.metrics import auc

FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def plot_pck_curves(curves: Mapping[str, PckCurve], path: str | os.PathLike,
                    title: str | None = None) -> None:
    """Draw one line per run (legend: label and AUC) and save to .png, .pdf or .svg atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError(f"{path}: figure must end in one of {', '.join(FIGURE_SUFFIXES)}")
    if not curves:
        raise InputError(f"{path}: no PCK curves to plot")
    figure = Figure(figsize=(5, 4), dpi=150)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    for label, curve in curves.items():
        area = auc(curve.thresholds_mm, curve.pck)
        axis.plot(curve.thresholds_mm, curve.pck, label=f"{label} (AUC {area:.3f})")
    axis.set_xlabel("error threshold (mm)")
    axis.set_ylabel("PCK")
    axis.set_xlim(0, 50)
    axis.set_ylim(0, 1)
    axis.grid(True, alpha=0.3)
    axis.legend(loc="lower right")
    if title:
        axis.set_title(title)
    figure.tight_layout()
    with atomic_output(path, path.suffix) as tmp:  # the suffix tells savefig the format
        figure.savefig(tmp)

#!/usr/bin/env bash
# Regenerate the example figures in docs/figures/ from synthetic data (about a minute on a CPU):
#   render_panel.png  one sample: input | prediction | side | ground truth | side (`dirnet render`)
#   render_grid.png   several samples (`dirnet render`)        render_pck.png  PCK curves of two runs
#   demo_panel.png    `dirnet demo` (untrained weights)         synthetic_hands.png  both synthetic hands
#
#   bash scripts/make_doc_figures.sh [--out docs/figures] [--work SCRATCH_DIR]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" "$repo/scripts/make_doc_figures.py" "$@"

#!/usr/bin/env bash
# Evaluate a checkpoint on a split: predictions.npz, groundtruth_{mano,annot,hand2d}.npz (each protocol is
# scored on its own ground truth, docs/EVALUATION.md), metrics (json, md, csv), pck.png.
#
#   bash scripts/eval.sh --checkpoint work_dirs/RUN/checkpoints/best.pt [--config CONFIG] [--split test] [--out DIR] [key=value ...]
#
# Without --config the checkpoint's own resolved config is used. Output: {run}/eval/{split}/ unless --out.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m dir_net eval run "$@"

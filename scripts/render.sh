#!/usr/bin/env bash
# Figures of a predictions file on its dataset split: per-sample panels (input | prediction | side
# view | ground truth | side view), a grid, meshes (.obj/.ply), a turntable and PCK curves.
#
#   bash scripts/render.sh --pred work_dirs/RUN/eval/test/predictions.npz --data data/InterHand2.6M \
#       --split test --out figures/ [--ids 1,2,3 | --limit 8] [--formats png,pdf] [--size 256] \
#       [--turntable ID] [--pck A/predictions.npz --pck B/predictions.npz --gt groundtruth.npz] [key=value ...]
#
# Root-relative predictions (DIR) are placed in the camera frame by fitting their joints_2d
# (--place auto|camera|fit2d|gt-root). See `dirnet render --help`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m dir_net render "$@"

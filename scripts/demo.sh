#!/usr/bin/env bash
# DIR on one image: crop around a box, overlay on the full image, side view, meshes, MANO parameters.
#
#   bash scripts/demo.sh --image hands.jpg --bbox=x,y,w,h --out demo/ [--checkpoint best.pt] [--config CONFIG] [key=value ...]
#
# Writes overlay.png, panel.png, side.png, meshes/hands_{right,left,both}.{obj,ply}, mano_params.json.
# Without --checkpoint the weights are untrained (the log and the JSON say so).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m dir_net demo "$@"

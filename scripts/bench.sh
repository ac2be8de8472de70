#!/usr/bin/env bash
# Benchmarks: prints a table and writes a JSON file (docs/BENCHMARKS.md lists every figure).
#
#   bash scripts/bench.sh infer [--device cuda --dtype bf16 --channels-last --compile --cuda-graphs --batch 256]
#   bash scripts/bench.sh train [--device cuda --dtype bf16 --batch 64]
#   bash scripts/bench.sh data  [--workers 0,1,2,4,8]
#   bash scripts/bench.sh index [--n 1000000 | --no-plain]
#   bash scripts/bench.sh eval  [--frames 4096 --iv-frames 128]
#   bash scripts/bench.sh profile [--model dir --batch 8]
#   bash scripts/bench.sh all   [--device cuda --dtype bf16]   # ~25 min and ~10 GB RAM on a 2-core CPU
#   bash scripts/bench.sh all --smoke                             # ~1 min: every bench runs
#
# A bf16 matmul peak is measured only for --dtype bf16 (minutes on a CPU without fast bf16).
# Every bench takes --json OUT (default work_dirs/bench/BENCH_DEVICE_DATE.json). PYTHON picks the interpreter.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
if [[ $# -eq 0 ]]; then
  exec "${PYTHON:-python}" -m dir_net bench --help
fi
exec "${PYTHON:-python}" -m dir_net bench "$@"

#!/usr/bin/env bash
# Train a model: one process per visible GPU (one CPU process when there is none) via torchrun.
#
#   bash scripts/train.sh                                   # quickstart: synthetic data -> train -> eval -> figure
#   bash scripts/train.sh CONFIG [key=value ...] [--resume [CKPT]]
#   bash scripts/train.sh CONFIG --nnodes 2 --node_rank 0 --rdzv_endpoint HOST:PORT [--rdzv_id ID] ...
#
# torchrun options (--nnodes, --node_rank, --nproc_per_node, --rdzv_*, --master_addr, --master_port,
# --max_restarts) are passed to torchrun; everything else goes to `dirnet train`. Before torchrun
# starts, `dirnet train --check` checks the config (keys, values, protocols), data.root, the run
# directory (a fresh run refuses one with checkpoints: --resume) and the memory estimate (a CPU run
# that will not fit is refused, DIRNET_SKIP_MEMORY_CHECK=1 starts it anyway): a problem is one line
# and exit code 2. torchrun runs under dir_net.engine.launch: a worker's user error is printed once
# (exit 2), a worker killed by the kernel is named out of memory (exit 137), any other failure is
# one line after the worker's traceback (exit 1).
# NPROC_PER_NODE overrides the process count; PYTHON picks the interpreter.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python}"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"

usage() {
  echo "usage: bash scripts/train.sh                          (quickstart)" >&2
  echo "       bash scripts/train.sh CONFIG [key=value ...] [--resume [CKPT]] [torchrun options]" >&2
}

if [[ $# -eq 0 ]]; then
  cd "$repo"
  exec "$python" -m dir_net quickstart --config configs/quickstart.yaml
fi

launcher=()
train_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nnodes|--node_rank|--node-rank|--nproc_per_node|--nproc-per-node|--rdzv_*|--rdzv-*|--master_addr|--master-addr|--master_port|--master-port|--max_restarts|--max-restarts)
      if [[ $# -lt 2 ]]; then echo "train.sh: $1 needs a value" >&2; exit 2; fi
      launcher+=("$1" "$2"); shift 2 ;;
    --nnodes=*|--node_rank=*|--node-rank=*|--nproc_per_node=*|--nproc-per-node=*|--rdzv_*=*|--rdzv-*=*|--master_addr=*|--master-addr=*|--master_port=*|--master-port=*|--max_restarts=*|--max-restarts=*)
      launcher+=("$1"); shift ;;
    *)
      train_args+=("$1"); shift ;;
  esac
done

if [[ ${#train_args[@]} -eq 0 ]]; then
  echo "train.sh: no config file given" >&2
  usage
  exit 2
fi
config="${train_args[0]}"
rest=("${train_args[@]:1}")
if [[ "$config" == -* ]]; then
  echo "train.sh: the first argument must be a config file (configs/*.yaml), got '$config'" >&2
  usage
  exit 2
fi
# a bad key, value, data root, run directory or memory estimate: one line from dirnet and exit 2,
# before torchrun starts any process
nproc=""
for ((i = 0; i < ${#launcher[@]}; i++)); do  # processes per machine, for the memory estimate
  case "${launcher[i]}" in
    --nproc_per_node|--nproc-per-node) nproc="${launcher[i + 1]}" ;;
    --nproc_per_node=*|--nproc-per-node=*) nproc="${launcher[i]#*=}" ;;
  esac
done
if [[ -z "$nproc" ]]; then
  nproc="${NPROC_PER_NODE:-$("$python" -c 'import torch; print(max(torch.cuda.device_count(), 1))')}"
  launcher+=(--nproc_per_node "$nproc")
fi
NPROC_PER_NODE="$nproc" "$python" -m dir_net train --check --config "$config" "${rest[@]}" >/dev/null || exit 2

if [[ " ${launcher[*]} " != *"--nnodes"* && " ${launcher[*]} " != *"--rdzv"* && " ${launcher[*]} " != *"--master"* ]]; then
  launcher+=(--standalone)  # one machine: a free rendezvous port, no clash with other jobs
fi

exec "$python" -m dir_net.engine.launch "${launcher[@]}" -m dir_net train --config "$config" "${rest[@]}"

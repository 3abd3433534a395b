#!/usr/bin/env bash
# MNIST MLP, one epoch with Adam, in optbench and in PyTorch on the same machine, alternating
# runs (these machines are noisy) and reporting medians and their ratio.
#
#   scripts/bench/mnist.sh [DATA_DIR] [ROUNDS] [THREADS]
#
# DATA_DIR holds mnist/ (default ../shared/data). PyTorch comes from $PYTHON (default: the venv
# of scripts/golden, .venv/bin/python, else python3); install it with
# `pip install -r scripts/golden/requirements.txt`.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
data=${1:-../shared/data}
rounds=${2:-5}
threads=${3:-2}
python=$(bench_python)
bench=$(bench_binary mnist_mlp)
rust_once() { RAYON_NUM_THREADS=$threads "$bench" --data-dir "$data" --repeats 1 | awk '/median epoch/ {print $4}'; }
torch_once() {
  "$python" scripts/bench/mnist_mlp.py --data-dir "$data" --repeats 1 --threads "$threads" | awk '/median epoch/ {print $4}'
}
side_by_side "$rounds" "MNIST MLP (784-256-256-10, ReLU), Adam lr 1e-3, batch 64, one epoch of 938 steps, $threads threads"

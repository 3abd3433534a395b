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
data=${1:-../shared/data}
rounds=${2:-5}
threads=${3:-2}
python=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
cargo bench -p tasks --bench mnist_mlp --no-run 2>/dev/null
bench=$(ls -t target/release/deps/mnist_mlp-* | grep -v '\.d$' | head -1)
rust=() ; torch=()
for i in $(seq "$rounds"); do
  r=$(RAYON_NUM_THREADS=$threads "$bench" --data-dir "$data" --repeats 1 | awk '/median epoch/ {print $4}')
  t=$("$python" scripts/bench/mnist_mlp.py --data-dir "$data" --repeats 1 --threads "$threads" | awk '/median epoch/ {print $4}')
  echo "round $i: optbench $r s, pytorch $t s"
  rust+=("$r"); torch+=("$t")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mr=$(median "${rust[@]}"); mt=$(median "${torch[@]}")
echo "MNIST MLP (784-256-256-10, ReLU), Adam lr 1e-3, batch 64, one epoch of 938 steps, $threads threads"
echo "optbench median: $mr s   pytorch median: $mt s   ratio optbench / pytorch: $(awk -v a="$mr" -v b="$mt" 'BEGIN {printf "%.2f", a / b}')"

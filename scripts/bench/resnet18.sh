#!/usr/bin/env bash
# One training step of the CIFAR ResNet-18 at batch 128 (32x32 inputs, SGD with momentum), in
# optbench and in PyTorch on the same machine, alternating runs and reporting medians and the
# ratio.
#
#   scripts/bench/resnet18.sh [ROUNDS] [STEPS] [THREADS] [DEVICE]
#
# DEVICE is cpu (default) or cuda (needs a `--features cuda` build). PyTorch comes from
# $PYTHON (default: .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
steps=${2:-3}
threads=${3:-2}
device=${4:-cpu}
python=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
cargo bench -p tasks --bench resnet18_step --no-run 2>/dev/null
bench=$(ls -t target/release/deps/resnet18_step-* | grep -v '\.d$' | head -1)
rust=() ; torch=()
for i in $(seq "$rounds"); do
  r=$(RAYON_NUM_THREADS=$threads "$bench" --steps "$steps" --device "$device" | sed -E 's/.*median ([0-9.]+) s.*/\1/')
  t=$("$python" scripts/bench/resnet18_step.py --steps "$steps" --threads "$threads" --device "$device" | sed -E 's/.*median ([0-9.]+) s.*/\1/')
  echo "round $i: optbench $r s, pytorch $t s"
  rust+=("$r"); torch+=("$t")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mr=$(median "${rust[@]}"); mt=$(median "${torch[@]}")
echo "ResNet-18 (CIFAR), batch 128, one training step, $device, $threads threads"
echo "optbench median: $mr s   pytorch median: $mt s   ratio optbench / pytorch: $(awk -v a="$mr" -v b="$mt" 'BEGIN {printf "%.2f", a / b}')"

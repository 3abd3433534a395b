#!/usr/bin/env bash
# One training step of the CIFAR ResNet-18 at batch 128 (32x32 inputs, SGD with momentum), in
# optbench and in PyTorch on the same machine, alternating runs and reporting medians and the
# ratio.
#
#   scripts/bench/resnet18.sh [ROUNDS] [STEPS] [THREADS] [DEVICE]
#
# DEVICE is cpu (default) or cuda (then the benchmark is built with `--features cuda`). PyTorch
# comes from $PYTHON (default: .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
rounds=${1:-3}
steps=${2:-3}
threads=${3:-2}
device=${4:-cpu}
python=$(bench_python)
features=()
if [ "$device" != cpu ]; then features=(--features "${device%%:*}"); fi
bench=$(bench_binary resnet18_step "${features[@]}")
seconds() { sed -E 's/.*median ([0-9.]+) s.*/\1/'; }
rust_once() { RAYON_NUM_THREADS=$threads "$bench" --steps "$steps" --device "$device" | seconds; }
torch_once() { "$python" scripts/bench/resnet18_step.py --steps "$steps" --threads "$threads" --device "$device" | seconds; }
side_by_side "$rounds" "ResNet-18 (CIFAR), batch 128, one training step, $device, $threads threads"

#!/usr/bin/env bash
# One WGAN-GP round (5 critic steps with the gradient penalty, one generator step) of AdaBelief's
# CIFAR-10 DCGAN at 64x64, batch 64, in optbench and in PyTorch on the same machine, alternating
# runs and reporting medians and the ratio.
#
#   scripts/bench/wgan.sh [ROUNDS] [STEPS] [THREADS] [DEVICE]
#
# STEPS is the number of timed rounds per run. DEVICE is cpu (default) or cuda (then the
# benchmark is built with `--features cuda`). PyTorch comes from $PYTHON (default:
# .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
rounds=${1:-3}
steps=${2:-2}
threads=${3:-2}
device=${4:-cpu}
python=$(bench_python)
features=()
if [ "$device" != cpu ]; then features=(--features "${device%%:*}"); fi
bench=$(bench_binary wgan_round "${features[@]}")
seconds() { sed -E 's/.*median ([0-9.]+) s.*/\1/'; }
rust_once() { RAYON_NUM_THREADS=$threads "$bench" --rounds "$steps" --device "$device" | seconds; }
torch_once() { "$python" scripts/bench/wgan_round.py --rounds "$steps" --threads "$threads" --device "$device" | seconds; }
side_by_side "$rounds" "WGAN-GP round (DCGAN 64x64, batch 64: 5 critic steps with penalty + 1 generator step), $device, $threads threads"

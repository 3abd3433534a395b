#!/usr/bin/env bash
# One training step of the IWSLT'14 Transformer (transformer_iwslt_de_en, 4096 target tokens:
# 128 sentences of 32 tokens, vocabulary 10,000, Adam), in optbench and in PyTorch on the same
# machine, alternating runs and reporting medians and the ratio.
#
#   scripts/bench/transformer.sh [ROUNDS] [STEPS] [THREADS] [DEVICE]
#
# PyTorch comes from $PYTHON (default: .venv/bin/python, else python3).
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
bench=$(bench_binary transformer_step "${features[@]}")
seconds() { sed -E 's/.*median ([0-9.]+) s.*/\1/'; }
rust_once() { RAYON_NUM_THREADS=$threads "$bench" --steps "$steps" --device "$device" | seconds; }
torch_once() { "$python" scripts/bench/transformer_step.py --steps "$steps" --threads "$threads" --device "$device" | seconds; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
side_by_side "$rounds" "transformer_iwslt_de_en, 128 x 32 tokens, one training step, $device, $threads threads"

#!/usr/bin/env bash
# One training step of AdaBelief's PTB LSTM (AWD-LSTM, tied, emsize 400, nhid 1150, 3 layers,
# its dropouts, batch 20, bptt 70, AR/TAR, clip 0.25, SGD), in optbench and in PyTorch (one
# nn.LSTM per layer, as AWD-LSTM) on the same machine, alternating runs and reporting medians,
# the ratio and the machine.
#
#   scripts/bench/lstm.sh [ROUNDS] [STEPS] [THREADS] [LAYERS]
#
# PyTorch comes from $PYTHON (default: .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
rounds=${1:-3}
steps=${2:-3}
threads=${3:-2}
layers=${4:-3}
python=$(bench_python)
bench=$(bench_binary lstm_step)
seconds() { sed -E 's/.*median ([0-9.]+) s.*/\1/'; }
rust_once() { RAYON_NUM_THREADS=$threads "$bench" --steps "$steps" --layers "$layers" | seconds; }
torch_once() { "$python" scripts/bench/lstm_step.py --steps "$steps" --threads "$threads" --layers "$layers" | seconds; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
side_by_side "$rounds" "AWD-LSTM PTB model, $layers layers, batch 20, bptt 70, one training step, cpu, $threads threads"

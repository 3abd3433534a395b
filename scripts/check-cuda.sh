#!/usr/bin/env bash
# On a GPU machine (no Rust toolchain needed): checks the CUDA binary that scripts/build-cuda.sh
# built (dist/cuda/optbench): the CUDA kernels of every optimizer against the tensor path on the
# GPU, then one tiny run on the GPU. The CUDA 13 libraries come from the machine's PyTorch
# install (never from the build machine's stub libcuda).
# Usage: scripts/check-cuda.sh [BINARY] [PYTHON]     (defaults: dist/cuda/optbench, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-dist/cuda/optbench}
PY=${2:-python3}
# Carried gzipped (the device tool carries at most 64 MiB): unpack it first.
if [ ! -x "$BIN" ] && [ -f "$BIN.gz" ]; then gunzip -kf "$BIN.gz" && chmod +x "$BIN"; fi
[ -x "$BIN" ] || { echo "check-cuda: no $BIN; build it with scripts/build-cuda.sh" >&2; exit 1; }
LIBS=$("$PY" -c 'import nvidia,os;print(os.path.join(list(nvidia.__path__)[0],"cu13","lib"))') \
  || { echo "check-cuda: $PY has no nvidia CUDA 13 wheels (PyTorch for CUDA 13)" >&2; exit 1; }
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "== $BIN optimizers --check-kernels --device cuda"
"$BIN" optimizers --check-kernels --device cuda
OUT=$(mktemp -d)
cat > "$OUT/tiny.toml" <<'EOT'
name = "cuda-tiny"
seeds = [0]
[[tasks]]
name = "toy2d-quadratic"
steps = 50
[[optimizers]]
name = "adam"
lr = 0.01
[[optimizers]]
name = "adabelief"
lr = 0.01
EOT
echo "== one tiny sweep on the GPU"
"$BIN" run "$OUT/tiny.toml" --device cuda --out "$OUT/results"
"$BIN" report "$OUT/results/cuda-tiny" | head -20

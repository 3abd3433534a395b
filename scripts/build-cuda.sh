#!/usr/bin/env bash
# Builds the CUDA `optbench` binary (`--features cuda`) on a machine without a GPU or a system
# CUDA, with the CUDA 13.0 toolchain from PyPI wheels that ../shared/tools/cuda-build-env.sh
# prepares (see ../shared/spec/cuda-build.md), and copies it to dist/cuda/optbench (git-ignored).
#
# Usage: scripts/build-cuda.sh
# Environment (all optional):
#   CUDA_BUILD_DIR    where the toolchain lives (default /tmp/cuda-build; prepared once, ~650 MB)
#   CARGO_TARGET_DIR  cargo's target folder (default target-cuda/ of the project: a CUDA build
#                     must not share its folder with the CPU build, whose candle differs)
#   CUDA_COMPUTE_CAP  the GPU's compute capability (default 90: H100 / H200)
#   CUDA_ENV_SCRIPT   the toolchain script (default ../shared/tools/cuda-build-env.sh)
# Running it again rebuilds only what changed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD_DIR=${CUDA_BUILD_DIR:-/tmp/cuda-build}
ENV_SCRIPT=${CUDA_ENV_SCRIPT:-$ROOT/../shared/tools/cuda-build-env.sh}
COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-cuda}

if [ ! -f "$BUILD_DIR/env.sh" ]; then
  if [ ! -x "$ENV_SCRIPT" ]; then
    echo "build-cuda: no CUDA toolchain in $BUILD_DIR and no $ENV_SCRIPT to make one;" >&2
    echo "  set CUDA_ENV_SCRIPT to cuda-build-env.sh or CUDA_BUILD_DIR to a prepared folder" >&2
    exit 1
  fi
  echo "== preparing the CUDA 13.0 toolchain in $BUILD_DIR (PyPI wheels, ~650 MB, once)"
  cargo fetch --locked # the toolchain script reads cudarc's source from the cargo registry
  "$ENV_SCRIPT" "$BUILD_DIR"
fi
# shellcheck disable=SC1091
. "$BUILD_DIR/env.sh"
export CUDA_COMPUTE_CAP=$COMPUTE_CAP

# candle-kernels caches its PTX by nvcc: rebuild them when the nvcc on PATH changed.
NVCC_ID=$(command -v nvcc)
STAMP="$CARGO_TARGET_DIR/.optbench-nvcc"
mkdir -p "$CARGO_TARGET_DIR"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" != "$NVCC_ID $CUDA_COMPUTE_CAP" ]; then
  echo "== nvcc or compute capability changed: cleaning candle-kernels"
  cargo clean --release -p candle-kernels
fi
echo "$NVCC_ID $CUDA_COMPUTE_CAP" > "$STAMP"

echo "== cargo build --release -p tasks --bin optbench --features cuda (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)"
cargo build --release --locked -p tasks --bin optbench --features cuda

mkdir -p dist/cuda
# Without symbols and debug information (the release profile keeps them): ~85 MB instead of
# ~260 MB (most of it candle's PTX), and gzipped (~23 MB) to carry to a GPU machine, where
# `gunzip -kf dist/cuda/optbench.gz` unpacks it (scripts/check-cuda.sh does).
strip -s -o dist/cuda/optbench "$CARGO_TARGET_DIR/release/optbench"
gzip -9 -c dist/cuda/optbench > dist/cuda/optbench.gz
echo "== checking that it starts (stub libcuda: CUDA is unavailable here, the CPU runs)"
LD_LIBRARY_PATH="$CUDA_RUNTIME_LIBS" dist/cuda/optbench --help >/dev/null

cat <<EOT
== built dist/cuda/optbench ($(du -h dist/cuda/optbench | cut -f1), sm_${CUDA_COMPUTE_CAP}; needs an NVIDIA driver >= 580)
On the GPU machine, with the CUDA 13 libraries of its PyTorch install (never the stub libcuda
of $BUILD_DIR, which would hide the real driver):
  export LD_LIBRARY_PATH=\$(python3 -c 'import nvidia,os;print(os.path.join(list(nvidia.__path__)[0],"cu13","lib"))')
  scripts/check-cuda.sh     # the CUDA kernels vs the tensor path, then a tiny GPU sweep
  dist/cuda/optbench optimizers --check-kernels --device cuda   # the first half alone
  dist/cuda/optbench run CONFIG.toml --device cuda --data-dir DATA --out OUT
EOT

# Shared by the side-by-side benchmarks (mnist.sh, resnet18.sh); sourced, not run.
#
#   python=$(bench_python)             PyTorch's interpreter: $PYTHON, else .venv/bin/python, else python3
#   bench=$(bench_binary NAME [ARGS])  builds `cargo bench --bench NAME` (ARGS: e.g. --features cuda)
#                                      and prints its executable; compile errors go to stderr
#   side_by_side ROUNDS TITLE          alternates `rust_once` and `torch_once` (functions the caller
#                                      defines, each printing seconds), then prints the medians and
#                                      the ratio (these machines are noisy)

bench_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"
  elif [ -x .venv/bin/python ]; then echo .venv/bin/python
  else echo python3
  fi
}

bench_binary() {
  local name=$1
  shift
  cargo bench -p tasks --bench "$name" --no-run --message-format=json-render-diagnostics "$@" \
    | grep '"kind":\["bench"\]' | grep "\"name\":\"$name\"" \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

side_by_side() {
  local rounds=$1 title=$2 rust=() torch=() r t
  for i in $(seq "$rounds"); do
    r=$(rust_once)
    t=$(torch_once)
    echo "round $i: optbench $r s, pytorch $t s"
    rust+=("$r"); torch+=("$t")
  done
  local mr mt
  mr=$(median "${rust[@]}"); mt=$(median "${torch[@]}")
  echo "$title"
  echo "optbench median: $mr s   pytorch median: $mt s   ratio optbench / pytorch: $(awk -v a="$mr" -v b="$mt" 'BEGIN {printf "%.2f", a / b}')"
}

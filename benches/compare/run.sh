#!/usr/bin/env bash
# Side-by-side: EZKL (PyPI, 23.x, through ../shared/peers/ezkl_bench.py with the baseline's
# defaults: resources calibration, public input/output, fixed params) and zkinfer, on the same
# example models in one run. Prints one markdown table per model with zkinfer/EZKL ratios and
# keeps the raw JSON in benches/compare/results/<timestamp>/.
#
#   benches/compare/run.sh [--quick] [--reps N] [MODEL...]
#
# Default models: the 13 of EZKL-BASELINE.md, smallest first. --quick: 1l_linear 1l_mlp accuracy.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
shared="$root/../shared"
reps=1
models=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) models=(1l_linear 1l_mlp accuracy) ;;
    --reps) reps="$2"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) models+=("$1") ;;
  esac
  shift
done
if [ ${#models[@]} -eq 0 ]; then
  models=(1l_linear 1l_mlp 1l_gelu_noappx 1l_softmax lstm layernorm ltsf accuracy 2l_relu_sigmoid_conv
          4l_relu_conv_fc 3l_relu_conv_fc variable_cnn large_mlp)
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zkinfer-target}"
venv="$root/benches/compare/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check 'ezkl>=23,<24' onnx onnxruntime numpy
(cd "$root" && cargo build -p zkinfer)
out="$root/benches/compare/results/$(date -u +%Y%m%dT%H%M%SZ)"
work="${ZKINFER_BENCH_WORK:-/tmp/zkinfer-compare}"
mkdir -p "$out" "$work/srs"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u)" > "$out/machine.txt"
for m in "${models[@]}"; do
  echo "== $m: EZKL" >&2
  "$venv/bin/python" "$shared/peers/ezkl_bench.py" run "$shared/ezkl-examples/$m" --work "$work/ezkl" \
    --srs-dir "$work/srs" --reps "$reps" --out "$out/ezkl-$m.json" --drop-pk >&2 || true
  echo "== $m: zkinfer" >&2
  python3 "$root/benches/examples.py" --reps "$reps" --work "$work/zkinfer" --json "$out/zkinfer-$m.json" "$m" >&2 || true
done
python3 "$root/benches/compare/report.py" "$out" | tee "$out/report.md"

#!/usr/bin/env bash
# The masked GPT-style decoders of issue 26 (causal `masked_fill(-inf)` attention, exact GELU,
# LayerNorm): made by scripts/make_decoder.py at two sizes, then compile, setup, prove and
# verify with the zkinfer CLI; prints one markdown row per size (k, seconds and peak RSS per
# step, the error against onnxruntime). Slow (the larger size takes tens of minutes on 2
# cores): a bench, not a test.
#
#   benches/decoder/run.sh [BIN]     # BIN: a zkinfer binary (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zkinfer-target}"
if [ $# -ge 1 ]; then
  Z="$1"
else
  cargo build --release -p zkinfer --bin zkinfer
  Z="$CARGO_TARGET_DIR/release/zkinfer"
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check 'numpy<3' 'onnx>=1.15' 'onnxruntime>=1.17'
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "| decoder | k | compile s | setup s / peak GiB | prove s / peak GiB | verify | max error (relative) |"
echo "|---|---|---|---|---|---|---|"
for size in "2 32 16 2" "4 64 32 4"; do
  read -r blocks dim tokens heads <<<"$size"
  d="$work/d$blocks"
  .venv/bin/python scripts/make_decoder.py "$d" --blocks "$blocks" --dim "$dim" --tokens "$tokens" --heads "$heads"
  step() {
    /usr/bin/time -f "%e %M" -o "$d/time" "$Z" "$@" > "$d/out" 2>&1 || { cat "$d/out" >&2; return 1; }
    read -r secs kb < "$d/time"
    echo "$secs $(awk "BEGIN { printf \"%.1f\", $kb / 1048576 }")"
  }
  read -r c _ <<<"$(step compile "$d/network.onnx" --calibration "$d/input.json" --out "$d/m")"
  k=$(.venv/bin/python -c "import json; print(json.load(open('$d/m/settings.json'))['plan']['k'])")
  read -r s sm <<<"$(step setup "$d/m")"
  read -r p pm <<<"$(step prove "$d/m" --input "$d/input.json" --out "$d/proof.json")"
  v=$("$Z" verify "$d/m" "$d/proof.json" > /dev/null 2>&1 && echo valid || echo INVALID)
  err=$(.venv/bin/python - "$d" <<'PY'
import json, sys
d = sys.argv[1]
got = [v for o in json.load(open(f"{d}/proof.json"))["outputs"] for v in o]
want = [v for o in json.load(open(f"{d}/expected.json"))["output_data"] for v in o]
m = max(abs(a - b) for a, b in zip(got, want))
print(f"{m:.2e} ({m / max(abs(b) for b in want):.2e})")
PY
)
  echo "| $blocks blocks, d = $dim, $tokens tokens, $heads heads | $k | $c | $s / $sm | $p / $pm | $v | $err |"
done

#!/usr/bin/env bash
# Reading a ceremony SRS (prints a table): a halo2 raw file of exactly the circuit's k (its
# Lagrange basis read, then checked in two MSMs) against one of a larger k (the basis computed
# from the powers by an FFT over G1) and a development SRS made here. 1l_mlp compiled at
# k = 19 and 20 stands in for any circuit: the SRS's cost depends on k alone. Slow: a bench.
#
#   benches/srs/run.sh                       # a release build; makes its SRS files (minutes)
#   ZKINFER=path/to/zkinfer benches/srs/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zkinfer-target}"
if [ -z "${ZKINFER:-}" ]; then
  cargo build --release -p zkinfer --bin zkinfer
  ZKINFER="$CARGO_TARGET_DIR/release/zkinfer"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
e=../shared/ezkl-examples/1l_mlp
for k in 19 20; do
  "$ZKINFER" gen-srs --logrows "$k" --out "$work/srs$k.bin" > /dev/null
  "$ZKINFER" compile "$e/network.onnx" --calibration "$e/input.json" --out "$work/k$k" \
    --no-fhe --logrows "$k" > /dev/null 2>&1
done
row() { # row LABEL DIR [SETUP ARGS…]
  local label="$1" dir="$2"
  shift 2
  RUST_LOG=info /usr/bin/time -f "%e %M" -o "$work/time" "$ZKINFER" setup "$dir" "$@" > "$work/log" 2>&1
  local srs
  srs=$(sed 's/\x1b\[[0-9;]*m//g' "$work/log" | grep -o "SRS ready in [0-9.]*[a-zµ]*" | head -1)
  read -r secs kb < "$work/time"
  echo "| $label | ${srs#SRS ready in } | $secs | $(awk "BEGIN { printf \"%.2f\", $kb / 1048576 }") |"
}
echo "| circuit k, SRS | SRS ready in | setup s | setup peak GiB |"
echo "|---|---|---|---|"
row "19, raw file of k = 19 (basis read, checked)" "$work/k19" --srs "$work/srs19.bin"
row "19, raw file of k = 20 (basis computed: FFT over G1)" "$work/k19" --srs "$work/srs20.bin"
row "19, development SRS made here" "$work/k19"
row "20, raw file of k = 20 (basis read, checked)" "$work/k20" --srs "$work/srs20.bin"
row "20, development SRS made here" "$work/k20"

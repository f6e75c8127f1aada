#!/usr/bin/env bash
# The CPU column of the GPU bench on this machine: setup and prove wall seconds of the CPU
# build for 3l_relu_conv_fc laid out at k = 14…20 (--logrows), the circuits scripts/gpu-checks.sh
# times on a GPU machine, as markdown rows.
# Usage: benches/gpu/cpu-baseline.sh [ZKINFER_BINARY] [K...]
set -euo pipefail
zk=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/zkinfer-target}/debug/zkinfer}
shift || true
ks=${*:-"14 15 16 17 18 19 20"}
src=${ZKINFER_EXAMPLES:-$(dirname "$0")/../../../shared/ezkl-examples}/${ZKINFER_GPU_SWEEP_MODEL:-3l_relu_conv_fc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
secs() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.2f}")' "$1" "$EPOCHREALTIME"; }
echo "| circuit | k | setup s, CPU $(nproc) cores | prove s, CPU $(nproc) cores |"
echo "|---|---|---|---|"
for k in $ks; do
  d=$work/k$k
  "$zk" compile "$src/network.onnx" --calibration "$src/input.json" --out "$d" --no-fhe --logrows "$k" > /dev/null
  t=$EPOCHREALTIME; "$zk" setup "$d" > /dev/null 2>&1; setup=$(secs "$t")
  t=$EPOCHREALTIME; "$zk" prove "$d" --input "$src/input.json" --out "$d/proof.json" > /dev/null; prove=$(secs "$t")
  "$zk" verify "$d" "$d/proof.json" > /dev/null
  echo "| $(basename "$src")@k=$k | $k | $setup | $prove |"
  rm -rf "$d"
done

#!/usr/bin/env bash
# The cost of hashed weights: each model compiled with fixed, then hashed weights (private
# inputs, public outputs, compile defaults), set up with a development SRS, and proven on its
# own input twice; prints the better time, the peak memory of that proof (GNU time's maximum
# resident set) and the circuit's size. Usage: benches/weights/cost.sh [MODEL ...]
# (default: digits_mlp 4l_relu_conv_fc; lenet_5 takes minutes). Uses the release binary
# (`cargo build --release -p zkinfer` first) unless ZKINFER names another.
set -euo pipefail
cd "$(dirname "$0")/../.."
Z="${ZKINFER:-${CARGO_TARGET_DIR:-$HOME/.cache/zkinfer-target}/release/zkinfer}"
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(digits_mlp 4l_relu_conv_fc)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "| model | weights | committed values | k | gate cells | lookup cells | prove s | peak memory MiB |"
echo "|---|---|---|---|---|---|---|---|"
for name in "${models[@]}"; do
  dir="examples/$name"
  [ -d "$dir" ] || dir="../shared/ezkl-examples/$name"
  for w in fixed hashed; do
    out="$tmp/$name-$w"
    "$Z" compile "$dir/network.onnx" --calibration "$dir/input.json" --out "$out" \
      --weights "$w" --input-visibility private --no-fhe > /dev/null 2> "$tmp/log" \
      || { cat "$tmp/log" >&2; exit 1; }
    "$Z" setup "$out" > /dev/null 2>&1
    best=""; mem=""
    for _ in 1 2; do
      /usr/bin/time -f "%e %M" -o "$tmp/t" "$Z" prove "$out" --input "$dir/input.json" \
        --out "$tmp/p.json" > /dev/null 2>&1
      read -r s kb < "$tmp/t"
      if [ -z "$best" ] || awk "BEGIN{exit !($s < $best)}"; then best=$s; mem=$((kb / 1024)); fi
    done
    info="$("$Z" inspect "$out")"
    k="$(sed -n 's/^k  *\([0-9]*\).*/\1/p' <<< "$info")"
    cells="$(sed -n 's/^cells  *\([0-9]*\) gate advice, \([0-9]*\) range-checked.*/\1 | \2/p' <<< "$info")"
    values="$(sed -n 's/^weights  *hashed: \([0-9]*\) values.*/\1/p' <<< "$info")"
    echo "| $name | $w | ${values:-0} | $k | $cells | $best | $mem |"
  done
done

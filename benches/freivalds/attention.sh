#!/usr/bin/env bash
# multihead_attention under each proof budget, with and without Freivalds checks: the shape the
# planner picks, setup and prove wall time, prove peak RSS. Usage: attention.sh [CONFIG…] where
# CONFIG is BYTES or BYTES:off (default: 4096 4096:off 3584).
set -euo pipefail
Z=${ZKINFER:-$HOME/.cache/zkinfer-target/debug/zkinfer}
E=${EXAMPLES:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/ezkl-examples}/multihead_attention
OUT=${OUT:-/tmp/zkinfer-attention}
mkdir -p "$OUT"
echo "| proof budget | Freivalds | k | columns | proof bytes | setup s | prove s | prove RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
for cfg in "${@:-4096 4096:off 3584}"; do
  for c in $cfg; do
    bytes=${c%%:*}; flag=""; f=auto
    [[ $c == *:off ]] && flag=--no-freivalds && f=off
    d="$OUT/$bytes-$f"
    rm -rf "$d"
    line=$("$Z" compile "$E/network.onnx" --calibration "$E/input.json" --out "$d" --max-proof-bytes "$bytes" $flag 2>&1 | tail -1)
    k=$(sed -E 's/.*k=([0-9]+).*/\1/' <<<"$line")
    cols=$(sed -E 's/.*k=[0-9]+, ([^,]+),.*/\1/' <<<"$line")
    pb=$(sed -E 's/.*, ([0-9]+)-byte proofs.*/\1/' <<<"$line")
    used=$("$Z" inspect "$d" | grep -q '^freivalds' && echo yes || echo no)
    s0=$(date +%s.%N); "$Z" setup "$d" >/dev/null 2>&1; s1=$(date +%s.%N)
    /usr/bin/time -f "%e %M" -o "$OUT/time" "$Z" prove "$d" --input "$E/input.json" --out "$d/proof.json" >/dev/null 2>&1
    "$Z" verify "$d" "$d/proof.json" >/dev/null 2>&1 || { echo "verify failed: $d" >&2; exit 1; }
    read -r wall rss <"$OUT/time"
    printf "| %s | %s (%s) | %s | %s | %s | %.1f | %.1f | %d |\n" "$bytes" "$f" "$used" "$k" "$cols" "$pb" \
      "$(echo "$s1 - $s0" | bc)" "$wall" "$((rss / 1024))"
  done
done

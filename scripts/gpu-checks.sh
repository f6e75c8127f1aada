#!/usr/bin/env bash
# The GPU checks and the CPU-vs-GPU bench, in one run, for a machine with an NVIDIA GPU
# (ZKINFER_GPU_TESTS=1 says this is one). Needs two binaries built beforehand on any machine:
#   GPU  the GPU build (scripts/build-gpu.sh prints its path)
#   CPU  the default build (cargo build -p zkinfer; $CARGO_TARGET_DIR/debug/zkinfer)
# and the example corpus (../shared/ezkl-examples, or $ZKINFER_EXAMPLES).
#
# Checks, per example model (each one fails the script):
#   1. the GPU build's setup makes a verifying key byte-identical to the CPU build's, on the
#      same SRS;
#   2. a proof made on the GPU verifies with the CPU build's `zkinfer verify`, against the CPU
#      build's keys, and the same proof with one byte changed does not;
#   3. the GPU proof's outputs equal the CPU proof's.
# Then the bench: prove wall seconds, CPU build on this machine's cores vs GPU build, for the
# example models and for one model (3l_relu_conv_fc, k = 14 as compiled) laid out at
# k = 14…20 (--logrows), as a markdown table.
#
# Usage: ZKINFER_GPU_TESTS=1 scripts/gpu-checks.sh GPU[.xz] CPU[.xz] [OUT_DIR]
set -euo pipefail
if [ "${ZKINFER_GPU_TESTS:-}" != 1 ]; then
  echo "set ZKINFER_GPU_TESTS=1 on a machine with an NVIDIA GPU to run these checks" >&2
  exit 2
fi
out=$(realpath -m "${3:-gpu-checks}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A binary may come xz-compressed (how it travels to a GPU machine).
unpack() {
  case "$1" in
    *.xz) xz -dc "$1" > "$work/$2" && chmod +x "$work/$2" && echo "$work/$2" ;;
    *) realpath "$1" ;;
  esac
}
gpu=$(unpack "$1" zkinfer-gpu)
cpu=$(unpack "$2" zkinfer-cpu)
here=$(cd "$(dirname "$0")/.." && pwd)
examples=${ZKINFER_EXAMPLES:-$here/../shared/ezkl-examples}
models=${ZKINFER_GPU_MODELS:-"1l_mlp 2l_relu_sigmoid_conv 3l_relu_conv_fc large_mlp variable_cnn lenet_5"}
ks=${ZKINFER_GPU_KS-"14 15 16 17 18 19 20"}
sweep_model=${ZKINFER_GPU_SWEEP_MODEL:-3l_relu_conv_fc}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt" || true
echo "CPU cores: $(nproc)" | tee -a "$out/gpu.txt"

fail() { echo "FAIL: $*" | tee -a "$out/failures.txt" >&2; failed=1; }
failed=0

# Seconds a command takes (wall), its output to a log.
timed() {
  local log=$1; shift
  local t0=$EPOCHREALTIME
  "$@" > "$log" 2>&1 || { cat "$log" >&2; return 1; }
  python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$t0" "$EPOCHREALTIME"
}

outputs() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["outputs"]))' "$1"; }

# One model folder, compiled by the CPU build (with extra compile flags), set up by both builds.
check() {
  local name=$1 label=$2; shift 2
  local src=$examples/$name d=$work/$label before=$failed
  "$cpu" compile "$src/network.onnx" --calibration "$src/input.json" --out "$d/cpu" --no-fhe "$@" > "$d.compile.log" 2>&1 \
    || { fail "$label: compile"; cat "$d.compile.log" >&2; return 1; }
  cp -r "$d/cpu" "$d/gpu"
  local k setup_cpu setup_gpu prove_cpu prove_gpu
  setup_cpu=$(timed "$d.setup-cpu.log" "$cpu" setup "$d/cpu") || { fail "$label: CPU setup"; return 1; }
  setup_gpu=$(timed "$d.setup-gpu.log" "$gpu" setup "$d/gpu" --srs "$d/cpu/srs.bin") || { fail "$label: GPU setup"; return 1; }
  cmp -s "$d/cpu/vk.bin" "$d/gpu/vk.bin" || fail "$label: the GPU build's verifying key differs from the CPU build's"
  prove_gpu=$(timed "$d.prove-gpu.log" "$gpu" prove "$d/gpu" --input "$src/input.json" --out "$d/gpu-proof.json") \
    || { fail "$label: GPU prove"; return 1; }
  prove_cpu=$(timed "$d.prove-cpu.log" "$cpu" prove "$d/cpu" --input "$src/input.json" --out "$d/cpu-proof.json") \
    || { fail "$label: CPU prove"; return 1; }
  "$cpu" verify "$d/cpu" "$d/gpu-proof.json" > "$d.verify.log" 2>&1 \
    || fail "$label: the GPU proof does not verify with the CPU build ($(tail -1 "$d.verify.log"))"
  python3 - "$d/gpu-proof.json" "$d/tampered.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
h = p["proof"]
i = 2 + len(h) // 3
p["proof"] = h[:i] + ("0" if h[i] != "0" else "1") + h[i + 1:]
json.dump(p, open(sys.argv[2], "w"))
EOF
  if "$cpu" verify "$d/cpu" "$d/tampered.json" > "$d.tampered.log" 2>&1; then
    fail "$label: a GPU proof with one byte changed verified"
  fi
  [ "$(outputs "$d/gpu-proof.json")" = "$(outputs "$d/cpu-proof.json")" ] \
    || fail "$label: GPU and CPU proofs have different outputs"
  k=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plan"]["k"])' "$d/cpu/settings.json")
  python3 -c 'import sys; l, k, a, b, c, d = sys.argv[1:]; print(f"| {l} | {k} | {float(a):.2f} | {float(b):.2f} | {float(c):.2f} | {float(d):.2f} | {float(c) / float(d):.1f}x |")' \
    "$label" "$k" "$setup_cpu" "$setup_gpu" "$prove_cpu" "$prove_gpu" | tee -a "$out/table.md"
  [ "$failed" != "$before" ] \
    || echo "ok: $label (vk identical, GPU proof verified by the CPU build, tampered copy refused)"
}

{
  echo "| circuit | k | setup s, CPU $(nproc) cores | setup s, GPU | prove s, CPU $(nproc) cores | prove s, GPU | speed-up |"
  echo "|---|---|---|---|---|---|---|"
} > "$out/table.md"
for m in $models; do
  check "$m" "$m" || true
done
for k in $ks; do
  check "$sweep_model" "$sweep_model@k=$k" --logrows "$k" || true
done
cat "$out/table.md"
if [ "$failed" != 0 ]; then
  echo "GPU checks FAILED:" >&2
  cat "$out/failures.txt" >&2
  exit 1
fi
echo "all GPU checks passed"

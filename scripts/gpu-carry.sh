#!/usr/bin/env bash
# Prepares what the GPU checks need on a GPU machine that has no network and gets a small
# payload: gpu-carry/ (git-ignored) with both binaries stripped and xz-compressed (about 45 MB
# in all) and the example models the checks use. Then, from this checkout:
#
#   run (device tool), carry ["gpu-carry"], timeout ~540 s:
#     ZKINFER_GPU_TESTS=1 ZKINFER_EXAMPLES=gpu-carry/examples \
#       scripts/gpu-checks.sh gpu-carry/zkinfer-gpu.xz gpu-carry/zkinfer-cpu.xz $OUT/gpu-checks
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/zkinfer-target}
examples=${ZKINFER_EXAMPLES:-../shared/ezkl-examples}
models="1l_mlp 2l_relu_sigmoid_conv 3l_relu_conv_fc large_mlp variable_cnn lenet_5"

gpu=$(scripts/build-gpu.sh | tail -1)
# After the GPU build, the CPU one relinks target/debug/zkinfer without the feature.
cargo build -p zkinfer >&2
rm -rf gpu-carry
mkdir -p gpu-carry/examples
xz -T0 -6 -c "$gpu" > gpu-carry/zkinfer-gpu.xz
strip -o gpu-carry/zkinfer-cpu "$CARGO_TARGET_DIR/debug/zkinfer"
xz -T0 -6 gpu-carry/zkinfer-cpu
for m in $models; do
  cp -r "$examples/$m" gpu-carry/examples/
done
du -sh gpu-carry >&2
echo gpu-carry

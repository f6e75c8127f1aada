#!/usr/bin/env bash
# Builds the GPU zkinfer (`--features gpu`: halo2-axiom-gpu's CUDA prover) on a plain machine of
# this kind, with or without a GPU, and prints the stripped binary's path last.
#
# - The CUDA 13.0 toolkit comes from NVIDIA's PyPI wheels (nvcc, runtime, cccl, crt, nvvm, all
#   pinned to the 13.0 release), unpacked under ~/.cache/zkinfer-cuda (once; idempotent).
# - The CUDA runtime is linked statically (only libcudart_static.a is offered to the linker), so
#   the binary needs nothing of CUDA at run time but the NVIDIA driver's libcuda.so.1.
# - The driver library is linked against a stub made here from cuda.h (every function returns
#   CUDA_ERROR_STUB_LIBRARY), as the toolkit's own lib64/stubs/libcuda.so is for machines without
#   a driver; the real driver replaces it at run time by its soname, libcuda.so.1.
# - CUDA_ARCH defaults to 90 (H100/H200); set it to build for another GPU.
#
# It uses the shared build cache ($CARGO_TARGET_DIR, default ~/.cache/zkinfer-target), so only
# the halo2 stack and the crates above it compile twice; the binary is copied out to
# ~/.cache/zkinfer-gpu/zkinfer-gpu (the next CPU build relinks target/debug/zkinfer). The CPU CI
# never runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."

PINS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
)
root=${ZKINFER_CUDA_HOME:-$HOME/.cache/zkinfer-cuda/13.0}
cuda=$root/cu13
link=$root/link

if [ ! -x "$cuda/bin/nvcc" ] || [ "$(cat "$root/pins" 2>/dev/null)" != "${PINS[*]}" ]; then
  echo "fetching the CUDA 13.0 toolkit wheels into $root" >&2
  rm -rf "$root"
  mkdir -p "$root/wheels" "$root/unpacked"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$root/wheels" "${PINS[@]}"
  for w in "$root"/wheels/*.whl; do
    python3 -m zipfile -e "$w" "$root/unpacked"
  done
  mv "$root/unpacked/nvidia/cu13" "$cuda"
  rm -rf "$root/unpacked"
  # Wheels do not keep file modes.
  chmod +x "$cuda"/bin/* "$cuda"/nvvm/bin/*
  echo "${PINS[*]}" > "$root/pins"
fi

if [ ! -f "$link/libcuda.so" ] || [ ! -e "$link/libcudart_static.a" ]; then
  mkdir -p "$link"
  # openvm-cuda-common asks for cudart, halo2-axiom-gpu for cudart_static: both get the
  # static runtime.
  ln -sf "$cuda/lib/libcudart_static.a" "$link/libcudart.a"
  ln -sf "$cuda/lib/libcudart_static.a" "$link/libcudart_static.a"
  # The driver API's exported names (after cuda.h's versioning macros), each a stub.
  echo '#include <cuda.h>' | gcc -E -I"$cuda/include" - \
    | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d ' (' | sort -u \
    | awk '{ print "int " $1 "(void) { return 34; /* CUDA_ERROR_STUB_LIBRARY */ }" }' \
    > "$link/libcuda-stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" "$link/libcuda-stub.c"
  ln -sf libcuda.so "$link/libcuda.so.1"
fi

export CUDA_PATH=$cuda
export CUDA_LIB_DIR=$link
export CUDA_ARCH=${CUDA_ARCH:-90}
export PATH=$cuda/bin:$PATH
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/zkinfer-target}
nvcc --version | tail -2 >&2

cargo build -p zkinfer --features gpu >&2

out=$HOME/.cache/zkinfer-gpu
mkdir -p "$out"
cp "$CARGO_TARGET_DIR/debug/zkinfer" "$out/zkinfer-gpu"
strip "$out/zkinfer-gpu"
# Without a device, the binary must say so and exit 1 (here: the stub driver answers for it).
if ! command -v nvidia-smi >/dev/null; then
  set +e
  msg=$(LD_LIBRARY_PATH=$link "$out/zkinfer-gpu" --version 2>&1)
  rc=$?
  set -e
  echo "without a device: exit $rc: $msg" >&2
  [ "$rc" = 1 ] || { echo "expected exit 1 without a device" >&2; exit 1; }
fi
ls -l "$out/zkinfer-gpu" >&2
echo "$out/zkinfer-gpu"

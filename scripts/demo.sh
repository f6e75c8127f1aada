#!/usr/bin/env bash
# The main job on the shipped example (a digits MLP): compile, setup, prove, verify natively,
# then generate its Solidity verifier and verify the proof with it in an in-process EVM.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zkinfer-target}"
cargo build -p zkinfer
zk="$CARGO_TARGET_DIR/debug/zkinfer"
model=examples/digits_mlp
out="${1:-$CARGO_TARGET_DIR/demo/digits_mlp}"
rm -rf "$out"
# --optimize evm-gas: one gate column, so the verifier of its 74 public values fits one contract.
"$zk" compile "$model/network.onnx" --calibration "$model/input.json" --out "$out" --optimize evm-gas
"$zk" inspect "$out"
"$zk" setup "$out" | tee "$out/setup.txt"
id=$(sed -n 's/^model id //p' "$out/setup.txt")
"$zk" prove "$out" --input "$model/input.json" --out "$out/proof.json"
# A verifier holds the model id (from the model owner) and checks what was proven on what.
"$zk" verify "$out" "$out/proof.json" --model-id "$id" --input "$model/input.json"
# On chain: the Solidity verifier (solcjs from npm, installed once), run in revm.
ZKINFER_SOLC_DIR="$(scripts/install-solc.sh)"
export ZKINFER_SOLC_DIR
"$zk" evm-verifier "$out"
"$zk" evm-verify "$out" "$out/proof.json"

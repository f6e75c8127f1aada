#!/usr/bin/env bash
# ONNX's operator test cases for the op-coverage test (cli/tests/onnx_ops.rs): generated once
# from the onnx package (PyPI, in a venv under ~/.cache) into ~/.cache/zkinfer-onnx-cases/<onnx
# version>; prints that folder. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$HOME/.cache/zkinfer-onnx-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import onnx, numpy" 2>/dev/null; then
  echo "installing onnx (PyPI) into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "numpy<3" "onnx==1.23.2" >&2
fi
version=$("$venv/bin/python" -c "import onnx; print(onnx.__version__)")
out="$HOME/.cache/zkinfer-onnx-cases/$version"
if [ ! -f "$out/.complete" ]; then
  rm -rf "$out"
  "$venv/bin/python" scripts/onnx_op_cases.py "$out" >&2
  touch "$out/.complete"
fi
echo "$out"

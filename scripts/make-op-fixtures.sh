#!/usr/bin/env bash
# Regenerates the per-op ONNX test fixtures in model/tests/fixtures/, and the models the
# importer must refuse in model/tests/refused/ (needs only PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check 'numpy<3' 'onnx>=1.15' 'onnxruntime>=1.17'
.venv/bin/python scripts/make_op_fixtures.py model/tests/fixtures model/tests/refused

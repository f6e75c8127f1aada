#!/usr/bin/env bash
# Regenerates the digits MLP of the FHE tests in fhe/tests/fixtures/digits_16/ (needs only PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check 'numpy<3' 'scikit-learn>=1.3' 'onnx>=1.15' 'onnxruntime>=1.17'
.venv/bin/python scripts/make_fhe_fixtures.py fhe/tests/fixtures/digits_16

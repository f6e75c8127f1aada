#!/usr/bin/env bash
# Trains the small digits MLP the README's demo proves, and exports it to ONNX; then its
# fine-tuned sibling (same architecture, other weights) for hashed weights and --like.
# Idempotent: reuses .venv; rewrites examples/digits_mlp*/. Needs only PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check 'numpy<3' 'scikit-learn>=1.3' 'onnx>=1.15' 'onnxruntime>=1.17'
.venv/bin/python scripts/make_example_model.py examples/digits_mlp
.venv/bin/python scripts/make_example_model.py --finetune examples/digits_mlp examples/digits_mlp_finetuned

#!/usr/bin/env bash
# The test suite: unit, chip soundness (MockProver tampering), and end-to-end tests on the
# EZKL example corpus expected at ../shared/ezkl-examples, plus the shipped example model, and
# ceremony-file tests on a public .ptau that scripts/fetch-ptau.sh fetches, and Solidity
# verifiers compiled by solcjs (scripts/install-solc.sh) and run in an in-process EVM, and the
# service's queue on SQLite and on PostgreSQL (scripts/postgres.sh), the bucket store on moto's
# S3 server (scripts/s3.sh), and ONNX's operator test cases (scripts/onnx-op-cases.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zkinfer-target}"
if [ ! -d ../shared/ezkl-examples ]; then
  echo "error: the tests read the example corpus at ../shared/ezkl-examples (beside this checkout)" >&2
  exit 1
fi
# The public ceremony file the SRS tests read (fetched once through cargo's registry access).
ZKINFER_PTAU="$(scripts/fetch-ptau.sh)"
export ZKINFER_PTAU
# solcjs, the Solidity compiler the EVM tests use (from npm, once).
ZKINFER_SOLC_DIR="$(scripts/install-solc.sh)"
export ZKINFER_SOLC_DIR
# A real PostgreSQL for the service's storage tests (installed and started if needed; a server
# that cannot be started fails the run).
ZKINFER_TEST_POSTGRES="$(scripts/postgres.sh)"
# An S3-compatible server (moto, from PyPI) for the bucket-store test.
ZKINFER_TEST_S3="$(scripts/s3.sh)"
export ZKINFER_TEST_S3
export ZKINFER_TEST_POSTGRES
# ONNX's own operator test cases (from the onnx package on PyPI, generated once).
ZKINFER_ONNX_CASES="$(scripts/onnx-op-cases.sh)"
export ZKINFER_ONNX_CASES
cargo test --workspace

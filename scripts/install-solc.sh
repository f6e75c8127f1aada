#!/usr/bin/env bash
# Installs solcjs (the npm package solc, the compiler as WebAssembly) at the version the
# Solidity verifiers pin, under $ZKINFER_SOLC_DIR (default $HOME/.cache/zkinfer-solc), where
# zkinfer looks for it. Idempotent; installs Node.js from Debian's packages if it is missing.
# Prints the folder.
set -euo pipefail
version=0.8.19
dir="${ZKINFER_SOLC_DIR:-$HOME/.cache/zkinfer-solc}"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing Node.js and npm (Debian packages)" >&2
  apt-get update -qq >&2
  apt-get install -y -qq nodejs npm >&2
fi
pkg="$dir/node_modules/solc/package.json"
if [ ! -f "$pkg" ] || ! grep -q "\"version\": \"$version\"" "$pkg"; then
  echo "installing solc@$version (npm) into $dir" >&2
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "solc@$version" >&2
fi
echo "$dir"

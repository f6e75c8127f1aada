#!/usr/bin/env bash
# Fetches a public BN254 ceremony file for tests and small circuits: the Hermez powers of tau
# (built on the perpetual powers of tau, contribution 54, plus a random beacon) at power 8,
# powersOfTau28_hez_final_08.ptau, as the crate ppot-rs 0.1.1 ships it on crates.io. Only
# cargo's own registry access is used. Idempotent; prints the file's path.
#
# The file is checked against the sha256 pinned in zkinfer (circuits/src/srs_file.rs) and the
# BLAKE2b-512 the snarkjs README publishes for it.
set -euo pipefail
dir="${ZKINFER_PTAU_DIR:-$HOME/.cache/zkinfer-ptau}"
file="$dir/powersOfTau28_hez_final_08.ptau"
sha256=f741f2ddee2875915c24db8aae90d021f51181533f1ee3b58baf64b042e91654
b2=d6a8fb3a04feb600096c3b791f936a578c4e664d262e4aa24beed1b7a9a96aa5eb72864d628db247e9293384b74b36ffb52ca8d148d6e1b8b51e279fdf57b583

if [ -f "$file" ] && echo "$sha256  $file" | sha256sum --check --status; then
  echo "$file"
  exit 0
fi
mkdir -p "$dir/fetch"
cat > "$dir/fetch/Cargo.toml" <<'TOML'
[package]
name = "zkinfer-fetch-ptau"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "lib.rs"

[dependencies]
ppot-rs = "=0.1.1"
TOML
: > "$dir/fetch/lib.rs"
cargo fetch --manifest-path "$dir/fetch/Cargo.toml" >&2
crate=$(cargo metadata --manifest-path "$dir/fetch/Cargo.toml" --format-version 1 \
  | python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "ppot-rs"))')
src="$(dirname "$crate")/8.ptau"
echo "$sha256  $src" | sha256sum --check --status || { echo "error: $src: sha256 mismatch" >&2; exit 1; }
echo "$b2  $src" | b2sum --check --status || { echo "error: $src: BLAKE2b mismatch" >&2; exit 1; }
cp "$src" "$file.tmp"
mv "$file.tmp" "$file"
echo "$file"

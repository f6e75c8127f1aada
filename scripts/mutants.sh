#!/usr/bin/env bash
# Mutation testing of the circuit constraints (slow; not in CI). cargo-mutants, installed from
# crates.io into $HOME/.cache/zkinfer-tools, mutates one source file of the circuits crate at a
# time, in place (so the shared build cache serves every rebuild), and runs the circuit tests
# that exercise it, each mutant with a timeout. Prints caught / missed / unviable / timeout per
# file, then every missed mutant. Results stay in $CARGO_TARGET_DIR/mutants/<file>/.
#
#   scripts/mutants.sh                          # every chip, the lincomb gate, the function tables
#   scripts/mutants.sh circuits/src/chips/sign.rs [more files]
#   MUTANTS_RE='sign_bit' scripts/mutants.sh circuits/src/chips/sign.rs   # only matching mutants
#   scripts/mutants.sh --deletions [FILE...]   # delete each emitted constraint instead
#
# cargo-mutants never deletes a statement, and most constraints are statements (a range check,
# a copy, the gate offsets of a region, a selector): --deletions removes each of them in turn
# (scripts/delete_constraints.py) and runs the same tests.
#
# Each mutant costs an incremental rebuild of the circuits crate and its test binaries (about a
# minute on 2 cores): scope runs to a file or a regex. The working tree must be committed: the
# mutated file is restored after each mutant, but an interrupted run can leave one behind
# (`git checkout circuits/` puts it back).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zkinfer-target}"
tools="$HOME/.cache/zkinfer-tools"
if [ ! -x "$tools/bin/cargo-mutants" ]; then
  cargo install cargo-mutants --locked --version 27.1.0 --root "$tools"
fi
export PATH="$tools/bin:$PATH"
if [ "${1:-}" = "--deletions" ]; then
  shift
  exec python3 scripts/delete_constraints.py "$@"
fi

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(circuits/src/chips/sign.rs circuits/src/chips/dot.rs circuits/src/chips/extremum.rs
         circuits/src/chips/divide.rs circuits/src/chips/sqrt.rs circuits/src/chips/function.rs
         circuits/src/lincomb.rs circuits/src/functions.rs)
fi
out_root="$CARGO_TARGET_DIR/mutants"
summary=()
for f in "${files[@]}"; do
  # The test binaries that exercise each file (chips and functions cover every chip).
  case "$f" in
    */functions.rs|*/function.rs) tests=(--test functions --test chips) ;;
    */layout.rs|*/circuit.rs) tests=(--test models --test chips) ;;
    *) tests=(--test chips --test functions) ;;
  esac
  name=$(basename "$f" .rs)
  out="$out_root/$name"
  rm -rf "$out"
  mkdir -p "$out"
  re=()
  [ -n "${MUTANTS_RE:-}" ] && re=(--re "$MUTANTS_RE")
  # Exit codes 2 (missed) and 3 (timeouts) are results, not failures of the script.
  cargo mutants --in-place -p zkinfer-circuits --file "$f" "${re[@]}" \
    --timeout "${MUTANTS_TIMEOUT:-300}" --output "$out" -- "${tests[@]}" || true
  counts=""
  for kind in caught missed unviable timeout; do
    n=$(grep -c . "$out/mutants.out/$kind.txt" 2>/dev/null || true)
    counts+=$(printf ' %8s' "${n:-0}")
  done
  summary+=("$(printf '%-36s%s' "$f" "$counts")")
done
echo
printf '%-36s %8s %8s %8s %8s\n' file caught missed unviable timeout
printf '%s\n' "${summary[@]}"
echo
echo "missed mutants:"
for f in "${files[@]}"; do
  cat "$out_root/$(basename "$f" .rs)/mutants.out/missed.txt" 2>/dev/null || true
done

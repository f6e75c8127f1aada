#!/usr/bin/env bash
# Segmented models (issue 26): compile one example model cut into segments, set each segment
# up in its own process (its time and peak RSS), prove (one process, segments in order; each
# segment's time from the log, the run's peak RSS), verify; then the wall time of proving on
# 1, 2 and 4 machines, computed from the segment times (segments are independent once the
# segments are evaluated: longest-first onto the least loaded machine). Slow: a bench.
#
#   benches/segments/run.sh MODEL [COMPILE ARGS...]     # e.g. self_attention --max-prove-memory 8
#   ZKINFER=path/to/zkinfer benches/segments/run.sh …   # default: a release build
#   KEEP=1 benches/segments/run.sh …                    # keep the folder and proof
#   EVM=1 benches/segments/run.sh …                     # then verify the chain in the EVM
#   RESUME=DIR benches/segments/run.sh MODEL            # DIR/m compiled: set up, prove, …
#   SRS=FILE benches/segments/run.sh …                  # every segment set up on FILE (from
#                                                       # `zkinfer gen-srs`: not made per segment)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zkinfer-target}"
model="$1"
shift
if [ -z "${ZKINFER:-}" ]; then
  cargo build --release -p zkinfer --bin zkinfer
  ZKINFER="$CARGO_TARGET_DIR/release/zkinfer"
fi
e="../shared/ezkl-examples/$model"
work="${RESUME:-$(mktemp -d)}"
# KEEP=1 keeps the folder and proof (for evm-verify after): its path is printed.
if [ -n "${KEEP:-}" ] || [ -n "${RESUME:-}" ]; then
  echo "keeping $work" >&2
else
  trap 'rm -rf "$work"' EXIT
fi
d="$work/m"
timed() { # timed NAME ARGS…: runs zkinfer, prints "seconds GiB"
  local name="$1"
  shift
  RUST_LOG=info /usr/bin/time -f "%e %M" -o "$work/$name.time" "$ZKINFER" "$@" > "$work/$name.log" 2>&1 ||
    { cat "$work/$name.log" >&2; return 1; }
  read -r secs kb < "$work/$name.time"
  echo "$secs $(awk "BEGIN { printf \"%.2f\", $kb / 1048576 }")"
}
if [ -z "${RESUME:-}" ]; then
  timed compile compile "$e/network.onnx" --calibration "$e/input.json" --out "$d" --no-fhe "$@" > "$work/compile.figures" ||
    { echo "$model: compile failed" >&2; exit 1; }
fi
# A folder kept before compile.figures was written: its compile's time file.
[ -f "$work/compile.figures" ] ||
  awk '{ printf "%s %.2f\n", $1, $2 / 1048576 }' "$work/compile.time" > "$work/compile.figures"
read -r cs cm < "$work/compile.figures"
if [ ! -f "$d/segments.json" ]; then
  echo "$model: one circuit fits ($(grep -o 'k=[0-9]*' "$work/compile.log" | head -1)); nothing to segment" >&2
  exit 1
fi
n=$(python3 -c "import json; print(len(json.load(open('$d/segments.json'))['segments']))")
for ((s = 0; s < n; s++)); do
  timed "setup$s" setup "$d/segment-$s" ${SRS:+--srs "$SRS"} > "$work/setup$s.figures"
done
read -r ps pm <<<"$(timed prove prove "$d" --input "$e/input.json" --out "$work/proof.json")"
v=$("$ZKINFER" verify "$d" "$work/proof.json" > /dev/null 2>&1 && echo valid || echo INVALID)
if [ -n "${EVM:-}" ]; then
  "$ZKINFER" evm-verify "$d" "$work/proof.json" > "$work/evm.log" 2>&1 || echo "$model: evm-verify failed" >&2
fi
python3 - "$d" "$work" "$model" "$cs" "$cm" "$ps" "$pm" "$v" "$e/expected.json" <<'PY'
import json, re, sys
d, work, model, cs, cm, ps, pm, verdict, expected = sys.argv[1:]
f = json.load(open(f"{d}/segments.json"))
graph = json.load(open(f"{d}/qgraph.json"))
size = lambda nodes: sum(eval("*".join(map(str, graph["nodes"][n]["shape"])) or "1") for n in nodes)
log = open(f"{work}/prove.log").read()
strip = re.compile(r"\x1b\[[0-9;]*m")
secs = {}
for line in strip.sub("", log).splitlines():
    m = re.search(r"segment proven in ([0-9.]+)(ms|s).*segment=(\d+)", line)
    if m:
        secs[int(m.group(3))] = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
evals = [float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
         for m in re.finditer(r"segments evaluated in ([0-9.]+)(ms|s)", strip.sub("", log))]
print(f"{model}: compile {cs} s / {cm} GiB, {len(f['segments'])} segments, proof {verdict}")
print()
print("| segment | nodes | k | columns | boundary in / out (values) | setup s | setup peak GiB | prove s | est. prove GiB |")
print("|---|---|---|---|---|---|---|---|---|")
times = []
for s, seg in enumerate(f["segments"]):
    st = json.load(open(f"{d}/segment-{s}/settings.json"))
    p = st["plan"]
    base = p["params"]["base"]["num_advice_per_phase"][0]
    lw = p["params"]["lincomb_width"]
    cols = f"{base} gate + {lw + (lw > 0)} dot"
    ss, sm = open(f"{work}/setup{s}.figures").read().split()
    t = secs.get(s, float("nan"))
    times.append(t)
    print(f"| {s} | {seg['nodes'][0]}..{seg['nodes'][1]} | {p['k']} | {cols} | {size(seg['boundary_in'])} / {size(seg['boundary_out'])} | {ss} | {sm} | {t:.1f} | {p['prove_memory_bytes'] / 2**30:.2f} |")
print()
print(f"prove (one process, in order): {ps} s, peak {pm} GiB; evaluation {sum(evals):.1f} s")
for machines in (1, 2, 4):
    load = [0.0] * machines
    for t in sorted(times, reverse=True):
        load[load.index(min(load))] += t
    print(f"proving on {machines} machine(s): {sum(evals) + max(load):.1f} s (critical path)")
out = json.load(open(f"{work}/proof.json"))["outputs"]
try:
    want = json.load(open(expected))["output_data"]
    err = max(abs(a - b) for o, w in zip(out, want) for a, b in zip(o, w))
    print(f"max error against onnxruntime: {err:.2e}")
except (OSError, KeyError):
    pass
PY
[ -z "${EVM:-}" ] || sed 's/\x1b\[[0-9;]*m//g' "$work/evm.log"

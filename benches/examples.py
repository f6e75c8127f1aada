#!/usr/bin/env python3
"""Per-model table for the EZKL example corpus: k, rows, setup, prove (wall, CPU, peak RSS),
proof bytes, verify time, max output error vs onnxruntime — EZKL-BASELINE.md's columns.

Usage: benches/examples.py [--zkinfer BIN] [--work DIR] MODEL...   (stdlib only)
Each step runs as its own process under /usr/bin/time, so RSS and CPU are the step's own.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "ezkl-examples"


def timed(cmd):
    """Runs cmd under /usr/bin/time; returns (wall s, cpu s, peak RSS MiB)."""
    t = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        lines = [l for l in out.stderr.strip().splitlines() if l.startswith("error:")] or out.stderr.strip().splitlines()[-1:]
        raise RuntimeError(f"{cmd[1]}: {lines[-1] if lines else 'failed'}")
    user, sys_, rss = out.stderr.strip().splitlines()[-1].split()
    return wall, float(user) + float(sys_), int(rss) / 1024


def bench(zk, work, name, reuse=False):
    ex = CORPUS / name
    d = work / name
    inp = str(ex / "input.json")
    if not (reuse and (d / "settings.json").exists()):
        subprocess.run(["rm", "-rf", str(d)], check=True)
        timed([zk, "compile", str(ex / "network.onnx"), "--calibration", inp, "--out", str(d)])
    settings = json.loads((d / "settings.json").read_text())
    setup = timed([zk, "setup", str(d)])
    prove = timed([zk, "prove", str(d), "--input", inp, "--out", str(d / "proof.json")])
    verify = timed([zk, "verify", str(d), str(d / "proof.json")])
    proof = json.loads((d / "proof.json").read_text())
    got = proof["outputs"]
    if (ex / "expected.json").exists():
        want = json.loads((ex / "expected.json").read_text())["output_data"]
        err = max(abs(a - b) for g, w in zip(got, want) for a, b in zip(g, w))
        scale = max(abs(v) for w in want for v in w) or 1.0
    else:
        # No onnxruntime reference (nanoGPT, self_attention): the error compile measured
        # against the float graph, whose semantics are tract's.
        err, scale = settings.get("expected_error", float("nan")), 1.0
    plan = settings["plan"]
    return {
        "model": name, "k": plan["k"], "rows": max(plan["rows"], plan["lincomb_rows"]),
        # gate columns + dot-product (lincomb) advice columns
        "advice_columns": plan["params"]["base"]["num_advice_per_phase"][0] + plan["params"]["lincomb_width"] + (plan["params"]["lincomb_width"] > 0),
        "lincomb_width": plan["params"]["lincomb_width"],
        "setup_s": setup[0], "prove_wall_s": prove[0], "prove_cpu_s": prove[1], "prove_rss_mib": prove[2],
        "proof_bytes": (len(proof["proof"]) - 2) // 2, "verify_s": verify[0], "max_abs_err": err, "max_rel_err": err / scale,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zkinfer", default=str(Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/zkinfer-target")) / "debug/zkinfer"))
    ap.add_argument("--work", default="/tmp/zkinfer-bench")
    ap.add_argument("--json", help="also write the raw rows here")
    ap.add_argument("--reps", type=int, default=1, help="repeat each model; timings are medians")
    ap.add_argument("--reuse", action="store_true", help="keep a model already compiled in --work (compile is slow for the largest)")
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    print("| model | k | rows | advice cols | setup s | prove wall s | prove CPU s | prove peak RSS MiB | proof bytes | verify s | max abs err (rel) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for m in a.models:
        try:
            runs = [bench(a.zkinfer, work, m, a.reuse) for _ in range(a.reps)]
        except RuntimeError as e:
            rows.append({"model": m, "error": str(e)})
            print(f"| {m} | failed: {str(e)[:400]} |", flush=True)
            continue
        r = dict(runs[0])
        for key in ("setup_s", "prove_wall_s", "prove_cpu_s", "prove_rss_mib", "verify_s"):
            r[key] = statistics.median(x[key] for x in runs)
        rows.append(r)
        print(f"| {m} | {r['k']} | {r['rows']} | {r['advice_columns']} | {r['setup_s']:.2f} | {r['prove_wall_s']:.2f} | {r['prove_cpu_s']:.2f} "
              f"| {r['prove_rss_mib']:.0f} | {r['proof_bytes']} | {r['verify_s']:.2f} | {r['max_abs_err']:.1e} ({r['max_rel_err']:.1e}) |", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(main())

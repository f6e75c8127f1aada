#!/usr/bin/env python3
"""Merges one comparison run (ezkl-*.json from ezkl_bench.py, zkinfer-*.json from
benches/examples.py) into one markdown table per model, with zkinfer/EZKL ratios."""
import json
import sys
from pathlib import Path


def ezkl_row(r):
    st = r.get("steps", {})
    prove, setup, verify = st.get("prove") or {}, st.get("setup") or {}, st.get("verify") or {}
    oc = r.get("output_check") or {}
    return {
        "k": r.get("logrows"), "rows": (r.get("settings") or {}).get("num_rows"),
        "setup_s": setup.get("median_s"), "prove_wall_s": prove.get("median_s"),
        "prove_cpu_s": prove.get("cpu_s_median"), "prove_rss_mib": prove.get("peak_rss_mib"),
        "proof_bytes": (r.get("proof") or {}).get("proof_bytes"), "verify_s": verify.get("median_s"),
        "max_rel_err": oc.get("max_err_over_max_ref"), "max_abs_err": oc.get("max_abs_err"),
        "error": "; ".join(f"{f['step']}: {str(f['error'])[:80]}" for f in r.get("failures", [])),
    }


COLS = [("k", "k", "{:.0f}"), ("rows", "rows", "{:.0f}"), ("setup_s", "setup s", "{:.2f}"),
        ("prove_wall_s", "prove wall s", "{:.2f}"), ("prove_cpu_s", "prove CPU s", "{:.2f}"),
        ("prove_rss_mib", "peak RSS MiB", "{:.0f}"), ("proof_bytes", "proof bytes", "{:.0f}"),
        ("verify_s", "verify s", "{:.3f}"), ("max_rel_err", "max rel err", "{:.1e}")]


def fmt(v, f):
    return "—" if v is None else f.format(v)


def main(folder):
    folder = Path(folder)
    def size(n):
        # Smallest first: EZKL's k, then its rows (models EZKL could not size go last).
        path = folder / f"ezkl-{n}.json"
        r = json.loads(path.read_text()) if path.exists() else {}
        return (r.get("logrows") or 99, (r.get("settings") or {}).get("num_rows") or 0, n)

    names = sorted({p.stem.split("-", 1)[1] for p in folder.glob("*-*.json")}, key=size)
    print((folder / "machine.txt").read_text().strip() if (folder / "machine.txt").exists() else "")
    for n in names:
        ez = ezkl_row(json.loads((folder / f"ezkl-{n}.json").read_text())) if (folder / f"ezkl-{n}.json").exists() else {}
        zk_rows = json.loads((folder / f"zkinfer-{n}.json").read_text()) if (folder / f"zkinfer-{n}.json").exists() else []
        zk = zk_rows[0] if zk_rows else {}
        print(f"\n### {n}\n")
        print("| | " + " | ".join(c[1] for c in COLS) + " |")
        print("|---" * (len(COLS) + 1) + "|")
        print("| EZKL | " + " | ".join(fmt(ez.get(c[0]), c[2]) for c in COLS) + " |")
        print("| zkinfer | " + " | ".join(fmt(zk.get(c[0]), c[2]) for c in COLS) + " |")
        ratios = []
        for key, _, _ in COLS:
            a, b = zk.get(key), ez.get(key)
            ratios.append("—" if a is None or not b else f"{a / b:.2f}×")
        print("| zkinfer/EZKL | " + " | ".join(ratios) + " |")
        for who, row in (("EZKL", ez), ("zkinfer", zk)):
            if row.get("error"):
                print(f"\n{who} failed: {row['error']}")


if __name__ == "__main__":
    main(sys.argv[1])

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


def load(folder, n):
    """(EZKL row, zkinfer row) of model n; empty dicts where a side has no result file."""
    ez_path, zk_path = folder / f"ezkl-{n}.json", folder / f"zkinfer-{n}.json"
    ez = ezkl_row(json.loads(ez_path.read_text())) if ez_path.exists() else {}
    zk_rows = json.loads(zk_path.read_text()) if zk_path.exists() else []
    return ez, (zk_rows[0] if zk_rows else {})


# Issue 4's targets, as zkinfer/EZKL ratios of the same run: (key, label, most allowed).
TARGETS = [("prove_cpu_s", "prove CPU", 1 / 3), ("prove_rss_mib", "peak RSS", 1 / 2),
           ("proof_bytes", "proof bytes", 1.0), ("max_rel_err", "rel err", 1.0)]


def summary(rows):
    """One line per model: each targeted ratio, and which targets are missed (by how much)."""
    print("\n| model | " + " | ".join(f"{label} (EZKL / zkinfer, ratio)" for _, label, _ in TARGETS) + " | targets |")
    print("|---" * (len(TARGETS) + 2) + "|")
    for n, (ez, zk) in rows.items():
        cells, missed = [], []
        for key, label, most in TARGETS:
            a, b = zk.get(key), ez.get(key)
            if a is None or b is None:
                cells.append("—")
                continue
            ratio = a / b if b else (0.0 if a == 0 else float("inf"))
            f = "{:.2f}" if key.endswith("_s") else ("{:.1e}" if key == "max_rel_err" else "{:.0f}")
            cells.append(f"{f.format(b)} / {f.format(a)}, {ratio:.2f}×")
            if ratio > most:
                missed.append(f"{label} {ratio / most:.2f}× over")
        verdict = ("zkinfer failed: " + zk["error"][:60]) if zk.get("error") else (
            "; ".join(missed) if missed else ("met" if zk else "—"))
        print(f"| {n} | " + " | ".join(cells) + f" | {verdict} |")


def main(folder):
    folder = Path(folder)
    def size(n):
        # Smallest first: EZKL's k, then its rows (models EZKL could not size go last).
        path = folder / f"ezkl-{n}.json"
        r = json.loads(path.read_text()) if path.exists() else {}
        return (r.get("logrows") or 99, (r.get("settings") or {}).get("num_rows") or 0, n)

    names = sorted({p.stem.split("-", 1)[1] for p in folder.glob("*-*.json")}, key=size)
    print((folder / "machine.txt").read_text().strip() if (folder / "machine.txt").exists() else "")
    rows = {n: load(folder, n) for n in names}
    summary(rows)
    for n in names:
        ez, zk = rows[n]
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

#!/usr/bin/env python3
"""Deletes each constraint the circuit code emits, one at a time, and runs the circuit tests.

cargo-mutants changes operators and function bodies but never deletes a statement, and most
constraints here are statements: a range check, a booleanity check, a copy, the gate offsets of
a region, a selector, a copy registration, a fixed weight or tag, a lookup column. This pass
removes each of them (or drops one gate offset) in place, rebuilds, runs the tests, restores
the file, and prints caught / MISSED / unviable per deletion. Called by `scripts/mutants.sh
--deletions`; the working tree must be committed.
"""
import re
import subprocess
import sys
from pathlib import Path

FILES = [
    "circuits/src/chips/sign.rs",
    "circuits/src/chips/dot.rs",
    "circuits/src/chips/extremum.rs",
    "circuits/src/chips/divide.rs",
    "circuits/src/chips/sqrt.rs",
    "circuits/src/chips/function.rs",
    "circuits/src/lincomb.rs",
    "circuits/src/functions.rs",
]

# (pattern on one line, replacements); "" deletes the line.
RULES = [
    (r"^\s*self\.range\.range_check\(.*\);$", [""]),
    (r"^\s*self\.gate\(\)\.assert_bit\(.*\);$", [""]),
    (r"^\s*ctx\.constrain_equal\(.*\);$", [""]),
    (r"^(\s*)\[0\],$", [r"\1[],"]),
    (r"^(\s*)\[0, 3\],$", [r"\1[3],", r"\1[0],"]),
    (r"^(\s*)ctx\.assign_region\(cells, gates\);$", [r"\1ctx.assign_region(cells, []);"]),
    (
        r"^(\s*)ctx\.assign_region\(cells, gates\.chain\(\[3 \* n\]\)\);$",
        [r"\1ctx.assign_region(cells, gates);", r"\1ctx.assign_region(cells, [3 * n]);"],
    ),
    (r"^\s*config\.[se]\.enable\(region, \w+\)\.expect\(.*\);$", [""]),
    (r"^(\s*)\.push\(\(here, src\)\);$", [r"\1.len();"]),
    (r"^\s*copy\.advice_equalities\.push\(\(here, src\)\);$", [""]),
    (r"^\s*region\.assign_fixed\(.*\);$", [""]),
    (r"^\s*inputs\.push\(.*\);$", [""]),
    (r"^(.*)\(tag\.clone\(\) \* m\.query_advice\((.*)$", [r"\1(m.query_advice(\2"]),
]

TESTS = ["--test", "chips", "--test", "functions"]


def run(cmd, timeout):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return None, ""


def main():
    files = [a for a in sys.argv[1:]] or FILES
    build = ["cargo", "test", "-p", "zkinfer-circuits", "--no-run", *TESTS]
    test = ["cargo", "test", "-p", "zkinfer-circuits", *TESTS]
    code, out = run(test, 1800)
    if code != 0:
        sys.exit("the unmutated tests fail:\n" + out[-3000:])
    rows = []
    for f in files:
        path = Path(f)
        original = path.read_text()
        lines = original.split("\n")
        for i, line in enumerate(lines):
            for pattern, replacements in RULES:
                if not re.match(pattern, line):
                    continue
                for rep in replacements:
                    new = re.sub(pattern, rep, line) if rep else None
                    mutated = lines[:i] + ([new] if new is not None else []) + lines[i + 1 :]
                    what = f"{f}:{i + 1}: {line.strip()}" + (
                        f" -> {new.strip()}" if new is not None else " (deleted)"
                    )
                    try:
                        path.write_text("\n".join(mutated))
                        code, _ = run(build, 1800)
                        if code != 0:
                            verdict = "unviable"
                        else:
                            code, _ = run(test, 600)
                            verdict = "timeout" if code is None else ("caught" if code else "MISSED")
                    finally:
                        path.write_text(original)
                    rows.append((verdict, what))
                    print(f"{verdict:<9} {what}", flush=True)
    print()
    for kind in ("caught", "MISSED", "unviable", "timeout"):
        print(f"{kind:<9} {sum(1 for v, _ in rows if v == kind)}")
    return 1 if any(v == "MISSED" for v, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

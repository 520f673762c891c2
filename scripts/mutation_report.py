"""Kill rates of a mutmut run, per file: ``python scripts/mutation_report.py MUTANTS_DIR [NAME_GLOB ...]``.

Reads mutmut's per-file result files (``<file>.py.meta``: each mutant's exit code) under MUTANTS_DIR, keeps the
mutants whose names match the globs (those scripts/mutation.sh runs), and prints per file: killed (a test
failed, or it timed out), survived (every test that ran its function passed), no tests (no selected test
runs its function), not run yet; the kill rate is killed / (killed + survived + no tests). With
``--survivors`` it lists the surviving mutants (``mutmut show NAME`` in the stage folder shows each diff).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

KILLED = ("killed", "timeout", "segfault", "caught by type check")


def classify(exit_code) -> str:
    if exit_code is None:
        return "not run"
    status = status_by_exit_code.get(exit_code, "suspicious")
    return "killed" if status in KILLED else "survived" if status == "survived" else \
        "no tests" if status == "no tests" else status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutants", type=Path)
    parser.add_argument("globs", nargs="*", default=["*"])
    parser.add_argument("--survivors", action="store_true")
    args = parser.parse_args()
    rows, total, survivors = [], Counter(), []
    for meta in sorted(args.mutants.rglob("*.py.meta")):
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        picked = {k: v for k, v in codes.items() if any(fnmatch.fnmatch(k, g) for g in args.globs)}
        if not picked:
            continue
        counts = Counter(classify(v) for v in picked.values())
        survivors += sorted(k for k, v in picked.items() if classify(v) in ("survived", "no tests"))
        rows.append((str(meta.relative_to(args.mutants))[:-5], counts))
        total += counts
    print(f"{'file':44} {'mutants':>7} {'killed':>6} {'survived':>8} {'no tests':>8} {'not run':>7} {'kill rate':>9}")
    for name, counts in [*rows, ("all", total)]:
        decided = counts["killed"] + counts["survived"] + counts["no tests"]
        rate = f"{100 * counts['killed'] / decided:.1f}%" if decided else "-"
        print(f"{name:44} {sum(counts.values()):7} {counts['killed']:6} {counts['survived']:8} {counts['no tests']:8} "
              f"{counts['not run']:7} {rate:>9}")
    if args.survivors:
        print("\n".join(["", "survivors:", *survivors]))


if __name__ == "__main__":
    main()

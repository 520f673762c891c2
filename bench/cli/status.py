"""``bench status``: how far each run of a work dir has come (the logic: :mod:`bench.grid.status`)."""

from __future__ import annotations

import time
from pathlib import Path


def cmd_status(args) -> int:
    from bench.grid.status import as_json, find_runs, run_status

    for run_dir in find_runs(Path(args.work_dir), args.run):
        start = time.perf_counter()
        status = run_status(run_dir)
        if args.json:
            print(as_json(status))
            continue
        for line in status_lines(status, every_cell=args.cells):
            print(line)
        print(f"(read in {time.perf_counter() - start:.1f} s)")
    return 0


def status_lines(status, every_cell: bool = False) -> list[str]:
    """The status of one run as text: the counts per dataset, method and setting, the cells that need a look (or
    every cell), the derived records and the prepare state."""
    from tabulate import tabulate

    from bench.grid.status import STATES

    picked = f"{status.selections} cell selection(s) of bench run" if status.selections else \
        "the config's own grid (no cell selection recorded)"
    lines = [f"run {status.run_dir.name}  ({status.run_dir}; cells: {picked} and the records)"]
    rows = status.counts()
    total = {"dataset": "total", "method": "", "setting": "",
             **{k: sum(r[k] for r in rows) for k in ("cells", *STATES)}}
    lines += tabulate([list(r.values()) for r in rows + [total]], headers=list(total), tablefmt="simple").splitlines()
    listed = STATES if every_cell else ("failed", "running", "stale")
    for state in listed:
        cells = [c for c in status.cells if c.state == state]
        if cells:
            lines.append(f"{state}:")
            lines += [f"  {c.cell.dataset}  {c.cell.name}" + (f"  ({c.detail})" if c.detail else "") for c in cells]
    left_out: dict[str, list[str]] = {}
    for path, why in status.unplanned:
        left_out.setdefault(why, []).append(Path(path).name)
    for why, names in left_out.items():
        lines.append(f"left out ({why}): {len(names)} file(s): {', '.join(names[:3])}" + (", ..." if names[3:] else ""))
    lines.append(f"derived records: {status.derived.get('fused', 0)} fused, "
                 f"{status.derived.get('diagnostics', 0)} diagnostics")
    lines.append("feature cache:" if status.features else "feature cache: nothing planned")
    for row in status.features:
        filling = [f"{kind} {done}/{total} chunks" for kind, (done, total) in row["filling"].items()]
        parts = [f"present: {', '.join(row['present'])}" if row["present"] else "",
                 f"being filled: {', '.join(filling)}" if filling else "",
                 f"missing: {', '.join(row['missing'])}" if row["missing"] else ""]
        lines.append(f"  {row['set']}  ({row['images']} images, {row['backbone']}, views {row['views']})  "
                     + "; ".join(p for p in parts if p) + (f"  ({row['note']})" if row["note"] else ""))
    for g in status.generated:
        lines.append(f"generated images of {g['method']}: {g['present']} present, {g['images'] - g['present']} "
                     f"missing (of {g['images']})")
    return lines

"""``bench report``: tables, plots and an index from every finished cell's record (nothing is recomputed)."""

from __future__ import annotations

import sys

from bench.errors import UsageError


def cmd_report(args) -> int:
    from pathlib import Path

    from bench.cli.options import at_least, choices
    from bench.report import FORMATS, find_records, read_records, summary_table, write_report

    formats = choices("--format", args.format, FORMATS, "format", noun="report format(s) (--format)")
    at_least("--n-boot", args.n_boot, 0)
    paths = find_records(Path(args.work_dir), args.run)
    if not paths:
        print(f"bench: no records under {args.work_dir}" + (f"/{args.run}" if args.run else ""), file=sys.stderr)
        return 2
    records = read_records(paths, skip_bad=True)  # a damaged file is named, left out and listed in the report
    if records.cells.empty and not records.diagnostics:
        print(f"bench: error: no readable record under {args.work_dir}: "
              + "; ".join(f"{path} ({why})" for path, why in records.bad.items()), file=sys.stderr)
        return 2
    methods = sorted(set(records.cells["method"]))
    if args.reference and args.reference not in methods:
        raise UsageError(f"--reference {args.reference} names no method of these records; methods: "
                         f"{', '.join(methods)}")
    print(summary_table(records.cells))
    out = Path(args.out) if args.out else Path(args.work_dir).parent / "reports"
    written = write_report(records, out, tuple(formats), reference=args.reference, n_boot=args.n_boot)
    for path, why in sorted(records.bad.items()):
        print(f"bench: warning: left out {path} ({why})", file=sys.stderr)
    print(f"wrote {len(written)} files to {out} (index: {written[-1]})"
          + (f"; {len(records.bad)} unreadable files left out, listed there" if records.bad else ""))
    return 1 if records.bad else 0

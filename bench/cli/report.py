"""``bench report``: tables, plots and an index from every finished cell's record (nothing is recomputed).

A report remembers what it was made from (``<out>/.bench-report.json``: the options, the bench version and
commit, and each record's and scores file's size and mtime): when nothing of that changed and every file it
wrote is still there, a second ``bench report`` says so and writes nothing (``--force`` writes it again). At a
full grid that is seconds instead of minutes of redrawing the same figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.errors import UsageError

STAMP = ".bench-report.json"


def report_inputs(paths: list[str], args, formats: list[str]) -> str:
    """A digest of what the report is made from: options, code, and every record's and scores file's stat."""
    import hashlib
    import json
    import os

    from bench import __version__
    from bench.provenance import git_commit
    from bench.records import scores_path

    digest = hashlib.sha256(json.dumps({
        "formats": sorted(formats), "reference": args.reference, "n_boot": args.n_boot,
        "bench": __version__, "commit": git_commit()}, sort_keys=True).encode())
    for path in sorted(paths):
        for file in (Path(path), scores_path(Path(path))):
            try:
                st = os.stat(file)
                digest.update(f"{file}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except FileNotFoundError:
                digest.update(f"{file}\0missing\n".encode())
    return digest.hexdigest()


def up_to_date(out: Path, inputs: str) -> int | None:
    """The number of files of the report in ``out`` when it was made from ``inputs`` and is complete, else None."""
    from bench.io import read_json

    try:
        stamp = read_json(out / STAMP)
    except (OSError, ValueError):
        return None
    files = stamp.get("files") or []
    if stamp.get("inputs") != inputs or stamp.get("bad") or not all((out / f).is_file() for f in files):
        return None
    return len(files)


def cmd_report(args) -> int:
    from bench.cli.options import at_least, choices
    from bench.report import FORMATS, find_records, read_records, summary_table, write_report

    formats = choices("--format", args.format, FORMATS, "format", noun="report format(s) (--format)")
    at_least("--n-boot", args.n_boot, 0)
    paths = find_records(Path(args.work_dir), args.run)
    if not paths:
        print(f"bench: no records under {args.work_dir}" + (f"/{args.run}" if args.run else ""), file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.work_dir).parent / "reports"
    inputs = report_inputs(paths, args, formats)
    if not getattr(args, "force", False) and (n_files := up_to_date(out, inputs)) is not None:
        print(f"bench report: nothing new since the report in {out} ({len(paths)} records, {n_files} files); "
              "--force writes it again")
        return 0
    from bench.phases import timed

    with timed("report: read records"):
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
    written = write_report(records, out, tuple(formats), reference=args.reference, n_boot=args.n_boot)
    from bench.io import write_json

    try:
        write_json(out / STAMP, {"inputs": inputs, "bad": len(records.bad),
                                 "files": sorted(str(p.relative_to(out)) for p in written)})
    except (OSError, ValueError):  # a file written outside out: no stamp, the next report writes everything
        pass
    if args.timings:
        from bench import phases

        write_json(Path(args.timings), phases.snapshot())
    for path, why in sorted(records.bad.items()):
        print(f"bench: warning: left out {path} ({why})", file=sys.stderr)
    print(f"wrote {len(written)} files to {out} (index: {written[-1]})"
          + (f"; {len(records.bad)} unreadable files left out, listed there" if records.bad else ""))
    return 1 if records.bad else 0

"""The records as one pandas DataFrame, for notebooks: the frame every table of ``bench report`` (and its
HTML page) is built from, plus the provenance columns the page shows for each record.

    >>> from bench.report import records_frame
    >>> df = records_frame("work_dirs")             # every run under work_dirs; or records_frame(records)
    >>> df[df.status == "ok"].groupby(["dataset", "method", "cell"]).mAP.mean()

One row per cell record (finished or failed; diagnostics records are not cells): the columns of
:data:`bench.report.model.COLUMNS` (``Records.cells``, what every section aggregates) followed by
:data:`PROVENANCE` (data key, git commit, bench version, fused or not) read from the record itself.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report.model import Records, find_records, read_records

PROVENANCE = ["data_key", "git_commit", "bench_version", "derived_from"]


def provenance(record: dict) -> dict:
    """The :data:`PROVENANCE` columns of one record (None where the record does not say)."""
    environment = record.get("environment") or {}
    sources = record.get("derived_from") or []
    return {"data_key": record.get("data_key"), "git_commit": environment.get("git_commit"),
            "bench_version": environment.get("bench"),
            "derived_from": " + ".join(str(s.get("method")) for s in sources) or None}


def records_frame(source: Records | str | Path, run: str | None = None, skip_bad: bool = False) -> pd.DataFrame:
    """One row per cell record of ``source`` (a :class:`Records`, or a work dir whose runs are read; ``run``:
    only that run), the columns every report table is built from plus :data:`PROVENANCE`. A record that
    cannot be read raises :class:`bench.report.RecordError` naming it, unless ``skip_bad`` (then it is left
    out, as ``bench report`` does; ``frame.attrs["bad"]`` lists it with why)."""
    if isinstance(source, Records):
        records = source
    else:
        paths = find_records(Path(source), run)
        if not paths:
            raise FileNotFoundError(f"no records under {Path(source) / run if run else source}")
        records = read_records(paths, skip_bad=skip_bad)
    extra = pd.DataFrame([provenance(records.raw[path]) for path in records.cells.path], columns=PROVENANCE,
                         index=records.cells.index)
    frame = pd.concat([records.cells, extra], axis=1)
    frame.attrs["bad"] = dict(records.bad)
    return frame

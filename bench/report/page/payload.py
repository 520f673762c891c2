"""The data the page's scripts read (one JSON element), from the report's sections and records:

``records``      every cell record as the record panel shows it: the record itself, minus per-class AP (the
                 per-class view has it) and with its environment by reference (``environments``: each distinct
                 one once), so a full grid stays small
``rows``         the records table: one row per record, the columns of :func:`bench.report.records_frame`
``per_class``    the per-class section's tables (display text and best marks) with their dataset and cell
``compare``      the results section's rows (mean ± std per cell) and the significance section's rows, each
                 with its reference's full row key, for the two-method comparison
``figures``      plotly figure JSON per dataset (:mod:`bench.report.page.figures`)
"""

from __future__ import annotations

import json

import pandas as pd

from bench.report.format import Section, fmt_count, fmt_mean_std, fmt_number, fmt_seconds, is_missing
from bench.report.frame import records_frame
from bench.report.model import ROW_KEY, Records, cell_groups, short_backbone_names
from bench.report.page.figures import ablation_figure, curve_figure, pareto_figure
from bench.report.plots import CURVES, variant_bases
from bench.report.tables import ABLATION_BASE

PER_CLASS_KEYS = ("per_class_AP",)


def record_detail(record: dict, environments: dict[str, int]) -> dict:
    """A record for the record panel: per-class AP left out (also inside its zsl / gzsl blocks), the environment
    replaced by its index in ``environments`` (filled as new ones come)."""
    out = {}
    for key, value in record.items():
        if key in PER_CLASS_KEYS:
            continue
        if key in ("zsl", "gzsl") and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in PER_CLASS_KEYS}
        if key == "environment":
            text = json.dumps(value, sort_keys=True)
            value = environments.setdefault(text, len(environments))
        out[key] = value
    return out


def cell_text(text: str, order) -> dict:
    """A records-table cell: display text and sort value (DataTables orthogonal data)."""
    return {"d": text, "o": order}


def table_rows(frame: pd.DataFrame, short: dict[str, str]) -> list[list]:
    """The records table: one row per record of :func:`records_frame`, in its order."""
    rows = []
    for r in frame.itertuples():
        rows.append([r.dataset, r.method, r.cell, r.seed, r.status, cell_text(fmt_number(r.mAP), r.mAP),
                     short[r.backbone], r.protocol, cell_text(fmt_count(r.n_trainable_params), r.n_trainable_params),
                     cell_text(fmt_seconds(r.total_s), r.total_s), r.config_hash, r.data_key or "-",
                     r.git_commit or "-", r.error or ""])
    return rows


RECORD_COLUMNS = ["dataset", "method", "cell", "seed", "status", "mAP (%)", "backbone", "protocol",
                  "trainable params", "seconds", "config hash", "data key", "commit", "error"]


def per_class_tables(section: Section) -> list[dict]:
    """The per-class section's tables (in its order: :func:`cell_groups` of its data) as display text."""
    if section.data is None or section.data.empty:
        return []
    out = []
    for (dataset, cell), table in zip(cell_groups(section.data), section.tables):
        out.append({"dataset": dataset, "cell": cell, "title": table.title,
                    "columns": list(map(str, table.frame.columns)), "rows": table.frame.astype(str).values.tolist(),
                    "best": table.bold.values.tolist() if table.bold is not None else None})
    return out


def reference_key(agg: pd.DataFrame, row) -> list | None:
    """The full row key of a significance row's reference: the cell's only row of that method, else the one whose
    mean is the reference mAP the section compared with; None when that leaves more than one."""
    here = agg[(agg.dataset == row.dataset) & (agg.cell == row.cell) & (agg.method == row.reference)]
    if len(here) > 1:
        here = here[(here["mean"] - row.mAP_reference).abs() <= 1e-9 * max(1.0, abs(row.mAP_reference))]
    return list(here[ROW_KEY].iloc[0]) if len(here) == 1 else None


def compare_data(agg: pd.DataFrame, significance: Section, short: dict[str, str]) -> dict:
    """The rows the comparison view shows: each aggregated cell (key, mean ± std) and each significance row."""
    cells = [{"dataset": r.dataset, "cell": r.cell, "key": [r.method, r.backbone, r.protocol],
              "text": fmt_mean_std(r.mean, r.std, int(r.n)), "n": int(r.n)} for r in agg.itertuples()]
    tests = []
    data = significance.data
    for r in (data.itertuples() if data is not None else []):
        low, high = getattr(r, "ci_low", None), getattr(r, "ci_high", None)
        tests.append({"dataset": r.dataset, "cell": r.cell, "key": [r.method, r.backbone, r.protocol],
                      "reference_key": reference_key(agg, r), "reference": r.reference,
                      "mAP": fmt_number(r.mAP), "mAP_reference": fmt_number(r.mAP_reference),
                      "seeds": f"{r.n_seeds} / {r.n_seeds_reference}", "diff": fmt_number(getattr(r, "diff", None)),
                      "ci": "-" if is_missing(low) else f"[{low:.2f}, {high:.2f}]",  # as significance.md
                      "p": fmt_number(getattr(r, "p_value", None), 3), "note": r.note or "",
                      "significant": None if r.note or is_missing(getattr(r, "significant", None))
                      else bool(r.significant)})
    keys = agg.drop_duplicates(ROW_KEY)[ROW_KEY].values.tolist() if len(agg) else []
    methods = [k[0] for k in keys]
    labels = [k[0] if methods.count(k[0]) == 1 else f"{k[0]} [{short.get(k[1], k[1])}, {k[2]}]" for k in keys]
    return {"keys": keys, "labels": labels, "cells": cells, "tests": tests,
            "n_boot": int(data.n_boot.iloc[0]) if data is not None and len(data) else 0}


def dataset_figures(records: Records, sections: dict[str, Section]) -> dict[str, dict]:
    """Per dataset: the mAP-vs-ratio and vs-K figures, and per cell the Pareto and ablation figures."""
    agg, cost, ablation = sections["results"].data, sections["cost"].data, sections["ablation"].data
    bases = variant_bases(records.ok())
    out = {}
    toy = set(records.cells.loc[records.cells.toy.astype(bool), "dataset"])
    for dataset in agg.dataset.unique():
        here, world = agg[agg.dataset == dataset], " (toy world)" if dataset in toy else ""
        figures = {"curves": {}, "pareto": {}, "ablation": {}}
        for setting, (column, xlabel, log_x, _, what) in CURVES.items():
            if setting == "fewshot" and (here.setting != "fewshot").all():
                continue
            fig = curve_figure(here[~here.method.isin(bases)], setting, column, xlabel, log_x,
                               f"{dataset}: {what}{world}")
            if fig is not None:
                figures["curves"][setting] = fig
        points = cost[cost.dataset == dataset] if cost is not None else pd.DataFrame()
        for cell in dict.fromkeys(points.cell if len(points) else []):
            fig = pareto_figure(points[points.cell == cell], f"{dataset}, {cell}: accuracy vs cost{world}")
            if fig is not None:
                figures["pareto"][cell] = fig
        rows = ablation[ablation.dataset == dataset] if ablation is not None else pd.DataFrame()
        for cell in dict.fromkeys(rows.cell if len(rows) else []):
            figures["ablation"][cell] = ablation_figure(rows[rows.cell == cell], ABLATION_BASE,
                                                        f"{dataset}, {cell}: {ABLATION_BASE} ablation{world}")
        out[dataset] = figures
    return out


def page_data(records: Records, sections: dict[str, Section]) -> dict:
    """Everything the page's scripts read (see the module docstring)."""
    frame = records_frame(records)
    short = short_backbone_names(list(frame.backbone))
    environments: dict[str, int] = {}
    details = [record_detail(records.raw[path], environments) for path in frame.path]
    return {"records": details, "paths": list(frame.path), "environments": [json.loads(text) for text in environments],
            "record_columns": RECORD_COLUMNS, "rows": table_rows(frame, short),
            "per_class": per_class_tables(sections["per_class"]),
            "compare": compare_data(sections["results"].data, sections["significance"], short),
            "figures": dataset_figures(records, sections)}

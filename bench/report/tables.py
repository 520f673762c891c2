"""Record tables of ``bench report`` (from records only, :class:`bench.report.model.Records`), and the
results summary the CLI prints at the end of a run (:func:`summary_table`).

results    mAP per (method, backbone, protocol) x (setting, label ratio), per dataset
per_class  AP per class x method, per dataset and cell
ablation   T2I-PAL and its variants (config ``type: t2ipal``): mAP, branch mAPs, differing settings
failed     failed cells (and failed diagnostics records) with their errors
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.format import (
    Section,
    Table,
    best_mask,
    fmt_mean_std,
    fmt_number,
    markdown_table,
    with_label_columns,
)
from bench.report.model import (
    ROW_KEY,
    Records,
    aggregate,
    backbone_name,
    cell_groups,
    row_labels,
    seed_groups,
    short_backbone_names,
)

ABLATION_BASE = "t2ipal"  # rows: records whose config.method.type is this (the base and its variants)
ABLATION_REFERENCE = "taidpt"  # shown under the ablation rows for reference


def results_display(agg: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One dataset's :func:`aggregate` rows as a results table: (labels [method, backbone, protocol,
    seeds], values "mean ± std" per cell column, bold = best mean per column)."""
    columns = [cell for _, cell in cell_groups(agg)]
    means = agg.set_index([*ROW_KEY, "cell"])["mean"].unstack("cell").reindex(columns=columns)
    rows = means.index
    text = pd.DataFrame("-", index=rows, columns=columns)
    for r in agg.itertuples():
        text.loc[(r.method, r.backbone, r.protocol), r.cell] = fmt_mean_std(r.mean, r.std, int(r.n))
    seeds = agg.groupby(ROW_KEY, sort=False)["seeds"].agg(lambda s: ",".join(sorted(set(",".join(s).split(",")),
                                                                                    key=float)))
    labels = rows.to_frame(index=False)
    labels["seeds"] = [seeds.loc[key] for key in rows]
    return labels, text.reset_index(drop=True), best_mask(means).reset_index(drop=True)


def summary_table(records: pd.DataFrame, fmt: str = "github") -> str:
    """mAP as mean ± std over seeds, one row per (dataset, method, backbone, protocol), one column per
    setting / label ratio; then the failed cells with their errors. Printed at the end of ``bench run``
    and by ``bench report``; backbones by their short names (:func:`short_backbone_names`)."""
    parts = []
    agg = aggregate(records)
    for dataset in agg.dataset.unique():
        labels, values, _ = results_display(agg[agg.dataset == dataset])
        labels["backbone"] = labels.backbone.map(short_backbone_names(list(labels.backbone)))
        labels.insert(0, "dataset", dataset)
        table = with_label_columns(labels, values)
        parts.append(markdown_table(table) if fmt == "github" else table.frame.to_markdown(tablefmt=fmt, index=False))
    failed = records[records.status != "ok"]
    if len(failed):
        parts.append("failed cells:\n" + "\n".join(
            f"  {r.dataset} {r.method} {r.cell} s={r.seed}: {r.error or '(no error recorded)'} ({r.path})"
            for r in failed.itertuples()))
    return "\n\n".join(parts)


def results_section(records: Records) -> Section:
    agg = aggregate(records.cells)
    tables = []
    for dataset in agg.dataset.unique():
        table = with_label_columns(*results_display(agg[agg.dataset == dataset]))
        table.title, table.label_columns = f"{dataset}: mAP (%)", 4
        tables.append(table)
    intro = ("mAP (%) on the test split, mean ± sample std over seeds (std only with more than one seed); best "
             "mean per column in bold. One row per (method, backbone, image protocol); zero-shot cells have "
             "their own column; fused records are methods of their own. The zsl column (seen/unseen classes) is "
             "the mAP on the unseen classes; its GZSL and top-k numbers are in the zsl section.")
    return Section("results", "Results: mAP (%)", intro if tables else "No finished cells.", tables, agg)


def per_class_frame(records: Records) -> pd.DataFrame:
    """Per-class AP of every finished cell, one row per (record, class), with the class's position."""
    rows = []
    for r in records.ok().itertuples():
        for index, (name, ap) in enumerate((records.raw[r.path].get("per_class_AP") or {}).items()):
            rows.append({"dataset": r.dataset, "method": r.method, "backbone": r.backbone, "protocol": r.protocol,
                         "setting": r.setting, "label_ratio": r.label_ratio, "cell": r.cell, "seed": r.seed,
                         "class": name, "class_index": index, "AP": np.nan if ap is None else float(ap)})
    return pd.DataFrame(rows, columns=["dataset", *ROW_KEY, "setting", "label_ratio", "cell", "seed", "class",
                                       "class_index", "AP"])


def per_class_section(records: Records) -> Section:
    """Rows = classes (in the records' order), columns = methods: AP (%) averaged over seeds, best per class
    in bold (a class without a positive in the test split has no AP: ``-``)."""
    long = per_class_frame(records)
    keys = ["dataset", *ROW_KEY, "setting", "cell", "class"]
    means = long.groupby(keys, sort=False, dropna=False).agg(
        label_ratio=("label_ratio", "first"), class_index=("class_index", "min"), AP=("AP", "mean"),
        n=("seed", "count")).reset_index()
    tables = []
    for dataset, cell in cell_groups(means):
        subset = means[(means.dataset == dataset) & (means.cell == cell)].copy()
        methods = subset.drop_duplicates(ROW_KEY)[ROW_KEY]
        label_of = dict(zip(map(tuple, methods.values), row_labels(methods)))
        subset["column"] = [label_of[tuple(k)] for k in subset[ROW_KEY].values]
        subset["position"] = subset.groupby("class")["class_index"].transform("min")
        matrix = subset.set_index(["position", "class", "column"])["AP"].unstack("column").sort_index()
        matrix = matrix.reindex(columns=list(label_of.values()))
        text = matrix.map(fmt_number)
        labels = pd.DataFrame({"class": matrix.index.get_level_values("class")})
        table = with_label_columns(labels, text, best_mask(matrix, axis=1))
        table.title = f"{dataset}, {cell}: AP (%) per class"
        tables.append(table)
    intro = "Average precision (%) per class, mean over seeds; the best method of each class in bold."
    return Section("per_class", "Per-class AP (%)", intro, tables, means)


# ----- T2I-PAL ablation ---------------------------------------------------------------------------


def flatten(values: dict, prefix: str = "") -> dict:
    """Nested dicts as one dict with dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def hparams_of(record: dict) -> dict:
    """What sets a method's result apart: its hyperparameters (``method_hparams``, else the config's
    kwargs), its training schedule (``train.*``) and its backbone, flattened."""
    method_cfg = (record.get("config") or {}).get("method") or {}
    out = flatten(record.get("method_hparams") or method_cfg.get("kwargs") or {})
    out.update(flatten(record.get("train_schedule") or method_cfg.get("train") or {}, "train."))
    out["backbone"] = backbone_name(record)
    return out


def fmt_value(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return json.dumps(value)
    return str(value)


def hparam_diff(base: dict, other: dict) -> str:
    """``key=value`` of ``other`` for every key whose value differs from ``base`` (sorted; ``(unset)`` for
    a key ``other`` lacks)."""
    unset = object()
    changed = [key for key in sorted(set(base) | set(other)) if base.get(key, unset) != other.get(key, unset)]
    return ", ".join(f"{k}={fmt_value(other[k]) if k in other else '(unset)'}" for k in changed)


def leakage_note(records: Records, dataset: str, method: str, recs: list[dict]) -> str:
    """A row's near-duplicates of test images: removed from its training set (``exclude_near_duplicates``),
    else counted by the diagnostics record of its generated images, else ``-``."""
    removed = [(r.get("train_data") or {}).get("near_duplicates_removed") for r in recs]
    if removed[0]:
        return f"{removed[0]['n_removed']} removed (cos ≥ {removed[0]['threshold']:g})"
    for path, rec in records.diagnostics.items():
        leakage = rec.get("leakage") or {}
        if Path(path).stem == f"diagnostics__{method}" and rec.get("dataset") == dataset and leakage:
            return (f"{leakage.get('n_near_duplicates')} of {leakage.get('n_generated')} generated "
                    f"(cos ≥ {float(leakage.get('threshold')):g})")
    return "-"


def ablation_section(records: Records) -> Section:
    """Per dataset and cell: T2I-PAL (``t2ipal``) first, then its variants, then TaI-DPT for reference;
    mAP and each branch's mAP (mean ± std over seeds) and what differs from the base method."""
    ok = records.ok()
    rows, tables = [], []
    for dataset, cell in cell_groups(ok[ok.method_type == ABLATION_BASE]):
        here = ok[(ok.dataset == dataset) & (ok.cell == cell)]
        members = here[(here.method_type == ABLATION_BASE) | (here.method == ABLATION_REFERENCE)]
        groups = seed_groups(members)
        order = sorted(groups, key=lambda k: (k[0] != ABLATION_BASE, k[0] == ABLATION_REFERENCE, k))
        base_paths = next((groups[k] for k in order if k[0] == ABLATION_BASE), None)
        base = hparams_of(records.raw[base_paths[0]]) if base_paths else None
        table_rows = []
        for key in order:
            recs = [records.raw[p] for p in groups[key]]
            maps = pd.Series([r["mAP"] for r in recs], dtype=float)
            branches = pd.DataFrame([r.get("branches") or {} for r in recs]).astype(float)
            if key[0] == ABLATION_BASE:
                differs = "(base)"
            elif key[0] == ABLATION_REFERENCE:
                differs = "(reference)"
            elif base is None:
                differs = f"(no {ABLATION_BASE} record to compare)"
            else:
                differs = hparam_diff(base, hparams_of(recs[0])) or "(no difference)"
            row = {"dataset": dataset, "cell": cell, "method": key[0], "backbone": key[1], "protocol": key[2],
                   "differs": differs, "leakage": leakage_note(records, dataset, key[0], recs), "n": len(recs),
                   "mAP": maps.mean(), "mAP_std": maps.std()}
            row.update({f"branch {b}": branches[b].mean() for b in branches.columns})
            row.update({f"branch {b}_std": branches[b].std() for b in branches.columns})
            table_rows.append(row)
        frame = pd.DataFrame(table_rows)
        keys = frame[ROW_KEY]
        value_cols = ["mAP", *sorted(c for c in frame.columns if c.startswith("branch ") and not c.endswith("_std")
                                     and c != "branch score")]  # the "score" branch is the mAP
        text = pd.DataFrame({c: [fmt_mean_std(m, s, n) for m, s, n in zip(frame[c], frame[f"{c}_std"], frame.n)]
                             for c in value_cols})
        labels = pd.DataFrame({"method": row_labels(keys), f"differs from {ABLATION_BASE}": frame.differs,
                               "near-duplicates of test images": frame.leakage})
        table = with_label_columns(labels, text, best_mask(frame[value_cols]))
        table.title, table.label_columns = f"{dataset}, {cell}: T2I-PAL ablation (mAP %)", 3
        tables.append(table)
        rows += table_rows
    intro = (f"Rows: records whose method type is `{ABLATION_BASE}` (the base method and its ablation variants) "
             f"and `{ABLATION_REFERENCE}` for reference. Columns: mAP and each branch's mAP (mean ± std over "
             "seeds; best in bold); settings that differ from the base method's record (hyperparameters, "
             "training schedule as train.*, backbone); the row's generated images that nearly duplicate a test "
             "image (the diagnostics' leakage check), or how many it removed before training. Branch weights "
             "are chosen on validation images in every row (the record's `validation`).")
    if not tables:
        intro = f"No records of method type `{ABLATION_BASE}`."
    return Section("ablation", "T2I-PAL ablation", intro, tables, pd.DataFrame(rows) if rows else None)


# ----- failures -----------------------------------------------------------------------------------


def failed_section(records: Records) -> Section:
    """Every record whose status is not "ok" (cells and diagnostics), with its error and file."""
    failed = records.cells[records.cells.status != "ok"]
    rows = [{"dataset": r.dataset, "method": r.method, "cell": r.cell, "seed": r.seed,
             "error": r.error or "(no error recorded)", "record": r.path} for r in failed.itertuples()]
    rows += [{"dataset": rec.get("dataset"), "method": "diagnostics", "cell": "-", "seed": "-",
              "error": rec.get("error") or "(no error recorded)", "record": path}
             for path, rec in records.diagnostics.items() if rec.get("status") != "ok"]
    frame = pd.DataFrame(rows, columns=["dataset", "method", "cell", "seed", "error", "record"])
    tables = [Table("Failed records", frame.astype(str), label_columns=frame.shape[1])] if rows else []
    intro = f"{len(rows)} failed record(s)." if rows else "No failed cells."
    return Section("failed", "Failed cells", intro, tables, frame)

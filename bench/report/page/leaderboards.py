"""The page's leaderboards: per dataset and setting (zero-shot; partial labels by ratio; few-shot by K; ZSL and
GZSL), one row per (method, backbone, protocol) and point, as plain HTML tables that page.js makes sortable
and filterable.

Every number comes from a report section's data, joined, never recomputed: mean ± std, seeds and the best
mark from the results section (:func:`bench.report.tables.results_display`, the same bold as
``results.md``); trainable parameters and wall seconds per cell from the cost section
(:func:`bench.report.cost.cost_points`); "published" and "ours − published" from the published section's
matched rows; the ZSL / GZSL columns from the zsl section's tables. Each row carries the positions of its
records (``data-records``) so that clicking it opens them, and its method, backbone and protocol for the
filters.
"""

from __future__ import annotations

import json

import pandas as pd

from bench.report.format import MISSING, Section, fmt_count, fmt_mean_std, fmt_number, fmt_seconds
from bench.report.model import ROW_KEY, Records, short_backbone_names
from bench.report.page.markup import cell, esc, table_html
from bench.report.published import point_key, source_tag
from bench.report.tables import results_display

SETTINGS = {"zero-shot": ("zero-shot", None, None), "partial": ("partial labels", "label ratio", "label_ratio"),
            "fewshot": ("few-shot", "K", "shots")}
KEY_CELL = ["dataset", *ROW_KEY, "cell"]


def record_positions(records: Records) -> dict[tuple, list[int]]:
    """(dataset, method, backbone, protocol, cell) -> the positions in :attr:`Records.cells` of its finished
    records, by seed."""
    ok = records.ok().sort_values("seed", kind="stable")
    return {key: [records.cells.index.get_loc(i) for i in group.index]
            for key, group in ok.groupby(KEY_CELL, sort=False)}


def row_attrs(key: tuple, backbone: str, positions: list[int]) -> str:
    method, _, protocol = key
    return (f'data-method="{esc(method)}" data-backbone="{esc(backbone)}" data-protocol="{esc(protocol)}" '
            f'data-records="{" ".join(map(str, positions))}"')


def cost_lookup(cost: pd.DataFrame | None) -> dict[tuple, tuple]:
    """(dataset, method, backbone, protocol, cell) -> (trainable parameters, wall seconds per cell)."""
    if cost is None or cost.empty:
        return {}
    return {tuple(k): (p, s) for k, p, s in zip(cost[KEY_CELL].values, cost.n_trainable_params, cost.cost_s)}


def published_lookup(published: Section) -> dict[tuple, list]:
    """(dataset, method, model, resolution, setting, point) -> [(our mean, published, diff, source)] of the
    published section's matched rows."""
    data = published.data
    if data is None or data.empty:
        return {}
    out: dict[tuple, list] = {}
    for r in data[data.table == "matched"].itertuples():
        out.setdefault((r.dataset, r.method, r.model, r.resolution, r.setting, r.point), []).append(
            (float(r.mean), r.published, r.diff, r.source))
    return out


def published_match(lookup: dict, r) -> tuple | None:
    """The published row our aggregate row ``r`` was matched to: same setup and the same mean (the published
    section compares exactly this mean; two protocols of one setup are told apart by it)."""
    point = point_key(r.setting, r.label_ratio, r.shots)
    for mean, published, diff, source in lookup.get((r.dataset, r.method, r.model, r.resolution, r.setting, point), []):
        if abs(mean - float(r.mean)) <= 1e-9 * max(1.0, abs(mean)):
            return published, diff, source
    return None


def best_marks(agg: pd.DataFrame) -> dict[tuple, bool]:
    """((method, backbone, protocol), cell) -> bold in the results table of one dataset's aggregate rows."""
    labels, _, bold = results_display(agg)
    keys = zip(labels.method, labels.backbone, labels.protocol)
    return {(key, column): bool(bold[column].iat[i]) for i, key in enumerate(keys) for column in bold.columns}


def order_attr(order: list[tuple[int, str]]) -> str:
    """The table's initial DataTables order (column, direction), as the rows are already written."""
    return " data-initial-order='" + json.dumps([list(o) for o in order]) + "'"


def setting_table(rows: pd.DataFrame, bold: dict, costs: dict, published: dict, positions: dict,
                  short: dict[str, str], setting: str, table_id: str, caption: str) -> str:
    """One dataset and setting as a leaderboard table (rows sorted by point, then mean mAP, best first)."""
    _, point_title, point_column = SETTINGS[setting]
    matches = [published_match(published, r) for r in rows.itertuples()]
    with_published = any(matches)
    headers = ([point_title] if point_title else []) + ["method", "backbone", "protocol", "seeds", "mAP (%)",
                                                         "trainable params", "seconds per cell"]
    headers += ["published", "ours − published"] if with_published else []
    html_rows = []
    for r, match in zip(rows.itertuples(), matches):
        key = (r.method, r.backbone, r.protocol)
        params, seconds = costs.get((r.dataset, *key, r.cell), (None, None))
        cells = [cell(f"{float(getattr(r, point_column)):g}", float(getattr(r, point_column)), label=True)] \
            if point_column else []
        cells += [cell(r.method, label=True), cell(short[r.backbone], label=True), cell(r.protocol, label=True),
                  cell(f"{int(r.n)} ({r.seeds})", int(r.n)), cell(fmt_mean_std(r.mean, r.std, int(r.n)), r.mean,
                                                                 bold.get((key, r.cell), False)),
                  cell(fmt_count(params), params if params is not None else float("nan")),
                  cell(fmt_seconds(seconds), seconds if seconds is not None else float("nan"))]
        if with_published:
            cells += [cell(f"{fmt_number(match[0])} {source_tag(match[2])}".strip() if match else MISSING,
                           match[0] if match else None, title=match[2] if match else ""),
                      cell(fmt_number(match[1]) if match else MISSING, match[1] if match else None)]
        attrs = row_attrs(key, short[r.backbone], positions.get((r.dataset, *key, r.cell), []))
        html_rows.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    order = ([(0, "asc")] if point_column else []) + [(headers.index("mAP (%)"), "desc")]
    return table_html(headers, html_rows, table_id, "dt lb", caption, order_attr(order))


def zsl_tables(zsl: Section, costs: dict, positions: dict, short: dict[str, str], dataset: str
               ) -> list[tuple[str, str]]:
    """(title, table HTML) of the zsl section's ZSL and GZSL tables of ``dataset``, with backbone, protocol,
    trainable parameters and seconds beside them; sort values from the section's data (its means)."""
    if zsl.data is None:
        return []
    out = []
    groups = list(zsl.data.groupby(["dataset", "part"], sort=False))
    for table, ((name, part), data) in zip(zsl.tables, groups):
        if name != dataset:
            continue
        frame, data = table.frame, data.reset_index(drop=True)
        metrics = [c for c in frame.columns[table.label_columns:]]
        headers = ["method", "backbone", "protocol", "seeds", *metrics, "trainable params", "seconds per cell"]
        rows = []
        for i, r in enumerate(data.itertuples()):
            key = (r.method, r.backbone, r.protocol)
            params, seconds = costs.get((dataset, *key, "zsl"), (None, None))
            cells = [cell(r.method, label=True), cell(short[r.backbone], label=True), cell(r.protocol, label=True),
                     cell(frame.seeds.iat[i], label=True)]
            cells += [cell(frame[m].iat[i], data[m].iat[i], bool(table.bold[m].iat[i])) for m in metrics]
            cells += [cell(fmt_count(params), params if params is not None else float("nan")),
                      cell(fmt_seconds(seconds), seconds if seconds is not None else float("nan"))]
            attrs = row_attrs(key, short[r.backbone], positions.get((dataset, *key, "zsl"), []))
            rows.append(f"<tr {attrs}>{''.join(cells)}</tr>")
        label = "ZSL" if part == "zsl" else "GZSL"
        out.append((table.title, table_html(headers, rows, f"lb-{dataset}-{label}", "dt lb", table.title,
                                            order_attr([(4, "desc")]))))
    return out


def leaderboards(records: Records, sections: dict[str, Section]) -> tuple[str, dict[str, list[str]]]:
    """The leaderboards' HTML (per dataset: a heading, then a table per setting) and the filter choices
    (method, backbone, protocol: every value shown in a leaderboard)."""
    agg = sections["results"].data
    costs = cost_lookup(sections["cost"].data)
    published = published_lookup(sections["published"])
    positions = record_positions(records)
    short = short_backbone_names(list(records.cells.backbone))
    parts, choices = [], {"method": set(), "backbone": set(), "protocol": set()}
    zsl = sections["zsl"].data
    datasets = list(dict.fromkeys([*agg.dataset, *(zsl.dataset if zsl is not None else [])]))
    for dataset in datasets:
        here = agg[agg.dataset == dataset]
        bold = best_marks(here) if len(here) else {}
        tables = []
        for setting, (title, _, point_column) in SETTINGS.items():
            rows = here[here.setting == setting]
            if rows.empty:
                continue
            rows = rows.assign(_point=rows[point_column].astype(float) if point_column else 0.0)
            rows = rows.sort_values(["_point", "mean"], ascending=[True, False], kind="stable")
            caption = f"{dataset}: {title}"
            tables.append((caption, setting_table(rows, bold, costs, published, positions, short, setting,
                                                  f"lb-{dataset}-{setting}", caption)))
        tables += zsl_tables(sections["zsl"], costs, positions, short, dataset)
        ok = records.ok()
        for column in choices:
            choices[column] |= {short[v] if column == "backbone" else v for v in ok[ok.dataset == dataset][column]}
        parts.append(f'<h3 id="lb-{esc(dataset)}">{esc(dataset)}</h3>'
                     + "".join(f'<div class="table-wrap">{html}</div>' for _, html in tables))
    return "\n".join(parts), {k: sorted(v) for k, v in choices.items()}

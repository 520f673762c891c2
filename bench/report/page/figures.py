"""The page's interactive figures, as plotly figure JSON (drawn by plotly.js in the browser), from the same
frames as the report's tables and PNG plots:

``curve_figure``     mAP vs label ratio / vs K per (method, backbone, protocol), from the results section's
                     :func:`bench.report.model.aggregate` rows (mean, min-max as error bars); zero-shot rows as
                     horizontal reference lines; ablation variants left out, as in the PNG.
``pareto_figure``    mAP vs wall seconds (log x) for one cell, from the cost section's
                     :func:`bench.report.cost.cost_points` (its ``pareto`` flag; the front joined by a step line).
``ablation_figure``  one cell of the ablation section: each row's mAP, ± the std over seeds.

Every series is one (method, backbone, protocol) row, named as in the tables (:func:`row_labels`), in the
colour, dash and marker :func:`bench.report.style.series_styles` gives the PNG plots; a method's zero-shot
reference line shares its legend entry (``legendgroup``), so the legend toggles the whole method. Hover text
is the tables' formatted text (mean ± std, seeds). Each trace's ``meta`` is its series' name ("series"
traces) or what it is (``pareto front``, ``base``): the browser tests count series by it.
"""

from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from bench.report.format import fmt_count, fmt_mean_std, fmt_number, fmt_seconds
from bench.report.model import ROW_KEY, row_labels
from bench.report.style import series_styles

DASHES = {"-": "solid", "--": "dash", "-.": "dashdot", ":": "dot"}
SYMBOLS = {"o": "circle", "s": "square", "^": "triangle-up", "D": "diamond", "v": "triangle-down", "P": "cross",
           "X": "x", "<": "triangle-left", ">": "triangle-right", "*": "star"}
LAYOUT = dict(template="none", height=460, margin=dict(l=60, r=20, t=50, b=60), hovermode="closest",
              legend=dict(orientation="h", y=-0.18, font=dict(size=11)), font=dict(size=12))
GRID = dict(showgrid=True, gridcolor="#e5e5e5", zeroline=False, showline=True, linecolor="#999", ticks="outside")


def to_json(fig: go.Figure) -> dict:
    """The figure as plain JSON data (``data``, ``layout``), as plotly.js takes it."""
    return json.loads(pio.to_json(fig, validate=False, pretty=False))


def labelled(frame: pd.DataFrame) -> dict[tuple, str]:
    """(method, backbone, protocol) -> its series name among the keys of ``frame``."""
    keys = frame[ROW_KEY].drop_duplicates()
    return dict(zip(map(tuple, keys.values), row_labels(keys)))


def seeds_text(n, seeds) -> str:
    return f"{int(n)} seed{'s' if int(n) != 1 else ''} ({seeds})"


def curve_figure(agg: pd.DataFrame, setting: str, column: str, xlabel: str, log_x: bool, title: str) -> dict | None:
    """One dataset's aggregate rows of ``setting`` as lines over ``column`` (label_ratio or shots), zero-shot
    rows as dashed horizontal lines across the plot; None when there is neither."""
    curves, zero = agg[agg.setting == setting], agg[agg.setting == "zero-shot"]
    if curves.empty and zero.empty:
        return None
    names = labelled(pd.concat([curves, zero]))
    styles = series_styles(names.values())
    fig = go.Figure()
    with_curve = set()
    for key, rows in curves.groupby(ROW_KEY, sort=False):
        rows = rows.sort_values(column)
        name, style = names[key], styles[names[key]]
        with_curve.add(name)
        x = rows[column].astype(float)
        hover = [f"<b>{name}</b><br>{r.cell}: {fmt_mean_std(r.mean, r.std, int(r.n))}<br>"
                 f"min {fmt_number(r.min)}, max {fmt_number(r.max)}<br>{seeds_text(r.n, r.seeds)}"
                 for r in rows.itertuples()]
        fig.add_trace(go.Scatter(
            x=x, y=rows["mean"].astype(float), name=name, legendgroup=name, meta=name, mode="lines+markers",
            line=dict(color=style.color, dash=DASHES[style.linestyle], width=2),
            marker=dict(symbol=SYMBOLS[style.marker], size=8),
            error_y=dict(type="data", symmetric=False, array=rows["max"].astype(float) - rows["mean"].astype(float),
                         arrayminus=rows["mean"].astype(float) - rows["min"].astype(float), thickness=1, width=3),
            hovertext=hover, hoverinfo="text"))
    points = sorted(set(curves[column].astype(float))) or ([1.0, 16.0] if log_x else [0.0, 1.0])
    span = [min(points), max(points)] if len(points) > 1 else ([points[0] / 2, points[0] * 2] if log_x else [0, 1])
    for key, rows in zero.groupby(ROW_KEY, sort=False):
        name, style = names[key], styles[names[key]]
        r = next(rows.itertuples())
        text = f"<b>{name}</b> (zero-shot)<br>{fmt_mean_std(r.mean, r.std, int(r.n))}<br>{seeds_text(r.n, r.seeds)}"
        fig.add_trace(go.Scatter(
            x=span, y=[float(r.mean)] * 2, name=f"{name} (zero-shot)", legendgroup=name, meta=name,
            showlegend=name not in with_curve, mode="lines", hovertext=[text, text], hoverinfo="text",
            line=dict(color=style.color, dash="dot" if style.linestyle == "-" else DASHES[style.linestyle], width=1.5)))
    xaxis = dict(GRID, title=xlabel, type="log" if log_x else "linear")
    if 0 < len(points) <= 12:
        xaxis.update(tickvals=points, ticktext=[f"{p:g}" for p in points])
    fig.update_layout(LAYOUT, title=title, xaxis=xaxis, yaxis=dict(GRID, title="mAP (%)"))
    return to_json(fig)


def pareto_figure(points: pd.DataFrame, title: str) -> dict | None:
    """One dataset and cell of :func:`bench.report.cost.cost_points`: mAP vs wall seconds (log x), one trace
    per row (Pareto-optimal points filled, the others open), the front as a step line; None when no point
    has a positive cost."""
    cost, mAP = points.cost_s.astype(float), points.mAP.astype(float)
    points = points[(cost > 0) & cost.notna() & mAP.notna()]
    if points.empty:
        return None
    names = labelled(points)
    styles = series_styles(names.values())
    fig = go.Figure()
    front = points[points.pareto.astype(bool)].sort_values("cost_s")
    fig.add_trace(go.Scatter(x=front.cost_s.astype(float), y=front.mAP.astype(float), mode="lines", name="Pareto front",
                             meta="pareto front", line=dict(color="#d62728", shape="hv", width=1.5), hoverinfo="skip"))
    for r in points.itertuples():
        name = names[(r.method, r.backbone, r.protocol)]
        text = (f"<b>{name}</b><br>{r.cell}: mAP {fmt_number(r.mAP)} (mean of {int(r.n)} seed"
                f"{'s' if int(r.n) != 1 else ''})<br>{fmt_seconds(r.cost_s)} s per cell, trainable parameters "
                f"{fmt_count(r.n_trainable_params)}<br>{'Pareto-optimal' if r.pareto else 'dominated'}")
        fig.add_trace(go.Scatter(
            x=[float(r.cost_s)], y=[float(r.mAP)], name=name, legendgroup=name, meta=name, mode="markers",
            marker=dict(color=styles[name].color, symbol=SYMBOLS[styles[name].marker] + ("" if r.pareto else "-open"),
                        size=11, line=dict(width=1.5, color=styles[name].color)), hovertext=[text], hoverinfo="text"))
    fig.update_layout(LAYOUT, title=title, xaxis=dict(GRID, title="wall seconds per cell (log)", type="log"),
                      yaxis=dict(GRID, title="mAP (%)"))
    return to_json(fig)


def ablation_figure(rows: pd.DataFrame, base: str, title: str) -> dict | None:
    """One dataset and cell of the ablation section's data: a point per row (mAP ± std over seeds), the base
    method's mAP as a dashed line; hover says what differs from the base and the near duplicates."""
    if rows is None or rows.empty:
        return None
    names = labelled(rows)
    styles = series_styles(names.values())
    fig = go.Figure()
    for r in rows.itertuples():
        name = names[(r.method, r.backbone, r.protocol)]
        text = (f"<b>{name}</b><br>mAP {fmt_mean_std(r.mAP, r.mAP_std, int(r.n))} ({int(r.n)} seed"
                f"{'s' if int(r.n) != 1 else ''})<br>{r.differs}<br>near duplicates of test images: {r.leakage}")
        fig.add_trace(go.Scatter(
            x=[float(r.mAP)], y=[name], name=name, legendgroup=name, meta=name, mode="markers", showlegend=False,
            marker=dict(color=styles[name].color, symbol=SYMBOLS[styles[name].marker], size=10),
            error_x=dict(type="data", array=[0.0 if r.mAP_std != r.mAP_std else float(r.mAP_std)], thickness=1.2),
            hovertext=[text], hoverinfo="text"))
    base_rows = rows[rows.method == base]
    if len(base_rows):
        fig.add_vline(x=float(base_rows.mAP.iloc[0]), line=dict(color="#555", dash="dash", width=1))
    fig.update_layout(LAYOUT, title=title, height=140 + 28 * len(rows),
                      xaxis=dict(GRID, title="mAP (%)"), yaxis=dict(GRID, autorange="reversed", type="category"))
    return to_json(fig)

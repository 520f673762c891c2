"""The plots of ``bench report`` (matplotlib, drawn off-screen with the Agg canvas; no pyplot state):

``map_vs_ratio_<dataset>``  mAP vs label ratio, one line per (method, backbone, protocol): the mean over
                            seeds with a min-max band; zero-shot methods as horizontal dashed lines.
``pareto_<dataset>``        mAP vs wall seconds (log x), one panel per cell; Pareto-optimal points
                            highlighted and joined (:func:`bench.report.cost.cost_points`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.report.cost import cost_points
from bench.report.model import ROW_KEY, Records, aggregate, row_labels


def file_stem(text: str) -> str:
    """``text`` made safe as a file name part."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text)


def save(fig: Figure, out: Path, stem: str, formats: list[str]) -> list[Path]:
    FigureCanvasAgg(fig)
    paths = [out / f"{stem}.{fmt}" for fmt in formats]
    for path in paths:
        fig.savefig(path, bbox_inches="tight", dpi=150)
    return paths


def color_of(index: int):
    from matplotlib import colormaps

    return colormaps["tab20" if index >= 10 else "tab10"](index % 20)


def ratio_plot(agg: pd.DataFrame, title: str) -> Figure | None:
    """One dataset's :func:`bench.report.model.aggregate` rows: partial-label cells as lines over the label
    ratio (mean, min-max band), zero-shot cells as dashed horizontal lines. None when there is neither."""
    partial, zero = agg[agg.setting == "partial"], agg[agg.setting == "zero-shot"]
    if partial.empty and zero.empty:
        return None
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    keys = pd.concat([partial, zero])[ROW_KEY].drop_duplicates()
    labels = dict(zip(map(tuple, keys.values), row_labels(keys)))
    for index, key in enumerate(labels):
        color = color_of(index)
        line = partial[(partial[ROW_KEY] == list(key)).all(axis=1)].sort_values("label_ratio")
        if len(line):
            x = line.label_ratio.astype(float).to_numpy()
            ax.plot(x, line["mean"], marker="o", color=color, label=labels[key])
            if (line.n > 1).any():
                ax.fill_between(x, line["min"].astype(float), line["max"].astype(float), color=color, alpha=0.2,
                                linewidth=0)
        flat = zero[(zero[ROW_KEY] == list(key)).all(axis=1)]
        for row in flat.itertuples():
            ax.axhline(row.mean, color=color, linestyle="--", label=f"{labels[key]} (zero-shot)")
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("label ratio (fraction of training labels known)")
    ax.set_ylabel("mAP (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def pareto_plot(points: pd.DataFrame, title: str) -> Figure | None:
    """One dataset's :func:`bench.report.cost.cost_points`: a panel per cell, mAP vs wall seconds (log x),
    Pareto-optimal points filled and joined by a step line. Points without a positive cost are left
    out. None when no point has one."""
    points = points[np.isfinite(points.cost_s.astype(float)) & (points.cost_s.astype(float) > 0)
                    & np.isfinite(points.mAP.astype(float))]
    if points.empty:
        return None
    cells = list(dict.fromkeys(points.cell))
    fig = Figure(figsize=(4.2 * len(cells), 3.8), layout="constrained")
    axes = fig.subplots(1, len(cells), squeeze=False)[0]
    for ax, cell in zip(axes, cells):
        here = points[points.cell == cell]
        labels = row_labels(here[ROW_KEY])
        rest, front = here[~here.pareto], here[here.pareto].sort_values("cost_s")
        ax.scatter(rest.cost_s, rest.mAP, facecolors="none", edgecolors="grey", label="dominated")
        ax.scatter(front.cost_s, front.mAP, color="tab:red", zorder=3, label="Pareto-optimal")
        ax.step(front.cost_s, front.mAP, where="post", color="tab:red", alpha=0.6)
        for x, y, label in zip(here.cost_s, here.mAP, labels):
            ax.annotate(label, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.margins(x=0.2, y=0.1)  # room for the point labels
        ax.set_xlabel("wall seconds per cell (log)")
        ax.set_ylabel("mAP (%)")
        ax.set_title(cell)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return fig


def write_plots(records: Records, out: Path, formats: list[str]) -> dict[str, list[Path]]:
    """Both plots for every dataset in ``formats`` (png, pdf); returns {description: paths}."""
    written: dict[str, list[Path]] = {}
    toy = set(records.cells.loc[records.cells.toy.astype(bool), "dataset"])
    agg = aggregate(records.cells)
    for dataset in agg.dataset.unique():
        title = dataset + (" (toy world)" if dataset in toy else "")
        fig = ratio_plot(agg[agg.dataset == dataset], title)
        if fig is not None:
            written[f"mAP vs label ratio, {dataset}"] = save(fig, out, f"map_vs_ratio_{file_stem(dataset)}", formats)
    points = cost_points(records)
    for dataset in points.dataset.unique():
        title = f"{dataset}: accuracy vs cost" + (" (toy world)" if dataset in toy else "")
        fig = pareto_plot(points[points.dataset == dataset], title)
        if fig is not None:
            written[f"accuracy vs cost (Pareto), {dataset}"] = save(fig, out, f"pareto_{file_stem(dataset)}", formats)
    return written

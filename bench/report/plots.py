"""The plots of ``bench report`` (matplotlib, drawn off-screen with the Agg canvas; no pyplot state):

``map_vs_ratio_<dataset>``    mAP vs label ratio, one line per (method, backbone, protocol): the mean over
                              seeds with a min-max band, each series its own colour and line style
                              (:func:`bench.report.style.series_styles`); zero-shot methods as horizontal
                              reference lines labelled at the right edge. Ablation variants are left out.
``map_vs_shots_<dataset>``    the same over the few-shot K (log2 axis), when the dataset has few-shot cells.
``ablation_<base>_<dataset>`` ablation variants (records whose method type names another method, e.g.
                              ``t2ipal_no_heatmap`` of ``t2ipal``): one panel per cell, each variant's mAP
                              (min-max over seeds) beside the base method's, with the difference.
``pareto_<dataset>``          mAP vs wall seconds (log x), one panel per cell; Pareto-optimal points
                              highlighted and joined (:func:`bench.report.cost.cost_points`); point labels
                              placed where they overlap nothing (:func:`place_point_labels`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from matplotlib.transforms import Bbox

from bench.report.cost import cost_points
from bench.report.model import ROW_KEY, Records, aggregate, row_labels
from bench.report.style import boxes_overlap, log_ticks, series_styles, spread, tick_text

LABEL_SIZE = 7  # points, direct labels (reference lines, Pareto points)


def file_stem(text: str) -> str:
    """``text`` made safe as a file name part."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text)


def save(fig: Figure, out: Path, stem: str, formats: list[str]) -> list[Path]:
    FigureCanvasAgg(fig)
    paths = [out / f"{stem}.{fmt}" for fmt in formats]
    for path in paths:
        fig.savefig(path, bbox_inches="tight", dpi=150)
    return paths


def variant_bases(cells: pd.DataFrame) -> dict[str, str]:
    """Ablation variants among the cell records: method -> the method it is a variant of (its config's
    ``type`` names another method, as :func:`bench.config.variant_base` declares them)."""
    variants = cells[cells.method_type.notna() & (cells.method_type != cells.method)]
    return dict(zip(variants.method, variants.method_type))


def series(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) per (method, backbone, protocol) of ``frame``, labelled by :func:`row_labels`."""
    keys = frame[ROW_KEY].drop_duplicates()
    return [(label, frame[(frame[ROW_KEY] == list(key)).all(axis=1)])
            for label, key in zip(row_labels(keys), map(tuple, keys.values))]


def panels(n: int, size: tuple[float, float], max_cols: int = 3) -> list:
    """``n`` axes of ``size`` inches each on a new figure (constrained layout, Agg canvas), in rows of at
    most ``max_cols``; the grid's unused places are hidden."""
    n_cols = min(n, max_cols)
    n_rows = -(-n // n_cols)
    fig = Figure(figsize=(size[0] * n_cols, size[1] * n_rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(n_rows, n_cols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes[:n]


CURVES = {  # setting -> (x column, x label, log2 x axis, file stem, description)
    "partial": ("label_ratio", "label ratio (fraction of training labels known)", False, "map_vs_ratio",
                "mAP vs label ratio"),
    "fewshot": ("shots", "K (labelled images per class; log scale)", True, "map_vs_shots", "mAP vs shots (K)"),
}


def ratio_plot(agg: pd.DataFrame, title: str, setting: str = "partial") -> Figure | None:
    """One dataset's :func:`bench.report.model.aggregate` rows: the ``setting``'s cells as lines (partial:
    over the label ratio; fewshot: over K, log2 axis) (mean, min-max band; legend below the axes),
    zero-shot cells as horizontal reference lines labelled ``name mAP`` at the right edge (labels spread
    apart when values are close). A method with both draws both in its style. None when there is neither."""
    column, xlabel, log_x = CURVES[setting][:3]
    partial, zero = agg[agg.setting == setting], agg[agg.setting == "zero-shot"]
    if partial.empty and zero.empty:
        return None
    lines, references = series(partial), series(zero)
    styles = series_styles([label for label, _ in lines + references])
    [ax] = panels(1, (7.0, 4.6))
    fig = ax.figure
    for label, rows in lines:
        rows = rows.sort_values(column)
        x = rows[column].astype(float).to_numpy()
        ax.plot(x, rows["mean"], label=label, linewidth=1.6, markersize=5, **styles[label].kwargs())
        if (rows.n > 1).any():
            ax.fill_between(x, rows["min"].astype(float), rows["max"].astype(float), color=styles[label].color,
                            alpha=0.15, linewidth=0)
    points = sorted(set(partial[column].astype(float)))
    if log_x:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_xlim(0, 1)
    if 0 < len(points) <= 10:
        ax.set_xticks(points, [f"{r:g}" for r in points])
    for label, rows in references:
        value = float(rows["mean"].iloc[0])
        ax.axhline(value, color=styles[label].color, linestyle=styles[label].linestyle, linewidth=1.2, alpha=0.9,
                   label=f"_{label} (zero-shot)", gid=f"zero-shot:{label}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mAP (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if lines:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncols=min(3, len(lines)), fontsize=8, frameon=False)
    if references:
        label_references(ax, references, styles)
    return fig


def label_references(ax, references: list[tuple[str, pd.DataFrame]], styles: dict) -> None:
    """Direct labels ``name mAP (zero-shot)`` just outside the right edge of ``ax``, one per reference line,
    at its height unless labels would overlap, then moved apart as little as possible."""
    fig = ax.figure
    fig.canvas.draw()  # final limits and layout
    values = [float(rows["mean"].iloc[0]) for _, rows in references]
    gap_px = LABEL_SIZE * fig.dpi / 72 * 1.25
    y_px = ax.transData.transform([(0, v) for v in values])[:, 1]
    header_px = ax.transAxes.transform((0, 1))[1] + gap_px  # the "zero-shot:" header, above every label
    placed = ax.transAxes.inverted().transform([(0, y) for y in spread([*y_px, header_px], gap_px)])[:, 1]
    for (label, _), value, y in zip(references, values, placed):
        ax.text(1.01, y, f"{label} {value:.2f}", transform=ax.transAxes, fontsize=LABEL_SIZE, va="center",
                color=styles[label].color, clip_on=False)
    ax.text(1.01, placed[-1], "zero-shot:", transform=ax.transAxes, fontsize=LABEL_SIZE, va="center",
            style="italic", clip_on=False)


def ablation_plot(agg: pd.DataFrame, base: str, variants: list[str], title: str) -> Figure | None:
    """One dataset's ablation of ``base``: a panel per cell with the base method and each of its variants
    present there, their mAP (mean, min-max bar over seeds) labelled with the difference to the base's
    mean, and a dashed line at the base's mean. None when no variant has a finished cell."""
    rows = agg[agg.method.isin([base, *variants])]
    cells = list(dict.fromkeys(rows[rows.method.isin(variants)].cell))
    if not cells:
        return None
    axes = panels(len(cells), (5.2, 0.9 + 0.32 * (1 + len(variants))))
    fig = axes[0].figure
    for ax, cell in zip(axes, cells):
        here = rows[rows.cell == cell]
        labelled = series(here)
        base_mean = here.loc[here.method == base, "mean"].astype(float)
        labelled.sort(key=lambda item: (item[1].method.iloc[0] != base, item[0]))
        for position, (_, row) in enumerate(labelled):
            mean, low, high = (float(row[c].iloc[0]) for c in ("mean", "min", "max"))
            is_base = row.method.iloc[0] == base
            delta = None if is_base or base_mean.empty else mean - float(base_mean.iloc[0])
            colour = "black" if delta is None else ("tab:blue" if delta >= 0 else "tab:red")
            ax.errorbar(mean, position, xerr=[[mean - low], [high - mean]], fmt="o", color=colour, capsize=2)
            text = f"{mean:.2f}" + ("" if delta is None else f" ({delta:+.2f})")
            ax.annotate(text, (mean, position), xytext=(6, 0), textcoords="offset points", va="center",
                        fontsize=LABEL_SIZE)
        if not base_mean.empty:
            ax.axvline(float(base_mean.iloc[0]), color="black", linestyle="--", linewidth=0.8, alpha=0.6)
        ax.set_yticks(range(len(labelled)), [label for label, _ in labelled])
        ax.set_ylim(len(labelled) - 0.5, -0.5)
        low, high = float(here["min"].min()), float(here["max"].max())
        width = max(high - low, 0.5)
        ax.set_xlim(low - 0.15 * width, high + 0.5 * width)  # room for the value labels on the right
        ax.set_xlabel("mAP (%)")
        ax.set_title(cell)
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(title)
    return fig


def pareto_plot(points: pd.DataFrame, title: str) -> Figure | None:
    """One dataset's :func:`bench.report.cost.cost_points`: a panel per cell, mAP vs wall seconds (log x,
    labelled ticks from :func:`bench.report.style.log_ticks`, unlabelled minor ticks), Pareto-optimal
    points filled and joined by a step line, every point labelled where it overlaps nothing. Points
    without a positive cost are left out. None when no point has one."""
    points = points[np.isfinite(points.cost_s.astype(float)) & (points.cost_s.astype(float) > 0)
                    & np.isfinite(points.mAP.astype(float))]
    if points.empty:
        return None
    cells = list(dict.fromkeys(points.cell))
    axes = panels(len(cells), (5.0, 4.2))
    fig = axes[0].figure
    for ax, cell in zip(axes, cells):
        here = points[points.cell == cell]
        rest, front = here[~here.pareto], here[here.pareto].sort_values("cost_s")
        ax.scatter(rest.cost_s, rest.mAP, facecolors="none", edgecolors="grey", label="dominated")
        ax.scatter(front.cost_s, front.mAP, color="tab:red", zorder=3, label="Pareto-optimal")
        ax.step(front.cost_s, front.mAP, where="post", color="tab:red", alpha=0.6)
        cost, mAP = here.cost_s.astype(float), here.mAP.astype(float)
        ax.set_xscale("log")
        # room for labels on each side: 0.2 decades + 15% of the span (>= 0.4 decades in all, so that
        # log_ticks finds two ticks), a sixth of the span above and below
        margin = 0.2 + 0.15 * np.log10(cost.max() / cost.min())
        ax.set_xlim(cost.min() / 10 ** margin, cost.max() * 10 ** margin)
        y_span = max(mAP.max() - mAP.min(), 1.0)
        ax.set_ylim(mAP.min() - y_span / 6, mAP.max() + y_span / 6)
        ticks = log_ticks(*ax.get_xlim())
        ax.set_xticks(ticks, [tick_text(t) for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("wall seconds per cell (log)")
        ax.set_ylabel("mAP (%)")
        ax.set_title(cell)
        ax.grid(alpha=0.3, which="major")
        ax.grid(alpha=0.12, which="minor")
    fig.suptitle(title)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    fig.canvas.draw()  # final layout: label placement and tick thinning measure the drawn figure
    fig.set_layout_engine("none")  # keep it when saving
    for ax, cell in zip(axes, cells):
        here = points[points.cell == cell].sort_values(["pareto", "mAP"], ascending=False)
        front = here[here.pareto].sort_values("cost_s")
        place_point_labels(ax, here.cost_s.astype(float).to_numpy(), here.mAP.astype(float).to_numpy(),
                           row_labels(here[ROW_KEY]), avoid=step_boxes(ax, front.cost_s, front.mAP))
        thin_tick_labels(ax)
    return fig


# candidate label offsets in points (dx, dy, ha, va), nearest first; rings past the first get a leader line
_DIRECTIONS = ((1, 0.6, "left", "bottom"), (1, -0.6, "left", "top"), (-1, 0.6, "right", "bottom"),
               (-1, -0.6, "right", "top"), (0, 1, "center", "bottom"), (0, -1, "center", "top"),
               (1, 0, "left", "center"), (-1, 0, "right", "center"))
_RINGS = (4, 12, 22, 34)


def step_boxes(ax, xs, ys, half_width: float = 1.5) -> list:
    """Display-space boxes covering the segments of ``ax.step(xs, ys, where="post")`` (each segment is
    horizontal or vertical), ``half_width`` pixels either side."""
    corners = ax.transData.transform(np.column_stack([np.asarray(xs, float), np.asarray(ys, float)]))
    boxes = []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        for (a, b), (c, d) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1))):  # across, then up or down
            boxes.append(Bbox.from_extents(min(a, c) - half_width, min(b, d) - half_width, max(a, c) + half_width,
                                           max(b, d) + half_width))
    return boxes


def place_point_labels(ax, xs, ys, labels: list[str], fontsize: float = LABEL_SIZE, avoid=()) -> list:
    """Annotate each point with its label, in the given order (most important first), at the first
    candidate offset whose text box overlaps no earlier label, no point and no box in ``avoid`` (display
    space, e.g. :func:`step_boxes`) and lies inside the axes; when none is free, at the one with the
    least overlap. Deterministic (no randomness). Returns the annotations. Call after the figure is drawn
    (positions in pixels must be final)."""
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    radius = 4 * ax.figure.dpi / 72
    centres = ax.transData.transform(np.column_stack([xs, ys]))
    obstacles = [Bbox.from_extents(x - radius, y - radius, x + radius, y + radius) for x, y in centres]
    obstacles += list(avoid)
    annotations = []
    for x, y, label in zip(xs, ys, labels):
        best, best_cost = None, None
        for ring in _RINGS:
            for dx, dy, ha, va in _DIRECTIONS:
                arrow = {"arrowstyle": "-", "color": "grey", "linewidth": 0.5} if ring != _RINGS[0] else None
                note = ax.annotate(label, (x, y), xytext=(dx * ring, dy * ring), textcoords="offset points", ha=ha,
                                   va=va, fontsize=fontsize, arrowprops=arrow)
                box = note.get_window_extent(renderer)
                cost = sum(_overlap_area(box, other) for other in obstacles) + _outside_area(box, frame)
                if best_cost is None or cost < best_cost:
                    if best is not None:
                        best.remove()
                    best, best_cost, best_box = note, cost, box
                else:
                    note.remove()
                if best_cost == 0:
                    break
            if best_cost == 0:
                break
        obstacles.append(best_box)
        annotations.append(best)
    return annotations


def _overlap_area(a, b) -> float:
    return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))


def _outside_area(box, frame) -> float:
    return box.width * box.height - _overlap_area(box, frame)


def thin_tick_labels(ax) -> None:
    """Blank every other major x tick label, repeatedly, until no two drawn labels overlap."""
    renderer = ax.figure.canvas.get_renderer()
    ticks, texts = list(ax.get_xticks()), [t.get_text() for t in ax.get_xticklabels()]
    while True:
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        if not any(boxes_overlap(a, b, pad=2) for a, b in zip(boxes, boxes[1:])):
            return
        shown = [i for i, text in enumerate(texts) if text]
        texts = [text if i not in shown[1::2] else "" for i, text in enumerate(texts)]
        ax.set_xticks(ticks, texts)
        ax.figure.canvas.draw()


def write_plots(records: Records, out: Path, formats: list[str]) -> dict[str, list[Path]]:
    """Every plot for every dataset in ``formats`` (png, pdf): mAP vs label ratio, one ablation figure per
    base method with variants, accuracy vs cost; returns {description: paths}."""
    written: dict[str, list[Path]] = {}
    toy = set(records.cells.loc[records.cells.toy.astype(bool), "dataset"])
    agg = aggregate(records.cells)
    bases = variant_bases(records.ok())
    for dataset in agg.dataset.unique():
        here = agg[agg.dataset == dataset]
        world = " (toy world)" if dataset in toy else ""
        for setting, (_, _, _, stem, what) in CURVES.items():
            if setting == "fewshot" and (here.setting != "fewshot").all():
                continue  # the ratio plot also shows zero-shot lines alone; the K plot needs a few-shot cell
            fig = ratio_plot(here[~here.method.isin(bases)], dataset + world, setting)
            if fig is not None:
                written[f"{what}, {dataset}"] = save(fig, out, f"{stem}_{file_stem(dataset)}", formats)
        for base in sorted(set(bases.values())):
            variants = [m for m, b in bases.items() if b == base]
            fig = ablation_plot(here, base, variants, f"{dataset}: {base} ablation{world}")
            if fig is not None:
                stem = f"ablation_{file_stem(base)}_{file_stem(dataset)}"
                written[f"{base} ablation, {dataset}"] = save(fig, out, stem, formats)
    points = cost_points(records)
    for dataset in points.dataset.unique():
        title = f"{dataset}: accuracy vs cost" + (" (toy world)" if dataset in toy else "")
        fig = pareto_plot(points[points.dataset == dataset], title)
        if fig is not None:
            written[f"accuracy vs cost (Pareto), {dataset}"] = save(fig, out, f"pareto_{file_stem(dataset)}", formats)
    return written

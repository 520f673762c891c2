"""The cost section of ``bench report``: what each (method, backbone, protocol, cell) cost to run --
wall time, training time, generated images, peak memory -- and which are Pareto-optimal in accuracy
vs wall time within their cell (the same points :func:`bench.report.plots.pareto_plot` draws)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis.stats import pareto_front
from bench.report.format import Section, Table, fmt_count, fmt_number, fmt_seconds, is_missing
from bench.report.model import ROW_KEY, Records, cell_sort_key


def _ratio_key(label_ratio) -> float | None:
    return None if is_missing(label_ratio) else float(label_ratio)


def cell_cost_seconds(records: Records) -> pd.Series:
    """Wall seconds of each finished cell (indexed like :attr:`Records.cells`): the sum of its record's
    ``seconds``, plus, for a derived (fused) record, the seconds of the cells it was fused from (NaN
    when a source record is not among the records read)."""
    ok = records.ok()
    by_source_key = {(r.method, r.config_hash, r.setting, _ratio_key(r.label_ratio), r.seed): r.total_s
                     for r in ok.itertuples()}
    seconds = {}
    for r in ok.itertuples():
        total = r.total_s if r.total_s is not None else np.nan
        for source in records.raw[r.path].get("derived_from") or []:
            key = (source.get("method"), source.get("config_hash"), source.get("setting"),
                   _ratio_key(source.get("label_ratio")), source.get("seed"))
            total = total + by_source_key.get(key, np.nan)
        seconds[r.Index] = total
    return pd.Series(seconds, dtype=float)


def cost_points(records: Records) -> pd.DataFrame:
    """One row per (dataset, method, backbone, protocol, cell), averaged over seeds: mAP, total/train/
    generation seconds, images generated (means), peak process RSS and CUDA memory (max over seeds),
    trainable parameters; ``pareto`` marks the points no other point of the same dataset and cell
    beats on both mAP (higher) and total seconds (lower)."""
    ok = records.ok().copy()
    ok["cost_s"] = cell_cost_seconds(records)
    numeric = ["mAP", "cost_s", "train_s", "generation_s", "n_generated", "peak_rss_mb", "peak_cuda_mb",
               "n_trainable_params"]
    ok[numeric] = ok[numeric].apply(pd.to_numeric, errors="coerce")
    keys = ["dataset", *ROW_KEY, "setting", "cell"]
    points = ok.groupby(keys, sort=False, dropna=False).agg(
        label_ratio=("label_ratio", "first"), shots=("shots", "first"), n=("seed", "count"), mAP=("mAP", "mean"),
        cost_s=("cost_s", "mean"),
        train_s=("train_s", "mean"), generation_s=("generation_s", "mean"), n_generated=("n_generated", "mean"),
        peak_rss_mb=("peak_rss_mb", "max"), peak_cuda_mb=("peak_cuda_mb", "max"),
        n_trainable_params=("n_trainable_params", "max"), derived=("derived", "any")).reset_index()
    points["pareto"] = False
    for _, group in points.groupby(["dataset", "cell"], sort=False):
        points.loc[group.index, "pareto"] = pareto_front(group.cost_s.to_numpy(), group.mAP.to_numpy())
    order = sorted(range(len(points)), key=lambda i: (points.dataset[i], cell_sort_key(
        points.setting[i], points.label_ratio[i], points.shots[i]), points.method[i]))
    return points.iloc[order].reset_index(drop=True)


def cost_section(records: Records) -> Section:
    points = cost_points(records)
    tables = []
    for dataset in points.dataset.unique():
        d = points[points.dataset == dataset]
        text = pd.DataFrame({
            "cell": d.cell, "method": d.method, "backbone": d.backbone, "protocol": d.protocol,
            "seeds": d.n.astype(str), "mAP": d.mAP.map(fmt_number),
            "total s": d.cost_s.map(fmt_seconds), "train s": d.train_s.map(fmt_seconds),
            "generation s": d.generation_s.map(fmt_seconds), "images generated": d.n_generated.map(fmt_count),
            "peak RSS MB": d.peak_rss_mb.map(fmt_count), "peak CUDA MB": d.peak_cuda_mb.map(fmt_count),
            "trainable params": d.n_trainable_params.map(fmt_count),
            "Pareto": np.where(d.pareto, "yes", ""),
        })
        tables.append(Table(f"{dataset}: cost per cell (mean over seeds)", text.reset_index(drop=True),
                            label_columns=4))
    intro = ("Wall seconds = sum of the record's phases (test feature extraction, training-data preparation "
             "including image generation, training, evaluation); for a fused record, plus its source cells'. "
             "The feature cache makes the first cell of a run pay the extraction. Peak memory: the peak RSS of "
             "the process that ran the cell (it may have run other cells before; CUDA: peak allocated during the "
             "cell), max over seeds. Pareto: not beaten on both mAP and wall seconds by "
             "another method of the same cell.")
    return Section("cost", "Cost", intro, tables, points)

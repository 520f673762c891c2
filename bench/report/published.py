"""Published numbers beside ours: the ``published`` section of ``bench report``.

The data file (``bench/data/published/published.csv``; its ``NOTES.md`` says what was looked for and
not found) has one published result per row: method, dataset, setting, label_ratio (a ratio, ``avg``
for the mean over the paper's ratios, or empty), shots (K, ``avg`` or empty), backbone, resolution,
metric, value, source (the paper table or repository artifact, tagged ``[A]`` repository artifact /
``[S]`` secondary listing / ``[V]`` paper table). A fused row names its parts with ``+`` in method,
backbone and resolution (``dualcoop+taidpt``, ``RN101+RN50``, ``448+224``), in any order.

A run matches a published row when dataset, setting, ratio or K, and every part's method, backbone
model and input resolution are the same. ``avg`` rows match our average over label ratios only when
we ran every ratio 0.1, ..., 0.9 (the papers' 10%-90%), over shot counts only for 1, 2, 4, 8, 16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.format import MISSING, Section, Table, fmt_mean_std, fmt_number, is_missing

PUBLISHED_CSV = Path(__file__).resolve().parent.parent / "data" / "published" / "published.csv"
PUBLISHED_COLUMNS = ["method", "dataset", "setting", "label_ratio", "shots", "backbone", "resolution", "metric",
                     "value", "source"]
PAPER_POINTS = {"partial": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], "fewshot": [1, 2, 4, 8, 16]}
DATASET_NAMES = {"coco2014": "coco", "voc": "voc2007", "nus-wide": "nuswide", "nus_wide": "nuswide"}
KEY = ["dataset_key", "setting", "point", "parts"]


def load_published(path: str | Path | None = None) -> pd.DataFrame:
    """The published results file as a frame of strings (``value`` as float); a missing column or a
    non-numeric value is a ValueError naming the file."""
    path = Path(path) if path else PUBLISHED_CSV
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PUBLISHED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(PUBLISHED_COLUMNS)})")
    try:
        frame["value"] = frame.value.astype(float)
    except ValueError as exc:
        raise ValueError(f"{path}: a value is not a number ({exc})") from None
    return frame


def point_key(setting: str, label_ratio, shots) -> str:
    """The setting's point as text: a ratio (``0.5``), K (``16``), ``avg``, or empty (zero-shot)."""
    value = label_ratio if setting == "partial" else shots if setting == "fewshot" else None
    if is_missing(value) or value == "":
        return ""
    if value == "avg":
        return "avg"
    return f"{float(value):g}"


def parts_key(method: str, backbone: str, resolution) -> tuple:
    """Sorted (method, backbone model, resolution) per part of a possibly fused method."""
    methods, models = str(method).split("+"), str(backbone).split("+")
    sizes = str(resolution).split("+")
    if len(models) == 1:
        models = models * len(methods)
    if len(sizes) == 1:
        sizes = sizes * len(methods)
    return tuple(sorted(zip(methods, models, sizes)))


def keyed(frame: pd.DataFrame, method_col: str, backbone_col: str, resolution_col: str) -> pd.DataFrame:
    """``frame`` with the join columns :data:`KEY`."""
    out = frame.copy()
    out["dataset_key"] = [DATASET_NAMES.get(d, d) for d in out.dataset]
    out["point"] = [point_key(s, r, k) for s, r, k in zip(out.setting, out.label_ratio, out.shots)]
    out["parts"] = [parts_key(m, b, r) for m, b, r in zip(out[method_col], out[backbone_col], out[resolution_col])]
    return out


def ours_with_averages(agg: pd.DataFrame, averages: pd.DataFrame) -> pd.DataFrame:
    """Our comparable numbers: every aggregated cell (:func:`bench.report.model.aggregate`) and the averages
    over the papers' full ratio / shot sets (:func:`bench.report.averages.setting_averages`) as ``avg`` points.
    Columns: dataset, method, model, resolution, setting, label_ratio, shots, mean, std, n."""
    columns = ["dataset", "method", "model", "resolution", "setting", "label_ratio", "shots", "mean", "std", "n"]
    cells = agg.assign(n=agg.n.astype(int))[columns]
    rows = []
    for r in averages.itertuples():
        paper = PAPER_POINTS.get(r.setting)
        if paper and r.points == ",".join(f"{p:g}" for p in paper):
            rows.append({"dataset": r.dataset, "method": r.method, "model": r.model, "resolution": r.resolution,
                         "setting": r.setting, "label_ratio": "avg" if r.setting == "partial" else None,
                         "shots": "avg" if r.setting == "fewshot" else None, "mean": r.avg, "std": r.std,
                         "n": int(r.n_seeds)})
    return pd.concat([cells, pd.DataFrame(rows, columns=columns)], ignore_index=True)


def join_published(ours: pd.DataFrame, published: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(matched rows: ours with ``published``, ``diff`` = ours - published, ``source``; the published rows
    no run matched, with ``reason``)."""
    mine = keyed(ours, "method", "model", "resolution")
    theirs = keyed(published.rename(columns={"method": "published_method"}), "published_method", "backbone",
                   "resolution")
    theirs = theirs[theirs.metric.str.lower() == "map"]
    matched = mine.merge(theirs[[*KEY, "value", "source", "published_method"]], on=KEY, how="inner")
    matched = matched.rename(columns={"value": "published"})
    matched["diff"] = matched["mean"] - matched["published"]
    found = set(map(tuple, matched[KEY].astype(str).values))
    unmatched = theirs[[tuple(k) not in found for k in theirs[KEY].astype(str).values]].copy()
    unmatched["reason"] = [_why_not(mine, r) for r in unmatched.itertuples()]
    return matched.reset_index(drop=True), unmatched.reset_index(drop=True)


def _why_not(mine: pd.DataFrame, row) -> str:
    """Why a published row has no match among our rows: the closest thing we ran, said plainly."""
    methods = {m for m, _, _ in row.parts}
    same_methods = np.array([{m for m, _, _ in p} == methods for p in mine.parts], dtype=bool)
    same = mine[(mine.dataset_key == row.dataset_key).to_numpy() & (mine.setting == row.setting).to_numpy()
                & same_methods]
    if same.empty:
        return f"no {row.published_method} run on {row.dataset} in the {row.setting} setting"
    at_point = same[same.point == row.point]
    if at_point.empty:
        return f"no run at {row.point or 'this point'} (ran: {', '.join(sorted(set(same.point)))})"
    ran = sorted({" + ".join(f"{m} {b}@{s}" for m, b, s in p) for p in at_point.parts})
    return f"backbone or resolution differ (ran: {'; '.join(ran)})"


def source_tag(source: str) -> str:
    """The ``[A]`` / ``[S]`` / ``[V]`` tag a source starts with ("" when none)."""
    source = str(source).strip()
    return source[:3] if source[:1] == "[" and source[2:3] == "]" else ""


def _setup_text(frame: pd.DataFrame, method_col: str, values: str) -> dict:
    """The columns that name a setup (dataset, method, setting, ratio / K, backbone) and the published value."""
    return {"dataset": frame.dataset, "method": frame[method_col], "setting": frame.setting,
            "ratio / K": [p or MISSING for p in frame.point],
            "backbone": [" + ".join(f"{b}@{s}" for _, b, s in p) for p in frame.parts],
            "published": [f"{fmt_number(v)} {source_tag(s)}".strip() for v, s in zip(frame[values], frame.source)]}


def published_section(ours: pd.DataFrame, path: str | Path | None = None) -> Section:
    """Matched published numbers beside ours (one table), then the published setups no run matched."""
    published = load_published(path)
    matched, unmatched = join_published(ours, published)
    tables = []
    if len(matched):
        text = pd.DataFrame({
            **_setup_text(matched, "method", "published"),
            "ours": [fmt_mean_std(m, s, n) for m, s, n in zip(matched["mean"], matched["std"], matched.n)],
            "seeds": matched.n.astype(str), "ours − published": matched["diff"].map(fmt_number)})
        tables.append(Table("Runs that match a published setup", text, label_columns=5))
    if len(unmatched):
        text = pd.DataFrame({**_setup_text(unmatched, "published_method", "value"),
                             "not matched because": unmatched.reason})
        tables.append(Table("Published setups no run matched", text, label_columns=5))
    intro = (f"Published results from `{Path(path) if path else PUBLISHED_CSV.name}` (every value with its source; "
             "tags: [A] recomputed from a reference repository's score files, one seed; [S] a secondary listing of "
             "the paper's number; [V] the paper's table). A run matches when dataset, setting, label ratio or shot "
             "count, and each part's backbone and input resolution are the same; `avg` rows match our average over "
             "every ratio 0.1-0.9 (shots 1, 2, 4, 8, 16). The references pick checkpoints on the test split and "
             "bench never does, so a small negative difference is expected.")
    data = pd.concat([matched.assign(table="matched"), unmatched.assign(table="unmatched")], ignore_index=True)
    data["parts"] = data.parts.astype(str)
    return Section("published", "Published numbers beside ours", intro, tables, data.replace({np.nan: None}))

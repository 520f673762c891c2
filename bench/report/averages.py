"""The averages section of ``bench report``: the papers' "Avg." columns.

Per dataset and row (method, backbone, protocol): the partial-label average over label ratios and the
few-shot average over shot counts -- the mean of the cell means (each a mean over seeds) -- given
only when the row has every point that any row of that dataset and setting has. Across datasets:
the mean of those per-dataset values (zero-shot: the cell means), given only when the row has a value
for every dataset of its table (toy-world datasets and real ones are never averaged together).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.format import MISSING, Section, fmt_mean_std, with_label_columns
from bench.report.model import ROW_KEY, SETTING_ORDER, Records, row_labels

CURVES = {"partial": "label_ratio", "fewshot": "shots"}  # setting -> the column its points are in
AVERAGE_COLUMNS = ["dataset", *ROW_KEY, "model", "resolution", "setting", "points", "n_points", "avg", "std", "n_seeds",
                   "toy"]


def _points(values) -> list[float]:
    return sorted({float(v) for v in values})


def setting_averages(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, method, backbone, protocol, setting): zero-shot, the cell's mean over seeds;
    partial / few-shot, the mean over the dataset's label ratios / shot counts of the row's cell means,
    when it has all of them (:data:`AVERAGE_COLUMNS`; ``std``: sample std over the seeds that have every
    point of their own per-seed average, NaN below two such seeds)."""
    ok = cells[cells.status == "ok"]
    rows = []
    for (dataset, setting), here in ok.groupby(["dataset", "setting"], sort=False):
        column = CURVES.get(setting)
        if column is None and setting != "zero-shot":
            continue
        wanted = _points(here[column]) if column else [0.0]
        for key, group in here.groupby(ROW_KEY, sort=False):
            point = group[column].astype(float) if column else pd.Series(0.0, index=group.index)
            means = group.mAP.groupby(point).mean()
            if _points(means.index) != wanted:
                continue  # a ratio or shot count missing: no average
            per_seed = group.assign(point=point).pivot_table(index="seed", columns="point", values="mAP",
                                                             aggfunc="mean").dropna()
            seed_avgs = per_seed.mean(axis=1) if per_seed.shape[1] == len(wanted) else pd.Series(dtype=float)
            rows.append({"dataset": dataset, **dict(zip(ROW_KEY, key)), "model": group.model.iloc[0],
                         "resolution": group.resolution.iloc[0], "setting": setting,
                         "points": ",".join(f"{p:g}" for p in wanted) if column else "",
                         "n_points": len(wanted), "avg": float(means.mean()),
                         "std": float(seed_avgs.std()) if len(seed_avgs) > 1 else np.nan,
                         "n_seeds": len(seed_avgs), "toy": bool(group.toy.any())})
    return pd.DataFrame(rows, columns=AVERAGE_COLUMNS)


def across_datasets(averages: pd.DataFrame) -> pd.DataFrame:
    """Per (toy or not, setting, method, backbone, protocol): the mean of :func:`setting_averages` over
    the datasets of that world and setting, when the row has every one of them (else NaN); columns:
    toy, setting, method, backbone, protocol, datasets, n_datasets, avg."""
    rows = []
    for (toy, setting), here in averages.groupby(["toy", "setting"], sort=False):
        datasets = sorted(set(here.dataset))
        for key, group in here.groupby(ROW_KEY, sort=False):
            complete = sorted(set(group.dataset)) == datasets
            rows.append({"toy": toy, "setting": setting, **dict(zip(ROW_KEY, key)), "datasets": ",".join(datasets),
                         "n_datasets": len(datasets), "avg": float(group.avg.mean()) if complete else np.nan})
    return pd.DataFrame(rows, columns=["toy", "setting", *ROW_KEY, "datasets", "n_datasets", "avg"])


def averages_section(records: Records) -> Section:
    """Per world (toy / real) and setting, a table: rows = methods, columns = each dataset's average
    (mean ± std over seeds) and "Avg." across the datasets."""
    averages = setting_averages(records.cells)
    overall = across_datasets(averages)
    tables = []
    order = sorted(set(zip(averages.toy, averages.setting)), key=lambda k: (k[0], SETTING_ORDER.get(k[1], 9)))
    for toy, setting in order:
        here = averages[(averages.toy == toy) & (averages.setting == setting)]
        datasets = sorted(set(here.dataset))
        keys = here.drop_duplicates(ROW_KEY)[ROW_KEY].reset_index(drop=True)
        text = pd.DataFrame(MISSING, index=range(len(keys)), columns=[*datasets, "Avg."])
        for i, key in enumerate(map(tuple, keys.values)):
            mine = here[(here[ROW_KEY] == list(key)).all(axis=1)]
            for r in mine.itertuples():
                text.loc[i, r.dataset] = fmt_mean_std(r.avg, r.std, int(r.n_seeds))
            total = overall[(overall.toy == toy) & (overall.setting == setting)
                            & (overall[ROW_KEY] == list(key)).all(axis=1)].avg
            text.loc[i, "Avg."] = fmt_mean_std(float(total.iloc[0]), np.nan, 1) if len(total) else MISSING
        table = with_label_columns(pd.DataFrame({"method": row_labels(keys)}), text)
        points = ", ".join(sorted(set(here.points) - {""}))
        what = {"partial": f"average over label ratios ({points})", "fewshot": f"average over shot counts ({points})",
                "zero-shot": "zero-shot mAP"}.get(setting, setting)
        table.title = f"{'toy world' if toy else 'real datasets'}, {setting}: {what} (mAP %)"
        tables.append(table)
    intro = ("The papers' \"Avg.\" columns. Per dataset: partial labels averaged over the label ratios, few-shot over "
             "the shot counts (mean of the cell means; ± sample std over seeds of each seed's own average), given "
             "only for a method that has every ratio or shot count of that dataset. \"Avg.\": the mean over the "
             "datasets of the table, only for a method that has all of them; toy-world and real datasets are "
             "never averaged together.")
    data = averages.merge(overall[["toy", "setting", *ROW_KEY, "avg"]].rename(columns={"avg": "avg_across_datasets"}),
                          on=["toy", "setting", *ROW_KEY], how="left")
    return Section("averages", "Averages over label ratios, shot counts and datasets",
                   intro if tables else "No finished cells.", tables, data)

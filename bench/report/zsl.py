"""The zsl section of ``bench report``: seen/unseen zero-shot recognition (DualCoOp's protocol, ``bench.cell.zsl``).

Per dataset two tables, ZSL (unseen classes) and GZSL (seen + unseen), one row per (method, backbone,
protocol): mAP and the top-k precision / recall / F1 of DualCoOp's ``calc_F1`` for k = 3 and 5, mean ± std
over seeds, best mean per column in bold. Rows are read from the records' ``zsl`` / ``gzsl`` blocks.
Published numbers for the same protocol (``PUBLISHED``: ``setting`` zsl; a ``metric`` such as ``mAP`` or
``F1@3`` is the ZSL part, ``gzsl mAP`` the GZSL part) are listed under each table with their source.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report.format import Section, best_mask, fmt_mean_std, with_label_columns
from bench.report.model import ROW_KEY, Records, aggregate, row_labels

PARTS = {"zsl": "ZSL (unseen classes)", "gzsl": "GZSL (seen + unseen classes)"}
METRICS = ("mAP", "P@3", "R@3", "F1@3", "P@5", "R@5", "F1@5")
PUBLISHED = Path(__file__).resolve().parents[1] / "data" / "published" / "published.csv"
DATASET_ALIASES = {"coco2014": "coco", "nus-wide": "nuswide", "nus_wide": "nuswide"}


def zsl_frame(records: Records) -> pd.DataFrame:
    """One row per finished zsl cell record: the cell columns plus ``<part> <metric>`` for both parts."""
    ok = records.ok()
    ok = ok[ok.setting == "zsl"].copy()
    for part in PARTS:
        for metric in METRICS:
            ok[f"{part} {metric}"] = [(records.raw[p].get(part) or {}).get(metric) for p in ok.path]
    return ok


def published_rows(path: Path = PUBLISHED) -> pd.DataFrame:
    """Published numbers of the zsl protocol (empty when the file is absent)."""
    if not Path(path).is_file():
        return pd.DataFrame(columns=["method", "dataset", "metric", "value", "source"])
    table = pd.read_csv(path)
    return table[table.setting == "zsl"]


def zsl_section(records: Records, published: Path = PUBLISHED) -> Section:
    frame = zsl_frame(records)
    known = published_rows(published)
    tables, data = [], []
    for dataset in frame.dataset.unique():
        subset = frame[frame.dataset == dataset]
        for part, title in PARTS.items():
            columns = [f"{part} {m}" for m in METRICS]
            aggs = {m: aggregate(subset, value=c) for m, c in zip(METRICS, columns)}
            keys = aggs["mAP"][ROW_KEY]
            means = pd.DataFrame({m: a["mean"].to_numpy(float) for m, a in aggs.items()})
            text = pd.DataFrame({m: [fmt_mean_std(r.mean, r.std, int(r.n)) for r in a.itertuples()]
                                 for m, a in aggs.items()})
            labels = pd.DataFrame({"method": row_labels(keys), "seeds": aggs["mAP"]["seeds"]})
            table = with_label_columns(labels, text, best_mask(means))
            table.title, table.label_columns = f"{dataset}: {title}", 2
            name = DATASET_ALIASES.get(dataset, dataset)
            rows = known[(known.dataset == name) & (known.metric.str.startswith("gzsl ") == (part == "gzsl"))]
            table.note = "; ".join(f"published {r.method} {r.metric} = {r.value:g} ({r.source})"
                                   for r in rows.itertuples())
            tables.append(table)
            data.append(pd.concat([keys.reset_index(drop=True), means], axis=1).assign(dataset=dataset, part=part))
    intro = ("Zero-shot multi-label recognition with seen/unseen classes (setting `zsl`, DualCoOp's protocol): "
             "methods train on the seen classes' labels only and are evaluated on the unseen classes (ZSL) and "
             "on seen + unseen (GZSL), each on the test images with a positive among those classes. mAP (%) and "
             "top-k precision / recall / F1 (%) pooled over images (DualCoOp `calc_F1`), mean ± sample std over "
             "seeds; best mean per column in bold. The split of each dataset is in the records (`zsl_split`).")
    return Section("zsl", "Seen/unseen zero-shot (ZSL, GZSL)", intro if tables else "No zsl cells.", tables,
                   pd.concat(data, ignore_index=True) if data else None)

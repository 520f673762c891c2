"""Records -> pandas -> tables. ``bench report`` reads only records, never recomputes anything."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

COLUMNS = ["dataset", "method", "setting", "label_ratio", "seed", "status", "mAP", "backbone", "protocol",
           "train_s", "config_hash", "path"]


class RecordError(ValueError):
    """A record file that cannot be read; the message names it."""


def find_records(work_dir: Path, run: str | None = None) -> list[str]:
    root = work_dir / run if run else work_dir
    return sorted(str(p) for p in root.glob("**/records/**/*.json"))


def load_records(paths: list[str]) -> pd.DataFrame:
    rows = []
    for path in paths:
        try:
            rec = json.loads(Path(path).read_text())
            spec = (rec.get("backbone") or {}).get("spec") or rec["config"]["backbone"]
            protocol = rec.get("image_protocol")
            rows.append({
                "dataset": rec["dataset"], "method": rec["method"], "setting": rec["setting"],
                "label_ratio": rec["label_ratio"], "seed": rec["seed"], "status": rec["status"],
                "mAP": rec.get("mAP"), "backbone": f"{spec['model']}@{spec.get('pretrained')}",
                "protocol": f"{protocol['mode']} K={protocol['views']}" if protocol else "-",
                "train_s": (rec.get("seconds") or {}).get("train"), "config_hash": rec["config_hash"], "path": path,
            })
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise RecordError(f"malformed record {path}: {type(exc).__name__}: {exc}") from exc
    return pd.DataFrame(rows, columns=COLUMNS)


def summary_table(records: pd.DataFrame, fmt: str = "github") -> str:
    """mAP as mean ± std over seeds: one row per (dataset, method, protocol), one column per setting/ratio."""
    ok = records[records.status == "ok"].copy()
    ok["column"] = [s if r != r or r is None else f"{s} {r:g}" for s, r in zip(ok.setting, ok.label_ratio)]
    grouped = ok.groupby(["dataset", "method", "backbone", "protocol", "column"])["mAP"]
    cells = grouped.agg(["mean", "std", "count"]).reset_index()
    cells["text"] = [f"{m:.2f}" + (f" ± {s:.2f}" if n > 1 else "") for m, s, n in
                     zip(cells["mean"], cells["std"], cells["count"])]
    table = cells.pivot_table(index=["dataset", "method", "backbone", "protocol"], columns="column",
                              values="text", aggfunc="first").fillna("")
    failed = records[records.status != "ok"]
    text = table.to_markdown(tablefmt=fmt)
    if len(failed):
        text += "\n\nfailed cells:\n" + "\n".join(f"  {r.dataset} {r.method} {r.setting} r={r.label_ratio} "
                                                  f"s={r.seed}: {r.path}" for r in failed.itertuples())
    return text


def write_tables(records: pd.DataFrame, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.md", out / "results.csv"]
    paths[0].write_text(summary_table(records) + "\n")
    records.to_csv(paths[1], index=False)
    return paths

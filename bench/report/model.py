"""The shared model of ``bench report``, at the bottom of the package: records read into a
:class:`Records` (one pandas row per cell record, plus the records themselves), the row key that keeps
backbones and protocols apart, cell order and labels, aggregation over seeds, and row labels.

Three record kinds live in ``<work-dir>/<run>/records/<dataset>/``: cell records (no ``kind`` key;
runner and derived/fused records), ``"kind": "diagnostics"`` records (modality and domain gaps,
leakage), and their ``.scores.npz`` files. Sections (:mod:`bench.report.tables`, ``significance``,
``gaps``, ``cost``) and plots (:mod:`bench.report.plots`) build on this module; :mod:`bench.report.build`
writes them all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.errors import RecordError
from bench.io import read_json
from bench.records import backbone_spec, check_record
from bench.report.format import is_missing

COLUMNS = ["dataset", "method", "setting", "label_ratio", "seed", "status", "mAP", "backbone", "protocol",
           "train_s", "config_hash", "path",
           "method_type", "cell", "error", "total_s", "generation_s", "n_generated", "peak_rss_mb", "peak_cuda_mb",
           "n_trainable_params", "n_test", "derived", "toy", "run", "eval_split", "shots", "model", "resolution"]
ROW_KEY = ["method", "backbone", "protocol"]  # one table row each: backbones and protocols never mix silently
SETTING_ORDER = {"zero-shot": 0, "partial": 1, "fewshot": 2, "zsl": 3}



@dataclass
class Records:
    """What ``bench report`` reads: ``cells`` (one row per cell record, ok or failed; :data:`COLUMNS`),
    the cell records themselves by path, the diagnostics records by path, and the files that could not be
    read (records, scores files) with why: left out of every table, listed in the report's index."""

    cells: pd.DataFrame
    raw: dict[str, dict] = field(default_factory=dict)
    diagnostics: dict[str, dict] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)

    def ok(self) -> pd.DataFrame:
        return self.cells[self.cells.status == "ok"]


def find_records(work_dir: Path, run: str | None = None) -> list[str]:
    """Every record JSON under ``<work_dir>[/<run>]/**/records/`` (hidden temp files skipped)."""
    root = Path(work_dir) / run if run else Path(work_dir)
    return sorted(str(p) for p in root.glob("**/records/**/*.json") if not p.name.startswith("."))


def cell_label(setting: str, label_ratio, shots=None) -> str:
    """A results column: ``zero-shot``, ``partial 0.5``, ``fewshot 16-shot`` (``fewshot`` without a K)."""
    if not is_missing(shots):
        return f"{setting} {int(shots)}-shot"
    return setting if is_missing(label_ratio) else f"{setting} {label_ratio:g}"


def cell_sort_key(setting: str, label_ratio, shots=None) -> tuple:
    """Zero-shot first, then partial by label ratio, then few-shot by K, then anything else."""
    point = label_ratio if is_missing(shots) else shots
    point = -1.0 if is_missing(point) else float(point)
    return SETTING_ORDER.get(setting, len(SETTING_ORDER)), point, setting


def cell_groups(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """The (dataset, cell) pairs of ``frame`` in dataset, then :func:`cell_sort_key` order."""
    firsts = frame.drop_duplicates(["dataset", "cell"])
    shots = firsts.shots if "shots" in firsts else [None] * len(firsts)
    keyed = sorted((d, cell_sort_key(s, r, k), c) for d, s, r, k, c in zip(firsts.dataset, firsts.setting,
                                                                           firsts.label_ratio, shots, firsts.cell))
    return [(d, c) for d, _, c in keyed]


def backbone_name(record: dict) -> str:
    """``model@pretrained`` from the record's backbone spec (or its config's backbone)."""
    spec = backbone_spec(record)
    return f"{spec['model']}@{spec.get('pretrained')}"


def backbone_setup(record: dict) -> tuple[str, str]:
    """(model, input resolution) as text, part by part with ``+`` for a fused record (``RN50+RN101``,
    ``224+448``); the resolution is the record's measured one, else its spec's ``image_size``, else ``?``."""
    backbone = record.get("backbone") or {}
    parts = backbone.get("parts") or [backbone]
    models, sizes = [], []
    for part in parts:
        spec = (part or {}).get("spec") or {}
        models.append(str(spec.get("model", "?")))
        size = (part or {}).get("resolution") or spec.get("image_size")
        sizes.append(str(size) if size else "?")
    return "+".join(models), "+".join(sizes)


def short_backbone_name(name: str) -> str:
    """:func:`backbone_name` for a reader: weights shipped inside bench (``builtin:...``) or no weights tag
    leave only the model (``toy-clip``), a checkpoint path shows its file name (``RN50@RN50.pt``), a tag
    stays (``RN50@openai``); a fused record's ``a+b`` tags part by part."""
    model, _, pretrained = name.partition("@")
    tags = ["" if tag.startswith("builtin:") or tag in ("", "None") else Path(tag).name if "/" in tag else tag
            for tag in pretrained.split("+")]
    return f"{model}@{'+'.join(t or 'builtin' for t in tags)}" if any(tags) else model


def short_backbone_names(names: list[str]) -> dict[str, str]:
    """Each full backbone name -> its :func:`short_backbone_name`, or itself where two different names
    would shorten to the same text (rows are never merged by a shortened name)."""
    short = {name: short_backbone_name(name) for name in set(names)}
    counts: dict[str, int] = {}
    for text in short.values():
        counts[text] = counts.get(text, 0) + 1
    return {name: text if counts[text] == 1 else name for name, text in short.items()}


def is_toy(record: dict) -> bool:
    """A record from the embedded toy world: the toy dataset, or a toy backbone (``toy-clip``, ``builtin:toy``)."""
    spec = backbone_spec(record)
    return record.get("dataset") == "toy" or "toy" in str(spec.get("model", "")).lower() \
        or str(spec.get("pretrained", "")).startswith("builtin:toy")


def standin_rows(cells: pd.DataFrame) -> pd.Series:
    """Rows of records made with the stand-in encoder (backbone ``standin:<arch>``, also in a fused record's
    ``a+b`` name): timing only, their numbers mean nothing (``bench.features.standin``)."""
    return cells.backbone.astype(str).str.contains("standin:", regex=False)


def run_dir(path: str) -> str:
    """The run folder of a record: the parent of its ``records`` folder."""
    parts = Path(path).parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "records":
            return str(Path(*parts[:i])) if i else "."
    return str(Path(path).parent)


def protocol_label(rec: dict) -> str:
    """The image protocol ("cached K=1", "online K=1", "-" for no training images), prefixed by "reference, "
    for a row run with its reference's own backbone and transforms (e.g. dualcoop_ref)."""
    protocol = rec.get("image_protocol")
    label = f"{protocol['mode']} K={protocol['views']}" if protocol else "-"
    if rec.get("protocol") == "reference":
        return "reference" if label == "-" else f"reference, {label}"
    return label


def cell_row(path: str, rec: dict) -> dict:
    """One row of :attr:`Records.cells` from a cell record (KeyError/TypeError when a required field is missing)."""
    seconds = rec.get("seconds") or {}
    train_data = rec.get("train_data") or {}
    memory = rec.get("peak_memory_mb") or {}
    method_cfg = (rec.get("config") or {}).get("method") or {}
    eval_split = (rec.get("config") or {}).get("eval_split") or "test"
    return {
        # results on a validation split are a dataset of their own, never averaged with test results
        "dataset": rec["dataset"] if eval_split == "test" else f"{rec['dataset']}-{eval_split}",
        "method": rec["method"], "setting": rec["setting"],
        "label_ratio": rec["label_ratio"], "seed": rec["seed"], "status": rec["status"], "mAP": rec.get("mAP"),
        "backbone": backbone_name(rec),
        "protocol": protocol_label(rec),
        "train_s": seconds.get("train"), "config_hash": rec["config_hash"], "path": path,
        "method_type": method_cfg.get("type") or rec["method"],
        "cell": cell_label(rec["setting"], rec["label_ratio"], rec.get("shots")),
        "error": rec.get("error"),
        "total_s": sum(float(v) for v in seconds.values() if v is not None) if seconds else None,
        "generation_s": train_data.get("generation_seconds"), "n_generated": train_data.get("n_generated"),
        "peak_rss_mb": memory.get("process_peak_rss_mb"), "peak_cuda_mb": memory.get("cuda_peak_allocated_mb"),
        "n_trainable_params": rec.get("n_trainable_params"), "n_test": rec.get("n_test"),
        "derived": bool(rec.get("derived_from")), "toy": is_toy(rec), "run": run_dir(path),
        "eval_split": eval_split, "shots": rec.get("shots"),
        **dict(zip(("model", "resolution"), backbone_setup(rec))),
    }


def check_diagnostics(rec: dict) -> None:
    """A diagnostics record's required fields (KeyError/TypeError when missing or mistyped)."""
    rec["dataset"], rec["status"]
    for section in ("modality_gap", "domain_gap", "leakage"):
        if rec.get(section) is not None and not isinstance(rec[section], dict):
            raise TypeError(f"{section} must be an object or null")


def read_records(paths: list[str], skip_bad: bool = False) -> Records:
    """Read record files; a file that cannot be read or lacks a required field raises :class:`RecordError`
    naming it, or with ``skip_bad`` is left out and listed in :attr:`Records.bad` (``bench report``)."""
    rows, raw, diagnostics, bad = [], {}, {}, {}
    for path in paths:
        try:
            rec = read_json(path)
            if not isinstance(rec, dict):
                raise TypeError(f"a record is a JSON object, got {type(rec).__name__}")
            kind = rec.get("kind", "cell")
            if kind == "diagnostics":
                check_diagnostics(rec)
                diagnostics[path] = rec
            elif kind == "cell":
                check_record(rec)  # the record contract (bench/records.py): a bad field is named, the file left out
                rows.append(cell_row(path, rec))
                raw[path] = rec
            else:
                raise ValueError(f"unknown record kind {kind!r} (known: cell, diagnostics)")
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if not skip_bad:
                raise RecordError(f"malformed record {path}: {type(exc).__name__}: {exc}") from exc
            bad[path] = f"malformed record: {type(exc).__name__}: {exc}"
    return Records(pd.DataFrame(rows, columns=COLUMNS), raw, diagnostics, bad)


def load_records(paths: list[str]) -> pd.DataFrame:
    """The cell records among ``paths`` as a flat table (:data:`COLUMNS`); diagnostics records are skipped."""
    return read_records(paths).cells


# ----- aggregation over seeds ------------------------------------------------------------------


def aggregate(cells: pd.DataFrame, value: str = "mAP") -> pd.DataFrame:
    """Finished cells grouped by (dataset, method, backbone, protocol, setting, cell) over seeds: mean,
    sample std (ddof=1; NaN for one seed), min, max, n and the seeds of ``value``; sorted by dataset,
    cell order, method."""
    ok = cells[cells.status == "ok"]
    keys = ["dataset", *ROW_KEY, "setting", "cell"]
    if ok.empty:
        return pd.DataFrame(columns=[*keys, "label_ratio", "shots", "model", "resolution", "mean", "std", "min", "max",
                                     "n", "seeds"])
    ok = ok.assign(**{c: None for c in ("shots", "model", "resolution") if c not in ok})  # hand-made frames
    grouped = ok.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(label_ratio=("label_ratio", "first"), shots=("shots", "first"), model=("model", "first"),
                      resolution=("resolution", "first"), mean=(value, "mean"), std=(value, "std"),
                      min=(value, "min"), max=(value, "max"), n=(value, "count"),
                      seeds=("seed", lambda s: ",".join(str(x) for x in sorted(s)))).reset_index()
    order = [(d, cell_sort_key(s, r, k), m)
             for d, s, r, k, m in zip(out.dataset, out.setting, out.label_ratio, out.shots, out.method)]
    return out.iloc[sorted(range(len(out)), key=order.__getitem__)].reset_index(drop=True)


# ----- row labels and seed groups (tables, significance, plots) ----------------------------------


def row_labels(keys: pd.DataFrame) -> list[str]:
    """A method's name, with ``[backbone, protocol]`` when it appears with more than one in ``keys``."""
    combos = keys.drop_duplicates(ROW_KEY).groupby("method").size()
    return [m if combos[m] == 1 else f"{m} [{b}, {p}]" for m, b, p in zip(keys.method, keys.backbone, keys.protocol)]


def seed_groups(frame: pd.DataFrame) -> dict[tuple, list[str]]:
    """Record paths by (method, backbone, protocol), each list sorted by seed."""
    ordered = frame.sort_values(["method", "seed"], kind="stable")
    return {key: list(group.path) for key, group in ordered.groupby(ROW_KEY, sort=False)}


# ----- results and per-class AP -----------------------------------------------------------------

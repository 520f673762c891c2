"""Records -> pandas -> tables and plots. ``bench report`` reads only records (and, for significance
tests, the test scores saved beside them); it never trains or evaluates anything.

Three record kinds live in ``<work-dir>/<run>/records/<dataset>/``: cell records (no ``kind`` key;
runner and derived/fused records), ``"kind": "diagnostics"`` records (modality and domain gaps,
leakage), and their ``.scores.npz`` files. :func:`read_records` loads them into a :class:`Records`;
:func:`write_report` writes every section (``bench.report_tables``) and plot (``bench.report_plots``)
and an index, ``README.md``, that links them and says where the numbers came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from bench.records import backbone_spec
from bench.report_format import (
    Section,
    best_mask,
    fmt_mean_std,
    is_missing,
    markdown_table,
    with_label_columns,
    write_section,
)

FORMATS = ("md", "tex", "csv", "png", "pdf")
COLUMNS = ["dataset", "method", "setting", "label_ratio", "seed", "status", "mAP", "backbone", "protocol",
           "train_s", "config_hash", "path",
           "method_type", "cell", "error", "total_s", "generation_s", "n_generated", "peak_rss_mb", "peak_cuda_mb",
           "n_trainable_params", "n_test", "derived", "toy", "run", "eval_split"]
ROW_KEY = ["method", "backbone", "protocol"]  # one table row each: backbones and protocols never mix silently
SETTING_ORDER = {"zero-shot": 0, "partial": 1, "fewshot": 2}
TOY_NOTICE = ("**Toy numbers, not comparable to real datasets.** Some records come from the embedded toy world "
              "(procedural images, a tiny CLIP, a toy text-to-image renderer): they check that the pipeline works "
              "and that the gaps exist, nothing about real-world accuracy.")


class RecordError(ValueError):
    """A record file that cannot be read; the message names it."""


@dataclass
class Records:
    """What ``bench report`` reads: ``cells`` (one row per cell record, ok or failed; :data:`COLUMNS`),
    the cell records themselves by path, and the diagnostics records by path."""

    cells: pd.DataFrame
    raw: dict[str, dict] = field(default_factory=dict)
    diagnostics: dict[str, dict] = field(default_factory=dict)

    def ok(self) -> pd.DataFrame:
        return self.cells[self.cells.status == "ok"]


def find_records(work_dir: Path, run: str | None = None) -> list[str]:
    """Every record JSON under ``<work_dir>[/<run>]/**/records/`` (hidden temp files skipped)."""
    root = Path(work_dir) / run if run else Path(work_dir)
    return sorted(str(p) for p in root.glob("**/records/**/*.json") if not p.name.startswith("."))


def cell_label(setting: str, label_ratio) -> str:
    """A results column: ``zero-shot``, ``partial 0.5``, ``fewshot``."""
    return setting if is_missing(label_ratio) else f"{setting} {label_ratio:g}"


def cell_sort_key(setting: str, label_ratio) -> tuple:
    """Zero-shot first, then partial by label ratio, then few-shot, then anything else."""
    ratio = -1.0 if is_missing(label_ratio) else float(label_ratio)
    return SETTING_ORDER.get(setting, len(SETTING_ORDER)), ratio, setting


def cell_groups(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """The (dataset, cell) pairs of ``frame`` in dataset, then :func:`cell_sort_key` order."""
    firsts = frame.drop_duplicates(["dataset", "cell"])
    keyed = sorted((d, cell_sort_key(s, r), c) for d, s, r, c in zip(firsts.dataset, firsts.setting,
                                                                       firsts.label_ratio, firsts.cell))
    return [(d, c) for d, _, c in keyed]


def backbone_name(record: dict) -> str:
    """``model@pretrained`` from the record's backbone spec (or its config's backbone)."""
    spec = backbone_spec(record)
    return f"{spec['model']}@{spec.get('pretrained')}"


def is_toy(record: dict) -> bool:
    """A record from the embedded toy world: the toy dataset, or a toy backbone (``toy-clip``, ``builtin:toy``)."""
    spec = backbone_spec(record)
    return record.get("dataset") == "toy" or "toy" in str(spec.get("model", "")).lower() \
        or str(spec.get("pretrained", "")).startswith("builtin:toy")


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
        "cell": cell_label(rec["setting"], rec["label_ratio"]),
        "error": rec.get("error"),
        "total_s": sum(float(v) for v in seconds.values() if v is not None) if seconds else None,
        "generation_s": train_data.get("generation_seconds"), "n_generated": train_data.get("n_generated"),
        "peak_rss_mb": memory.get("process_peak_rss_mb"), "peak_cuda_mb": memory.get("cuda_peak_allocated_mb"),
        "n_trainable_params": rec.get("n_trainable_params"), "n_test": rec.get("n_test"),
        "derived": bool(rec.get("derived_from")), "toy": is_toy(rec), "run": run_dir(path),
        "eval_split": eval_split,
    }


def check_diagnostics(rec: dict) -> None:
    """A diagnostics record's required fields (KeyError/TypeError when missing or mistyped)."""
    rec["dataset"], rec["status"]
    for section in ("modality_gap", "domain_gap", "leakage"):
        if rec.get(section) is not None and not isinstance(rec[section], dict):
            raise TypeError(f"{section} must be an object or null")


def read_records(paths: list[str]) -> Records:
    """Read record files; a file that cannot be read or lacks a required field raises :class:`RecordError`
    naming it."""
    rows, raw, diagnostics = [], {}, {}
    for path in paths:
        try:
            rec = json.loads(Path(path).read_text())
            if not isinstance(rec, dict):
                raise TypeError(f"a record is a JSON object, got {type(rec).__name__}")
            kind = rec.get("kind", "cell")
            if kind == "diagnostics":
                check_diagnostics(rec)
                diagnostics[path] = rec
            elif kind == "cell":
                rows.append(cell_row(path, rec))
                raw[path] = rec
            else:
                raise ValueError(f"unknown record kind {kind!r} (known: cell, diagnostics)")
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"malformed record {path}: {type(exc).__name__}: {exc}") from exc
    return Records(pd.DataFrame(rows, columns=COLUMNS), raw, diagnostics)


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
        return pd.DataFrame(columns=[*keys, "label_ratio", "mean", "std", "min", "max", "n", "seeds"])
    grouped = ok.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(label_ratio=("label_ratio", "first"), mean=(value, "mean"), std=(value, "std"),
                      min=(value, "min"), max=(value, "max"), n=(value, "count"),
                      seeds=("seed", lambda s: ",".join(str(x) for x in sorted(s)))).reset_index()
    order = [(d, cell_sort_key(s, r), m) for d, s, r, m in zip(out.dataset, out.setting, out.label_ratio, out.method)]
    return out.iloc[sorted(range(len(out)), key=order.__getitem__)].reset_index(drop=True)


def results_display(agg: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One dataset's :func:`aggregate` rows as a results table: (labels [method, backbone, protocol,
    seeds], values "mean ± std" per cell column, bold = best mean per column)."""
    columns = [cell for _, cell in cell_groups(agg)]
    means = agg.set_index([*ROW_KEY, "cell"])["mean"].unstack("cell").reindex(columns=columns)
    rows = means.index
    text = pd.DataFrame("-", index=rows, columns=columns)
    for r in agg.itertuples():
        text.loc[(r.method, r.backbone, r.protocol), r.cell] = fmt_mean_std(r.mean, r.std, int(r.n))
    seeds = agg.groupby(ROW_KEY, sort=False)["seeds"].agg(lambda s: ",".join(sorted(set(",".join(s).split(",")),
                                                                                    key=float)))
    labels = rows.to_frame(index=False)
    labels["seeds"] = [seeds.loc[key] for key in rows]
    return labels, text.reset_index(drop=True), best_mask(means).reset_index(drop=True)


def summary_table(records: pd.DataFrame, fmt: str = "github") -> str:
    """mAP as mean ± std over seeds, one row per (dataset, method, backbone, protocol), one column per
    setting / label ratio; then the failed cells with their errors."""
    parts = []
    agg = aggregate(records)
    for dataset in agg.dataset.unique():
        labels, values, _ = results_display(agg[agg.dataset == dataset])
        labels.insert(0, "dataset", dataset)
        table = with_label_columns(labels, values)
        parts.append(markdown_table(table) if fmt == "github" else table.frame.to_markdown(tablefmt=fmt, index=False))
    failed = records[records.status != "ok"]
    if len(failed):
        parts.append("failed cells:\n" + "\n".join(
            f"  {r.dataset} {r.method} {r.cell} s={r.seed}: {r.error or '(no error recorded)'} ({r.path})"
            for r in failed.itertuples()))
    return "\n\n".join(parts)


# ----- the report --------------------------------------------------------------------------------


def all_sections(records: Records, reference: str | None = None, n_boot: int = 1000,
                 boot_seed: int = 0) -> list[Section]:
    """Every table section in report order (results, per-class AP, ablation, significance, gaps, cost,
    failed); each intro starts with the toy notice when toy records are present."""
    from bench.report_cost import cost_section
    from bench.report_gaps import gaps_section
    from bench.report_significance import significance_section
    from bench.report_tables import ablation_section, failed_section, per_class_section, results_section

    sections = [results_section(records), per_class_section(records), ablation_section(records),
                significance_section(records, reference, n_boot, boot_seed), gaps_section(records),
                cost_section(records), failed_section(records)]
    if has_toy(records):
        for section in sections:
            section.intro = f"> {TOY_NOTICE}\n\n{section.intro}"
    return sections


def has_toy(records: Records) -> bool:
    return bool(records.cells.toy.any()) or any(is_toy(r) for r in records.diagnostics.values())


def write_report(records: Records, out: Path, formats: tuple[str, ...] = FORMATS, reference: str | None = None,
                 n_boot: int = 1000, boot_seed: int = 0) -> list[Path]:
    """Write every table section and plot for ``records`` into ``out`` and the index ``out/README.md``;
    returns the written paths (index last). ``reference``/``n_boot``/``boot_seed``: see
    :func:`bench.report_significance.significance_section`."""
    from bench.report_plots import write_plots

    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown report format(s) {', '.join(sorted(unknown))}; valid: {', '.join(FORMATS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = set(formats)
    sections = all_sections(records, reference=reference, n_boot=n_boot, boot_seed=boot_seed)
    written: dict[str, list[Path]] = {section.heading: write_section(section, out, wanted) for section in sections}
    if "csv" in wanted:
        records.cells.to_csv(out / "records.csv", index=False)
        written["Every cell record, one row each"] = [out / "records.csv"]
    plot_formats = [f for f in ("png", "pdf") if f in wanted]
    if plot_formats:
        written.update(write_plots(records, out, plot_formats))
    index = out / "README.md"
    index.write_text(index_text(records, out, written, reference, n_boot, boot_seed))
    return [p for paths in written.values() for p in paths] + [index]


def index_text(records: Records, out: Path, written: dict[str, list[Path]], reference: str | None, n_boot: int,
               boot_seed: int) -> str:
    """The report's README: provenance (runs, record counts, commits), the toy notice, links to every file."""
    cells = records.cells
    lines = ["# bench report", ""]
    if has_toy(records):
        lines += [f"> {TOY_NOTICE}", ""]
    n_ok, n_failed = int((cells.status == "ok").sum()), int((cells.status != "ok").sum())
    lines += [f"Written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by `bench report` from "
              f"{len(cells)} cell records ({n_ok} finished, {n_failed} failed, {int(cells.derived.sum())} derived by "
              f"score fusion) and {len(records.diagnostics)} diagnostics records, in these runs:", ""]
    n_cells = cells.groupby("run").size().to_dict()
    n_diagnostics: dict[str, int] = {}
    commits: dict[str, set] = {}
    for path in records.diagnostics:
        n_diagnostics[run_dir(path)] = n_diagnostics.get(run_dir(path), 0) + 1
    for path, rec in [*records.raw.items(), *records.diagnostics.items()]:
        commits.setdefault(run_dir(path), set()).add(str((rec.get("environment") or {}).get("git_commit") or "unknown"))
    for run in sorted(set(n_cells) | set(n_diagnostics)):
        lines.append(f"- `{run}`: {n_cells.get(run, 0)} cell records, {n_diagnostics.get(run, 0)} diagnostics "
                     f"records; bench commit(s) {', '.join(sorted(commits.get(run, {'unknown'})))}")
    datasets = sorted(set(cells.dataset) | {r["dataset"] for r in records.diagnostics.values()})
    toy_sets = sorted(set(cells.loc[cells.toy.astype(bool), "dataset"])
                      | {r["dataset"] for r in records.diagnostics.values() if is_toy(r)})
    lines += ["", f"Datasets: {', '.join(datasets) or 'none'}"
              + (f" (toy world: {', '.join(toy_sets)})" if toy_sets else ""), "", "## Files", ""]
    for heading, paths in written.items():
        links = ", ".join(f"[{p.name}]({p.relative_to(out).as_posix()})" for p in paths)
        lines.append(f"- {heading}: {links or '(nothing to show)'}")
    lines += ["", "## How to read", "",
              "- mAP in %, mean ± sample standard deviation (ddof=1) over seeds; the std is shown only with more "
              "than one seed. Best per column in bold.",
              "- One row per (method, backbone, image protocol): cached features with K views and online "
              "re-encoding are never averaged together. Fused records (score fusion of two cells) are rows of "
              "their own. A dataset named `<dataset>-<split>` holds results evaluated on that split (e.g. val, "
              "for tuning) instead of the test split.",
              f"- Significance: paired bootstrap over test images ({n_boot} resamples, seed {boot_seed}) of the "
              "difference in seed-averaged mAP to the reference "
              f"({'`' + reference + '`' if reference else 'the best mean method of each cell'}); 95% percentile "
              "interval; p two-sided; significant when the interval excludes 0. It reflects test-set sampling, "
              "not seed variation.",
              "- Cost: seconds summed over the record's phases (test feature extraction, training-data preparation "
              "incl. generation, training, evaluation). Features are cached, so the first cell of a run pays the "
              "extraction and later cells mostly read it; a fused cell counts the time of its sources.",
              "- Only records are read: nothing is recomputed except bootstrap resamples of saved test scores."]
    return "\n".join(lines) + "\n"

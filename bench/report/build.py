"""The report's orchestrator, at the top of the package: every table section and plot for a set of records,
written in the chosen formats, and the index (``README.md``) that links them and says where the numbers
came from. ``bench report`` reads only records (and, for significance tests, the test scores saved beside
them); it never trains or evaluates anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.errors import UsageError
from bench.report.averages import averages_section, setting_averages
from bench.report.cost import cost_section
from bench.report.format import Section, write_section
from bench.report.gaps import gaps_section
from bench.report.model import Records, aggregate, is_toy, run_dir
from bench.report.published import ours_with_averages, published_section
from bench.report.significance import significance_section
from bench.report.tables import ablation_section, failed_section, per_class_section, results_section
from bench.report.zsl import zsl_section

FORMATS = ("md", "tex", "csv", "png", "pdf")
TOY_NOTICE = ("**Toy numbers, not comparable to real datasets.** Some records come from the embedded toy world "
              "(procedural images, a tiny CLIP, a toy text-to-image renderer): they check that the pipeline works "
              "and that the gaps exist, nothing about real-world accuracy.")


def all_sections(records: Records, reference: str | None = None, n_boot: int = 1000,
                 boot_seed: int = 0) -> list[Section]:
    """Every table section in report order (results, averages, published numbers, seen/unseen zero-shot,
    per-class AP, ablation, significance, gaps, cost, failed); each intro starts with the toy notice when toy
    records are present."""
    sections = [results_section(records), averages_section(records), published_section(comparable(records)),
                zsl_section(records), per_class_section(records), ablation_section(records),
                significance_section(records, reference, n_boot, boot_seed), gaps_section(records),
                cost_section(records), failed_section(records)]
    if has_toy(records):
        for section in sections:
            section.intro = f"> {TOY_NOTICE}\n\n{section.intro}"
    return sections


def comparable(records: Records):
    """Our numbers to set beside published ones: every cell (mean over seeds) and the averages over ratios /
    shot counts, of the test-split, non-toy records."""
    cells = records.cells[(records.cells.eval_split == "test") & ~records.cells.toy.astype(bool)]
    return ours_with_averages(aggregate(cells), setting_averages(cells))


def has_toy(records: Records) -> bool:
    """Whether any cell or diagnostics record comes from the toy world."""
    return bool(records.cells.toy.any()) or any(is_toy(r) for r in records.diagnostics.values())


def write_report(records: Records, out: Path, formats: tuple[str, ...] = FORMATS, reference: str | None = None,
                 n_boot: int = 1000, boot_seed: int = 0) -> list[Path]:
    """Write every table section and plot for ``records`` into ``out`` and the index ``out/README.md``;
    returns the written paths (index last). ``reference``/``n_boot``/``boot_seed``: see
    :func:`bench.report.significance.significance_section`."""
    from bench.report.plots import write_plots

    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise UsageError(f"unknown report format(s) {', '.join(sorted(unknown))}; valid: {', '.join(FORMATS)}")
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


def figure_lines(out: Path, written: dict[str, list[Path]]) -> list[str]:
    """The index's Figures section: every written PNG shown inline under its description (with links to
    its other formats); nothing when no PNG was written."""
    lines = []
    for heading, paths in written.items():
        for png in (p for p in paths if p.suffix == ".png"):
            others = ", ".join(f"[{p.suffix[1:].upper()}]({p.relative_to(out).as_posix()})" for p in paths if p != png)
            image = f"![{heading}]({png.relative_to(out).as_posix()})"
            lines += ["", f"### {heading}", "", image]
            lines += ["", f"Also as {others}."] if others else []
    return ["", "## Figures", *lines] if lines else []


def index_text(records: Records, out: Path, written: dict[str, list[Path]], reference: str | None, n_boot: int,
               boot_seed: int) -> str:
    """The report's README: provenance (runs, record counts, commits), the toy notice, every figure inline,
    links to every file."""
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
              + (f" (toy world: {', '.join(toy_sets)})" if toy_sets else "")]
    lines += figure_lines(out, written)
    lines += ["", "## Files", ""]
    for heading, paths in written.items():
        links = ", ".join(f"[{p.name}]({p.relative_to(out).as_posix()})" for p in paths)
        lines.append(f"- {heading}: {links or '(nothing to show)'}")
    if records.bad:
        lines += ["", "## Unreadable files (left out of every table above)", ""]
        lines += [f"- `{path}`: {why}" for path, why in sorted(records.bad.items())]
    lines += ["", "## How to read", "",
              "- mAP in %, mean ± sample standard deviation (ddof=1) over seeds; the std is shown only with more "
              "than one seed. Best per column in bold.",
              "- One row per (method, backbone, image protocol): cached features with K views and online "
              "re-encoding are never averaged together. Fused records (score fusion of two cells) are rows of "
              "their own. A dataset named `<dataset>-<split>` holds results evaluated on that split (e.g. val, "
              "for tuning) instead of the test split.",
              f"- Significance: bootstrap over training seeds and test images ({n_boot} resamples, seed "
              f"{boot_seed}) of the difference in seed-averaged mAP to the reference "
              f"({'`' + reference + '`' if reference else 'the best mean method of each cell'}); 95% percentile "
              "interval; p two-sided; significant when the interval excludes 0. With one seed per method it "
              "reflects test-set sampling only.",
              "- Averages: the papers' \"Avg.\" columns (over label ratios, shot counts, datasets) only for methods "
              "that have every point; published numbers beside ours only where dataset, setting, point, backbone "
              "and input resolution match (the published section lists the setups no run matched).",
              "- Cost: seconds summed over the record's phases (test feature extraction, training-data preparation "
              "incl. generation, training, evaluation). Features are cached, so the first cell of a run pays the "
              "extraction and later cells mostly read it; a fused cell counts the time of its sources.",
              "- Only records are read: nothing is recomputed except bootstrap resamples of saved test scores."]
    return "\n".join(lines) + "\n"

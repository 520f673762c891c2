"""The report's orchestrator, at the top of the package: every table section and plot for a set of records,
written in the chosen formats, and the index (``README.md``) that links them and says where the numbers
came from. ``bench report`` reads only records (and, for significance tests, the test scores saved beside
them); it never trains or evaluates anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.errors import UsageError
from bench.phases import timed
from bench.report.averages import averages_section, setting_averages
from bench.report.cost import cost_section
from bench.report.format import Section, write_section
from bench.report.gaps import gaps_section
from bench.report.model import Records, aggregate, is_toy, standin_rows
from bench.report.published import ours_with_averages, published_section
from bench.report.significance import significance_section
from bench.report.sources import datasets_line, how_to_read, record_counts, run_lines
from bench.report.tables import ablation_section, failed_section, per_class_section, results_section
from bench.report.zsl import zsl_section

FORMATS = ("md", "tex", "csv", "png", "pdf", "html")
PAGE = "index.html"  # the interactive page (format html)
TOY_NOTICE = ("**Toy numbers, not comparable to real datasets.** Some records come from the embedded toy world "
              "(procedural images, a tiny CLIP, a toy text-to-image renderer): they check that the pipeline works "
              "and that the gaps exist, nothing about real-world accuracy.")


STANDIN_NOTICE = ("**Stand-in encoder: timing only.** Some rows (backbone `standin:...`) were made with the "
                  "stand-in encoder of `bench.features.standin` (fixed random features with a real architecture's "
                  "shapes, for measuring the harness): their mAPs mean nothing.")


def all_sections(records: Records, reference: str | None = None, n_boot: int = 1000,
                 boot_seed: int = 0) -> list[Section]:
    """Every table section in report order (results, averages, published numbers, seen/unseen zero-shot,
    per-class AP, ablation, significance, gaps, cost, failed); each intro starts with the toy notice when toy
    records are present."""
    makers = {"results": lambda: results_section(records), "averages": lambda: averages_section(records),
              "published": lambda: published_section(comparable(records)), "zsl": lambda: zsl_section(records),
              "per-class AP": lambda: per_class_section(records), "ablation": lambda: ablation_section(records),
              "significance": lambda: significance_section(records, reference, n_boot, boot_seed),
              "gaps": lambda: gaps_section(records), "cost": lambda: cost_section(records),
              "failed": lambda: failed_section(records)}
    sections = []
    for name, make in makers.items():
        with timed(f"report: {name}"):
            sections.append(make())
    if has_toy(records):
        for section in sections:
            section.intro = f"> {TOY_NOTICE}\n\n{section.intro}"
    return sections


def comparable(records: Records):
    """Our numbers to set beside published ones: every cell (mean over seeds) and the averages over ratios /
    shot counts, of the test-split, non-toy records."""
    cells = records.cells[(records.cells.eval_split == "test") & ~records.cells.toy.astype(bool)
                          & ~standin_rows(records.cells)]
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
    with timed("report: write tables"):
        written: dict[str, list[Path]] = {section.heading: write_section(section, out, wanted) for section in sections}
    if "csv" in wanted:
        records.cells.to_csv(out / "records.csv", index=False)
        written["Every cell record, one row each"] = [out / "records.csv"]
    plot_formats = [f for f in ("png", "pdf") if f in wanted]
    if plot_formats:
        with timed("report: plots"):
            written.update(write_plots(records, out, plot_formats))
    if "html" in wanted:
        from bench.report.page import write_page

        with timed("report: page"):
            notices = [TOY_NOTICE] * has_toy(records) + [STANDIN_NOTICE] * bool(standin_rows(records.cells).any())
            page = write_page(records, sections, out / PAGE, "\n>\n> ".join(notices) or None, reference, n_boot,
                              boot_seed)
        written["Interactive page (sortable leaderboards, figures, comparisons, every record)"] = [page]
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
    lines = ["# bench report", ""]
    if has_toy(records):
        lines += [f"> {TOY_NOTICE}", ""]
    if standin_rows(records.cells).any():
        lines += [f"> {STANDIN_NOTICE}", ""]
    lines += [f"Written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by `bench report` from "
              f"{record_counts(records)}, in these runs:", ""]
    lines += run_lines(records)
    lines += ["", datasets_line(records)]
    lines += figure_lines(out, written)
    lines += ["", "## Files", ""]
    for heading, paths in written.items():
        links = ", ".join(f"[{p.name}]({p.relative_to(out).as_posix()})" for p in paths)
        lines.append(f"- {heading}: {links or '(nothing to show)'}")
    if records.bad:
        lines += ["", "## Unreadable files (left out of every table above)", ""]
        lines += [f"- `{path}`: {why}" for path, why in sorted(records.bad.items())]
    lines += ["", "## How to read", "", *how_to_read(reference, n_boot, boot_seed)]
    return "\n".join(lines) + "\n"

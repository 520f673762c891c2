"""The page itself: one self-contained HTML file (``index.html`` beside the other report files) that works
offline from ``file://`` and gives the same bytes for the same records (no timestamp, no random ids).

Parts, in page order: where the numbers came from and the headline claims; the leaderboards
(:mod:`bench.report.page.leaderboards`); the figures (rendered by plotly.js when scrolled into view); the
two-method comparison; per-class AP; every record; every other section's tables as plain HTML. The
leaderboards and the other tables are HTML tables, so the page is readable without JavaScript; the views
built from the embedded data (comparison, per-class AP, records, figures) need it and say so.
"""

from __future__ import annotations

from pathlib import Path

from bench.report.format import Section, fmt_number
from bench.report.model import Records
from bench.report.page.assets import datatables_bundle, library_versions, plotly_js, script, static_text
from bench.report.page.leaderboards import leaderboards
from bench.report.page.markup import esc, intro_html, json_script, section_table_html
from bench.report.page.payload import page_data
from bench.report.sources import datasets_line, how_to_read, record_counts, run_lines

PLAIN_SECTIONS = ("results", "averages", "published", "zsl", "ablation", "significance", "gaps", "cost", "failed")
NAV = (("overview", "Overview"), ("leaderboards", "Leaderboards"), ("plots", "Plots"), ("compare", "Compare two"),
       ("per-class", "Per-class AP"), ("records", "Records"), ("tables", "All tables"))
NEEDS_JS = '<noscript><p class="note">This view is drawn by JavaScript; the tables below and the CSV files ' \
           'beside this page hold the same numbers.</p></noscript>'


def headline_claims(significance: Section) -> list[str]:
    """Per dataset and cell, the reference against the closest other method, with the bootstrap interval:
    the significance section's first row of the cell (its rows go by mean mAP, best first)."""
    data = significance.data
    if data is None or data.empty:
        return []
    lines = []
    for (dataset, cell), rows in data.groupby(["dataset", "cell"], sort=False):
        r = next(rows.itertuples())
        if r.note:
            lines.append(f"<b>{esc(dataset)}, {esc(cell)}</b>: {esc(r.reference)} vs {esc(r.method)}: {esc(r.note)}")
            continue
        verdict = "significant" if r.significant else "not significant"
        lines.append(f"<b>{esc(dataset)}, {esc(cell)}</b>: {esc(r.reference)} {fmt_number(r.mAP_reference)} "
                     f"({r.n_seeds_reference} seeds) vs {esc(r.method)} {fmt_number(r.mAP)} ({r.n_seeds} seeds): "
                     f"{esc(r.method)} − {esc(r.reference)} = {fmt_number(r.diff)} mAP, 95% CI "
                     f"[{r.ci_low:.2f}, {r.ci_high:.2f}], <span class=\"{verdict.split()[0]}\">{verdict}</span>")
    return lines


def overview(records: Records, sections: dict[str, Section], toy_notice: str | None, reference: str | None,
             n_boot: int, boot_seed: int) -> str:
    text = [f"From {record_counts(records)}, in these runs:", "", *run_lines(records), "", datasets_line(records)]
    parts = ['<section id="overview"><h2>Overview</h2>']
    if toy_notice:
        parts.append(intro_html(f"> {toy_notice}"))
    parts.append(intro_html("\n".join(text)))
    claims = headline_claims(sections["significance"])
    parts.append("<h3>Headline comparisons</h3>")
    parts.append("<p>Each cell's reference (" + (f"<code>{esc(reference)}</code>" if reference else
                 "the method with the best mean mAP") + ") against the closest other method, from the significance "
                 "section (bootstrap over seeds and test images).</p>")
    parts.append("<ul class=\"claims\">" + "".join(f"<li>{c}</li>" for c in claims) + "</ul>" if claims else
                 f"<p>{esc(sections['significance'].intro)}</p>")
    parts.append("<details><summary>How to read</summary>"
                 + intro_html("\n".join(how_to_read(reference, n_boot, boot_seed))) + "</details></section>")
    return "".join(parts)


def plots_part(figures: dict[str, dict]) -> str:
    """Placeholders for the figures (``data-figure``: dataset / kind / key in the page data); Pareto and
    ablation figures are one per cell, chosen with a selector."""
    parts = ['<section id="plots" class="js-only"><h2>Plots</h2>', NEEDS_JS,
             '<p>Hover a point for its exact value and seeds; click a legend entry to hide or show a series '
             '(double-click: only that one).</p>']
    for dataset, kinds in figures.items():
        parts.append(f"<h3>{esc(dataset)}</h3>")
        for setting in kinds["curves"]:
            parts.append(f'<div class="plot" data-figure="{esc(dataset)}|curves|{esc(setting)}"></div>')
        for kind, what in (("pareto", "Accuracy vs cost"), ("ablation", "T2I-PAL ablation")):
            cells = list(kinds[kind])
            if not cells:
                continue
            options = "".join(f'<option value="{esc(c)}">{esc(c)}</option>' for c in cells)
            parts.append(f'<div class="chooser"><label>{what}, cell: <select class="figure-choice" '
                         f'data-target="{esc(dataset)}|{kind}">{options}</select></label></div>'
                         f'<div class="plot" data-figure="{esc(dataset)}|{kind}|{esc(cells[0])}"></div>')
    return "".join(parts) + "</section>"


def plain_tables(sections: dict[str, Section]) -> str:
    parts = ['<section id="tables"><h2>All tables</h2><p>Every section of the markdown report, as written to '
             'its <code>.md</code> file (per-class AP: see above).</p>']
    for name in PLAIN_SECTIONS:
        section = sections[name]
        tables = "".join(f'<div class="table-wrap">{section_table_html(t, classes="plain")}</div>'
                         for t in section.tables if len(t.frame))
        parts.append(f'<details id="section-{name}"><summary>{esc(section.heading)}</summary>'
                     f"{intro_html(section.intro)}{tables}</details>")
    return "".join(parts) + "</section>"


def page_html(records: Records, sections: dict[str, Section], toy_notice: str | None = None,
              reference: str | None = None, n_boot: int = 1000, boot_seed: int = 0) -> str:
    """The whole page as text (see the module docstring)."""
    sections = {s.name: s for s in sections} if isinstance(sections, list) else sections
    data = page_data(records, sections)
    boards, choices = leaderboards(records, sections)
    dt_js, dt_css = datatables_bundle()
    nav = "".join(f'<a href="#{key}">{esc(title)}</a>' for key, title in NAV)
    versions = ", ".join(f"{name} {v}" for name, v in library_versions().items())
    body = [
        f'<header><h1>bench results</h1><nav>{nav}</nav></header><main>',
        overview(records, sections, toy_notice, reference, n_boot, boot_seed),
        '<section id="leaderboards"><h2>Leaderboards</h2><div id="filters" class="js-only"></div>'
        '<p>Per dataset and setting; mean ± std over seeds (best mean per point in bold). Click a column header '
        'to sort, a row to open its records.</p>' + boards + "</section>",
        plots_part(data["figures"]),
        '<section id="compare" class="js-only"><h2>Compare two methods</h2>' + NEEDS_JS +
        '<div id="compare-view"></div></section>',
        '<section id="per-class" class="js-only"><h2>Per-class AP</h2>' + NEEDS_JS +
        '<div id="per-class-view"></div></section>',
        '<section id="records" class="js-only"><h2>Records</h2>' + NEEDS_JS +
        '<p>One row per cell record (<code>records.csv</code>; in Python: <code>bench.report.records_frame</code>). '
        'Click a row for the whole record.</p><div id="records-view"></div></section>',
        plain_tables(sections),
        f'</main><footer>Written by <code>bench report</code>. Tables: DataTables (itables); figures: plotly.js '
        f'({esc(versions)}); both embedded, nothing is loaded from the network.</footer>',
        '<div id="record-panel" hidden></div>',
    ]
    return "\n".join([
        '<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">', "<title>bench results</title>",
        f"<style>{dt_css}</style>", f"<style>{static_text('page.css')}</style>", "</head>",
        '<body class="nojs">', *body, json_script(data, "bench-data"), json_script(choices, "bench-filters"),
        script(plotly_js(), type="text/plain", id="plotly-js"),  # run by page.js when the first figure is drawn
        script(f'window.BENCH_DATATABLES = "{dt_js}";'), script(static_text("page.js")),
        "</body></html>", ""])


def write_page(records: Records, sections, path: Path, toy_notice: str | None = None, reference: str | None = None,
               n_boot: int = 1000, boot_seed: int = 0) -> Path:
    path = Path(path)
    path.write_text(page_html(records, sections, toy_notice, reference, n_boot, boot_seed), encoding="utf-8")
    return path

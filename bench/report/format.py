"""Formatting for ``bench report``: numbers to text, and tables to markdown, LaTeX and CSV.

A :class:`Table` holds display strings (already formatted) and a mask of the cells set in bold; a
:class:`Section` is one report file (``<name>.md`` / ``.tex`` / ``.csv``): a heading, an intro,
its tables, and the numeric data behind them (the CSV). Renderers only lay out; they never compute.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tabulate import tabulate

MISSING = "-"
MINUS_BEFORE_DIGIT = re.compile(r"(?<![\w.])-(?=\d)")
LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "≥": r"$\geq$", "Δ": r"$\Delta$"}


@dataclass
class Table:
    """Display strings (columns are the headers) and where they are bold; the first ``label_columns``
    columns are labels (left-aligned), the rest values (right-aligned)."""

    title: str
    frame: pd.DataFrame
    bold: pd.DataFrame | None = None
    note: str = ""
    label_columns: int = 1


@dataclass
class Section:
    """One report file: ``name`` is the file stem; ``data`` the numbers behind the tables (the CSV)."""

    name: str
    heading: str
    intro: str
    tables: list[Table] = field(default_factory=list)
    data: pd.DataFrame | None = None


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_number(value, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals; ``-`` when missing."""
    return MISSING if is_missing(value) else f"{float(value):.{digits}f}"


def fmt_count(value, thousands: bool = True) -> str:
    """A count as a whole number, with a thousands separator (``2,580``) or without (``2580``);
    ``-`` when missing."""
    if is_missing(value):
        return MISSING
    return f"{float(value):,.0f}" if thousands else f"{float(value):.0f}"


def fmt_mean_std(mean, std, n: int, digits: int = 2) -> str:
    """"mean ± std" (sample std over seeds) when n > 1, else "mean"; ``-`` when missing."""
    if is_missing(mean):
        return MISSING
    if n > 1 and not is_missing(std):
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def fmt_seconds(value) -> str:
    """Seconds: whole seconds from 100 s, else 3 significant digits; ``<0.01`` below 0.01 s, ``-`` when missing."""
    if is_missing(value):
        return MISSING
    value = float(value)
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 0.01:
        return f"{value:.3g}"
    return "<0.01" if value > 0 else "0"


def best_mask(values: pd.DataFrame, axis: int = 0, digits: int = 2) -> pd.DataFrame:
    """True where a value is the largest of its column (``axis=0``) or row (``axis=1``) once rounded to
    ``digits`` (so values that print the same are bold together); NaN is never best."""
    rounded = values.astype(float).round(digits)
    if axis == 0:
        return rounded.eq(rounded.max(axis=0), axis=1) & rounded.notna()
    return rounded.eq(rounded.max(axis=1), axis=0) & rounded.notna()


def with_label_columns(labels: pd.DataFrame, values: pd.DataFrame, bold: pd.DataFrame | None = None) -> Table:
    """A table whose leading columns are ``labels`` and the rest ``values`` (both row-aligned)."""
    frame = pd.concat([labels.reset_index(drop=True), values.reset_index(drop=True)], axis=1)
    mask = None
    if bold is not None:
        mask = pd.concat([pd.DataFrame(False, index=range(len(labels)), columns=labels.columns),
                          bold.reset_index(drop=True)], axis=1)
    return Table("", frame, mask, label_columns=labels.shape[1])


def _cells(table: Table, mark) -> list[list[str]]:
    """``mark(text, bold, is_label)`` of every cell, row by row."""
    rows = []
    for i in range(len(table.frame)):
        row = []
        for j in range(table.frame.shape[1]):
            text = str(table.frame.iat[i, j])
            bold = table.bold is not None and bool(table.bold.iat[i, j]) and text != MISSING
            row.append(mark(text, bold, j < table.label_columns))
        rows.append(row)
    return rows


def markdown_table(table: Table) -> str:
    """A GitHub-flavoured markdown table; bold cells as ``**x**``."""
    rows = _cells(table, lambda text, bold, _: f"**{text}**" if bold else text)
    return tabulate(rows, headers=[str(c) for c in table.frame.columns], tablefmt="github", disable_numparse=True)


def latex_escape(text: str) -> str:
    """Text made safe for LaTeX: its special characters escaped, ± as ``$\\pm$``."""
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def latex_value(text: str) -> str:
    """A value cell: :func:`latex_escape`, with a minus sign (``$-$``) for a hyphen before a digit."""
    return MINUS_BEFORE_DIGIT.sub(r"$-$", latex_escape(text))


def latex_table(table: Table) -> str:
    """A booktabs ``table`` environment with the title as caption; bold cells as ``\\textbf{x}``."""
    def cell(text: str, bold: bool, is_label: bool) -> str:
        text = latex_escape(text) if is_label else latex_value(text)
        return rf"\textbf{{{text}}}" if bold else text

    rows = _cells(table, cell)
    n_cols = table.frame.shape[1]
    align = "l" * min(table.label_columns, n_cols) + "r" * max(n_cols - table.label_columns, 0)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(table.title)}}}",
             rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in table.frame.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    if table.note:
        lines.insert(-1, rf"\par\smallskip{{\footnotesize {latex_escape(table.note)}}}")
    return "\n".join(lines)


def render_markdown(section: Section) -> str:
    parts = [f"# {section.heading}", section.intro]
    for table in section.tables:
        parts.append(f"## {table.title}")
        parts.append(markdown_table(table) if len(table.frame) else "(empty)")
        if table.note:
            parts.append(table.note)
    return "\n\n".join(p for p in parts if p) + "\n"


def render_latex(section: Section) -> str:
    header = [f"% {section.heading} -- written by `bench report`; needs \\usepackage{{booktabs}}"]
    header += [f"% {line}" for line in section.intro.splitlines() if line.strip()]
    return "\n\n".join(["\n".join(header), *(latex_table(t) for t in section.tables if len(t.frame))]) + "\n"


def write_section(section: Section, out: Path, formats: set[str]) -> list[Path]:
    """Write ``<out>/<name>.md`` / ``.tex`` / ``.csv`` for the requested formats; returns the paths."""
    written = []
    if "md" in formats:
        written.append(out / f"{section.name}.md")
        written[-1].write_text(render_markdown(section))
    if "tex" in formats:
        written.append(out / f"{section.name}.tex")
        written[-1].write_text(render_latex(section))
    if "csv" in formats and section.data is not None:
        written.append(out / f"{section.name}.csv")
        section.data.to_csv(written[-1], index=False)
    return written

"""HTML building blocks of the page (no records here): escaped text, tables of display strings with their
sort values and best-value marks, a section's intro as HTML, and data embedded as JSON.

Tables are plain ``<table>`` elements, readable without JavaScript; ``page.js`` turns those with
``class="dt"`` into DataTables. A cell's ``data-order`` holds the number it sorts by (the value behind the
text, e.g. the mean of "54.82 ± 0.31"), so sorting never parses display text.
"""

from __future__ import annotations

import json
import math
from html import escape

import markdown
import numpy as np
import pandas as pd

from bench.report.format import MISSING, Table


def esc(value) -> str:
    return escape(str(value), quote=True)


def number_attr(value) -> str:
    """A ``data-order`` value: the number, or empty for a missing one (sorted as the smallest by page.js)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def cell(text, order=None, best: bool = False, label: bool = False, title: str = "") -> str:
    """One ``<td>``: ``text`` escaped; ``order`` its sort value; ``best`` marks (bold) the column's best value;
    ``title`` the text shown on hover (e.g. a published number's full source)."""
    attrs = f' data-order="{number_attr(order)}"' if order is not None else ""
    attrs += f' title="{esc(title)}"' if title else ""
    classes = " ".join(c for c, on in (("best", best and str(text) != MISSING), ("label", label)) if on)
    attrs += f' class="{classes}"' if classes else ""
    return f"<td{attrs}>{esc(text)}</td>"


def table_html(headers: list[str], rows: list[str], table_id: str = "", classes: str = "dt",
               caption: str = "", attrs: str = "") -> str:
    """A table from its header texts and its rows (each a ``<tr>...</tr>`` string)."""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (f'<table{ident} class="{classes}"{attrs}>{cap}<thead><tr>{head}</tr></thead><tbody>\n'
            + "\n".join(rows) + "\n</tbody></table>")


def section_table_html(table: Table, order: pd.DataFrame | None = None, table_id: str = "",
                       row_attrs: list[str] | None = None, classes: str = "dt") -> str:
    """A report :class:`Table` (display strings, bold mask) as HTML; ``order``: the numbers behind its value
    columns (same rows, columns by header) used as sort values; ``row_attrs``: extra attributes per row."""
    frame = table.frame
    rows = []
    for i in range(len(frame)):
        cells = []
        for j, column in enumerate(frame.columns):
            text = frame.iat[i, j]
            best = table.bold is not None and bool(table.bold.iat[i, j])
            value = order[column].iat[i] if order is not None and column in order.columns else None
            cells.append(cell(text, value, best, j < table.label_columns))
        extra = f" {row_attrs[i]}" if row_attrs else ""
        rows.append(f"<tr{extra}>{''.join(cells)}</tr>")
    return table_html([str(c) for c in frame.columns], rows, table_id, classes, table.title)


def intro_html(text: str) -> str:
    """A section intro (markdown, as in the ``.md`` files) as HTML, by the ``markdown`` package."""
    return markdown.markdown(text, output_format="html")


def plain(value):
    """``value`` with NaN / inf floats as None and numpy scalars as Python ones, at any depth (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


LT = "\\u003c"


def json_script(data, element_id: str) -> str:
    """``data`` as a ``<script type="application/json">`` element; every ``<`` written as ``\\u003c`` so that no
    text in the data can end the element (JSON.parse reads it back unchanged). NaN is written as null."""
    text = json.dumps(plain(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    return f'<script type="application/json" id="{esc(element_id)}">{text.replace("<", LT)}</script>'

"""The libraries the page embeds, read from their installed Python packages, so that the page works offline
from ``file://`` with nothing beside it:

- plotly.js, from the ``plotly`` package (``plotly.offline.get_plotlyjs()``, the bundle ``include_plotlyjs=True``
  inlines): interactive figures (hover, zoom, legend toggles) drawn from figure JSON built in Python.
- DataTables, from the ``itables`` package (its offline bundle ``dt_bundle.js`` / ``.css``: DataTables 2 with
  jQuery): sorting, searching and paging of the page's HTML tables. The bundle is an ES module, so it is
  embedded base64-encoded and imported from a ``blob:`` URL, as itables' own offline notebook mode does.
- ``static/page.js`` and ``static/page.css``: bench's glue (filters, the record panel, the comparison and
  per-class views, rendering figures when they come into view) and styles.

Every asset is read as bytes and embedded unchanged, so the page's bytes depend only on the records and these
pinned package versions.
"""

from __future__ import annotations

import base64
import re
from functools import cache
from importlib.metadata import version
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"


@cache
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


@cache
def datatables_bundle() -> tuple[str, str]:
    """(base64 of the DataTables ES module bundle, its CSS) shipped by itables."""
    from itables import options

    bundle = Path(options.dt_bundle)
    return base64.b64encode(bundle.read_bytes()).decode("ascii"), bundle.with_suffix(".css").read_text("utf-8")


def static_text(name: str) -> str:
    return (STATIC / name).read_text("utf-8")


def library_versions() -> dict[str, str]:
    """The versions of the embedded libraries' packages (shown in the page's footer)."""
    return {name: version(name) for name in ("plotly", "itables")}


SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)


def script(text: str, **attrs: str) -> str:
    """``text`` as an inline ``<script>`` element; a ``</script`` inside it (in a JavaScript string or regular
    expression, where ``<\\/`` means the same) is escaped so that it cannot end the element early."""
    attributes = "".join(f' {key.replace("_", "-")}="{value}"' for key, value in attrs.items())
    body = SCRIPT_END.sub(r"<\\/\1", text)
    return f"<script{attributes}>{body}</script>"

"""The report's interactive HTML page (``index.html``): one self-contained file, offline, deterministic, built
from the same sections and records as the markdown (no number is computed twice), in layers:

``markup``        HTML building blocks: escaped text, tables with sort values and best marks, JSON data
``assets``        the embedded libraries (plotly.js from ``plotly``, DataTables from ``itables``) and static/
``figures``       plotly figure JSON from the sections' frames
``leaderboards``  per dataset and setting, from the results, cost, published and zsl sections
``payload``       the data the page's scripts read: records, per-class tables, comparisons, figures
``document``      the page, and :func:`write_page`

``static/page.js`` is the page's own script (filters, record panel, comparison, per-class AP, records table,
figures drawn when scrolled into view); ``static/page.css`` its styles.
"""

from bench.report.page.document import page_html, write_page

__all__ = ["page_html", "write_page"]

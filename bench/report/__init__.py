"""Records -> pandas -> tables (markdown, LaTeX, CSV) and plots (PNG, PDF), in layers:

``format``   numbers and tables to text (no records)
``model``    records read into :class:`Records`, the row key, cell order, aggregation over seeds
``tables`` ``zsl`` ``significance`` ``gaps`` ``cost`` ``averages`` ``published``   the report's sections, each
             from a :class:`Records` (``published``: from our aggregated numbers and the published-results file)
``style``    series styles, log-axis ticks, label spreading (no records)
``plots``    mAP vs label ratio and vs K, ablation variants, accuracy vs cost (matplotlib, off-screen)
``sources``  where the numbers came from (record counts, runs, commits) and how to read them, as text
``frame``    :func:`records_frame`: the records as one DataFrame, for notebooks
``page``     the interactive HTML page (``index.html``), from the sections and records (a subpackage)
``build``    every section and plot, the page, and the index that links them

Each layer imports only those above it in this list. The names below are the package's public surface.
"""

from bench.report.build import FORMATS, write_report
from bench.report.frame import records_frame
from bench.report.model import RecordError, Records, find_records, load_records, read_records
from bench.report.tables import summary_table

__all__ = ["FORMATS", "RecordError", "Records", "find_records", "load_records", "read_records", "records_frame",
           "summary_table", "write_report"]

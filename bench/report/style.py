"""How the report's figures look, apart from what they show: a line style per series and log-axis ticks
whose labels never collide. No records here; :mod:`bench.report.plots` (and any later plot, e.g. mAP vs
shots) draws with these.

Series styles: ``len(COLOURS) * len(LINESTYLES)`` = 40 distinct (colour, line style) pairs. A series keeps
the colour its name hashes to (crc32, the same in every figure and every Python process) unless a name
earlier in sort order took it; then it moves to the next free colour, and once all ten colours are in use,
to the next line style. So one figure never shows two series with the same colour and line style (up to
40 series), the first ten series are all solid, and a method mostly keeps its colour from figure to figure.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

# tab10, written out so that the palette does not change with a matplotlib style or version
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


@dataclass(frozen=True)
class SeriesStyle:
    """A series' look; ``kwargs()`` is what ``Axes.plot`` takes."""

    color: str
    linestyle: str
    marker: str

    def kwargs(self) -> dict:
        return {"color": self.color, "linestyle": self.linestyle, "marker": self.marker}


def series_styles(names) -> dict[str, SeriesStyle]:
    """A distinct (colour, line style) per name, and a marker, for the series of one figure (see the
    module docstring). Depends only on the set of names (not their order); past 40 names pairs repeat."""
    n_colours = len(COLOURS)
    taken: set[tuple[int, int]] = set()
    styles = {}
    for name in sorted(set(names)):
        first = zlib.crc32(name.encode()) % n_colours
        free = [(level, (first + step) % n_colours) for level in range(len(LINESTYLES)) for step in range(n_colours)
                if (level, (first + step) % n_colours) not in taken]
        level, colour = free[0] if free else (0, first)
        taken.add((level, colour))
        styles[name] = SeriesStyle(COLOURS[colour], LINESTYLES[level], MARKERS[(colour + 3 * level) % len(MARKERS)])
    return styles


def log_ticks(lo: float, hi: float) -> list[float]:
    """Major tick values for a log axis from ``lo`` to ``hi`` (> 0): the powers of ten inside when there
    are at least two, else the 1-2-5 steps inside (at least two values whenever the range spans a
    factor of 2.5)."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for steps in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        ticks = [s * 10.0 ** d for d in decades for s in steps if lo <= s * 10.0 ** d <= hi]
        if len(ticks) >= 2:
            return ticks
    return ticks


def tick_text(value: float) -> str:
    """A tick label without exponents for everyday magnitudes: ``0.01``, ``2``, ``500``, ``2k``, ``10k``."""
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def boxes_overlap(a, b, pad: float = 0.0) -> bool:
    """Whether two display-space boxes (``Bbox``) overlap, each grown by ``pad`` pixels."""
    return a.x0 - pad < b.x1 and b.x0 - pad < a.x1 and a.y0 - pad < b.y1 and b.y0 - pad < a.y1


def spread(values, min_gap: float) -> np.ndarray:
    """``values`` moved apart as little as possible (pool-adjacent-violators on the sorted values) so that
    neighbours are at least ``min_gap`` apart; returned in the input order. Used to stack direct labels."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    # positions = offset + k * min_gap; solve for offsets that are non-decreasing and closest to the wanted ones
    wanted = values[order] - min_gap * np.arange(len(values))
    blocks: list[list[float]] = []  # [mean, count]
    for value in wanted:
        blocks.append([value, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, c2), (m1, c1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    offsets = np.concatenate([[m] * c for m, c in blocks]) if blocks else np.array([])
    out = np.empty_like(values)
    out[order] = offsets + min_gap * np.arange(len(values))
    return out

"""Wall seconds per named phase of this process: what ``bench run`` writes to ``<run>/timings.json``
(``phases``) and ``benchmarks/bench_scale.py`` reads to see how each phase grows with the data.

A phase is timed where the work happens (``with timed("read annotations"): ...``); repeated phases add up.
Phases may nest (a cell's feature extraction happens inside its preparation), so they are not summed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

SECONDS: dict[str, float] = {}  # phase -> wall seconds in this process
COUNTS: dict[str, int] = {}  # phase -> how many times it ran


@contextmanager
def timed(phase: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        SECONDS[phase] = SECONDS.get(phase, 0.0) + time.perf_counter() - start
        COUNTS[phase] = COUNTS.get(phase, 0) + 1


def snapshot() -> dict[str, dict]:
    """Every phase so far: ``{phase: {"seconds": s, "count": n}}`` (seconds rounded to ms)."""
    return {name: {"seconds": round(SECONDS[name], 3), "count": COUNTS[name]} for name in sorted(SECONDS)}

"""Comma-list options (``--ratios``, ``--seeds``, ``--shots``, ``--settings``, ``--format``) and the config values
they override (``sweep.ratios``, ...), checked where they are read.

An empty list, a value that is not a number, one out of range or one given twice ends in one line naming
the option or config key and what it takes -- never a silent fall-back to the config (``--ratios ,`` used to
run the config's ratios) or a library's message that names neither (``--seeds -1`` ended in numpy's "Seed
must be between 0 and 2**32 - 1"). Parsed after argparse, not as argparse ``type=`` callables, so the
message is bench's one line, not argparse's usage block.
"""

from __future__ import annotations

from bench.errors import UsageError

SEED_MAX = 2**32 - 1  # numpy's seed range (np.random.default_rng, mmengine's set_random_seed)
WHAT = {
    "ratios": "label ratios in (0, 1], e.g. 0.1,0.5,0.9",
    "seeds": f"whole-number seeds in 0 .. {SEED_MAX}, e.g. 1,2,3",
    "shots": "shot counts K >= 1 (images per class), e.g. 1,2,4,8,16",
    "settings": "settings among zero-shot, partial, fewshot, zsl",
    "format": "report formats among md, tex, csv, png, pdf, html",
}


def comma_list(option: str, values, what: str) -> list:
    """``values`` (comma-separated text from the command line, or a config list / scalar) as a non-empty list
    of items without repeats; blank items are dropped (``0.1,,0.5``)."""
    if isinstance(values, str):
        items = [x.strip() for x in values.split(",") if x.strip()]
    else:
        items = list(values) if isinstance(values, (list, tuple)) else [values]
    if not items:
        raise UsageError(f"{option} is empty ({values!r}); give {WHAT[what]}")
    return items


def _unique(option: str, values: list) -> list:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise UsageError(f"{option} lists {', '.join(map(str, repeated))} more than once")
    return values


def _number(option: str, item, rule: str, integer: bool):
    """``item`` as a number (a whole one with ``integer``), else a UsageError: ``<option>: <rule>, got <item>``."""
    try:
        value = float(item) if not isinstance(item, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None or (integer and value != int(value)):
        raise UsageError(f"{option}: {rule}, got {item!r}")
    return int(value) if integer else value


def ratios(option: str, values) -> list[float]:
    rule = "label ratio must be in (0, 1]"
    out = [_number(option, x, rule, integer=False) for x in comma_list(option, values, "ratios")]
    for r in out:
        if not 0.0 < r <= 1.0:
            raise UsageError(f"{option}: {rule}, got {r:g}; give {WHAT['ratios']}")
    return _unique(option, out)


def seeds(option: str, values) -> list[int]:
    rule = f"seeds must be whole numbers in 0 .. {SEED_MAX} (numpy's seed range)"
    out = [_number(option, x, rule, integer=True) for x in comma_list(option, values, "seeds")]
    for s in out:
        if not 0 <= s <= SEED_MAX:
            raise UsageError(f"{option}: {rule}, got {s}")
    return _unique(option, out)


def shots(option: str, values) -> list[int]:
    rule = "shots must be a positive integer (images per class)"
    out = [_number(option, x, rule, integer=True) for x in comma_list(option, values, "shots")]
    for k in out:
        if k < 1:
            raise UsageError(f"{option}: {rule}, got {k}")
    return _unique(option, out)


def choices(option: str, values, valid: tuple[str, ...], what: str, noun: str | None = None) -> list[str]:
    """Names among ``valid``; an unknown one is ``unknown <noun or option> <names>; valid: ...``."""
    out = [str(x) for x in comma_list(option, values, what)]
    unknown = [x for x in out if x not in valid]
    if unknown:
        raise UsageError(f"unknown {noun or option} {', '.join(unknown)}; valid: {', '.join(valid)}")
    return _unique(option, out)


def at_least(option: str, value: int | None, low: int) -> int | None:
    """An integer option that must be >= ``low`` (None: not given)."""
    if value is not None and value < low:
        raise UsageError(f"{option} must be at least {low}, got {value}")
    return value

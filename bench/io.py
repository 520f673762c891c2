"""Small file helpers every writer shares: atomic writes (temp file + rename, so a reader sees the old
file or the whole new one, never half of it), JSON records in and out, and content hashes of plain data.

Used by the feature cache, cell records, score fusion, diagnostics and the generation cache.
Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def sha256_json(obj) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys; non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """A hidden temp path beside ``path`` to write to; renamed onto ``path`` when the block ends without
    error, removed when it raises. ``suffix`` ends the temp name (``np.savez`` appends ``.npz`` otherwise)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` via a temp file (flushed to disk) + rename. An OSError (a full disk, a read-only
    folder) names ``path``, not the temp file."""
    try:
        with atomic_path(Path(path)) as tmp, open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if exc.filename is not None and not os.path.basename(exc.filename).startswith(f".{Path(path).name}."):
            raise  # names another file already (e.g. the folder that could not be made)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def write_json(path: Path, obj, indent: int | None = 1) -> None:
    """``obj`` as JSON (non-JSON values by ``str``), written atomically."""
    atomic_write_text(Path(path), json.dumps(obj, indent=indent, default=str))


def read_json(path: str | Path):
    """The JSON value in ``path`` (OSError / json.JSONDecodeError as raised)."""
    return json.loads(Path(path).read_text())

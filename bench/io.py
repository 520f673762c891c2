"""Small file helpers every writer shares: atomic writes (temp file + rename, so a reader sees the old
file or the whole new one, never half of it), JSON records in and out, and content hashes of plain data.

Used by the feature cache, cell records, score fusion, diagnostics and the generation cache.
Standard library only.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WRITE_FAULTS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM)


def is_write_fault(exc: BaseException) -> bool:
    """A fault on the user's side of a write: a full disk or quota, a read-only or unwritable folder."""
    return isinstance(exc, OSError) and exc.errno in WRITE_FAULTS


def sha256_json(obj) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys; non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """A hidden temp path beside ``path`` to write to; renamed onto ``path`` when the block ends without
    error, removed when it raises. ``suffix`` ends the temp name (``np.savez`` appends ``.npz`` otherwise).
    An OSError of the temp file, or one naming no file (a write on a full disk), is raised naming ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is not None and Path(exc.filename).name != tmp.name:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        if os.path.lexists(tmp):  # (unlinking a missing file on a read-only file system fails with EROFS)
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` via a temp file (flushed to disk) + rename (an OSError names ``path``)."""
    with atomic_path(Path(path)) as tmp, open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_json(path: Path, obj, indent: int | None = 1) -> None:
    """``obj`` as JSON (non-JSON values by ``str``), written atomically."""
    atomic_write_text(Path(path), json.dumps(obj, indent=indent, default=str))


def read_json(path: str | Path):
    """The JSON value in ``path`` (OSError / json.JSONDecodeError as raised)."""
    return json.loads(Path(path).read_text())

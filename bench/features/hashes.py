"""The content hash of each image file (sha1), memoised by (path, size, mtime) in a small sqlite table.

The feature cache keys features by these hashes, and a record's data key (:mod:`bench.cell.datakey`)
is made of them, so image bytes are read once for both. No torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from pathlib import Path

from bench.data.base import DataError

log = logging.getLogger("bench")


class FileHashes:
    """sha1 of file contents, memoised by (path, size, mtime) in a small sqlite table."""

    def __init__(self, db_path: Path):
        db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = self._open(db_path)
        except sqlite3.OperationalError as exc:  # e.g. a read-only folder without an index yet: no memo
            log.debug("image hashes not memoised: %s (%s)", db_path, exc)
            self.db = self._open(Path(":memory:"))
        except sqlite3.DatabaseError as exc:  # not a database, or damaged: it is only a memo
            log.warning("feature cache index %s is unreadable (%s); recreating it", db_path, exc)
            db_path.unlink()
            self.db = self._open(db_path)
        self._memo: dict[str, tuple] = {}  # path -> (size, mtime, sha1) read or written by this process

    @staticmethod
    def _open(db_path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(db_path, timeout=60)
        if db.execute("SELECT name FROM sqlite_master WHERE name='h'").fetchone() is None:
            db.execute("CREATE TABLE IF NOT EXISTS h (path TEXT PRIMARY KEY, size INT, mtime INT, sha1 TEXT)")
        db.execute("SELECT count(*) FROM h").fetchone()  # reads the table: a damaged file fails here
        return db

    def __call__(self, paths: list[str], progress: bool = True) -> list[str]:
        from tqdm import tqdm

        wanted = [p for p in paths if p not in self._memo]
        self._memo.update(_lookup(self.db, wanted))  # 900 paths per query: one SELECT per path was most of the cost
        out = []
        fresh = []
        for path in tqdm(paths, desc="hashing images", disable=not progress or len(paths) < 2000, leave=False):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise DataError(f"missing image: {path}") from None
            size, mtime, sha1 = self._memo.get(path, (None, None, None))
            if size == st.st_size and mtime == st.st_mtime_ns:
                out.append(sha1)
                continue
            with open(path, "rb") as f:
                digest = hashlib.sha1(f.read()).hexdigest()
            fresh.append((path, st.st_size, st.st_mtime_ns, digest))
            self._memo[path] = (st.st_size, st.st_mtime_ns, digest)
            out.append(digest)
        if fresh:
            try:
                with self.db:
                    self.db.executemany("INSERT OR REPLACE INTO h VALUES (?, ?, ?, ?)", fresh)
            except sqlite3.OperationalError as exc:  # read-only or full disk: the memo is an optimisation
                log.debug("not memoising %d image hashes: %s", len(fresh), exc)
        return out


def _lookup(db: sqlite3.Connection, paths: list[str]) -> dict[str, tuple]:
    """path -> (size, mtime, sha1) of the memo rows of ``paths``, 900 per statement (sqlite's parameter bound)."""
    memo: dict[str, tuple] = {}
    for start in range(0, len(paths), 900):
        chunk = paths[start:start + 900]
        rows = db.execute(f"SELECT path, size, mtime, sha1 FROM h WHERE path IN ({','.join('?' * len(chunk))})", chunk)
        memo.update((row[0], row[1:]) for row in rows)
    return memo


def memoised_hashes(db_path: Path, paths: list[str]) -> list[str | None]:
    """Each file's sha1 as the memo holds it for the file's current size and mtime, else None (a file not hashed
    since it last changed, or missing). Reads no image bytes and writes nothing (the memo is opened read-only):
    what ``bench status`` can say about the feature cache without hashing a 100k-image split again."""
    if not Path(db_path).is_file():
        return [None] * len(paths)
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error:
        return [None] * len(paths)
    try:
        memo = _lookup(db, paths)
    except sqlite3.Error:  # damaged: a run recreates it (FileHashes)
        return [None] * len(paths)
    finally:
        db.close()
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append(None)
            continue
        size, mtime, sha1 = memo.get(path, (None, None, None))
        out.append(sha1 if size == st.st_size and mtime == st.st_mtime_ns else None)
    return out


"""Which cached entry already holds an image's features: reuse across image sets that overlap.

Feature-cache entries are keyed by a whole image set, so two sets that share images (T2I-PAL's
x1 / x2 / x4 generated sets, where each contains the one before; a few-shot subset; a set diagnostics
reads again) would each be encoded in full. This index maps (family, image content hash) to the
(entry, row) that holds it, where a family is everything but the image set that changes the
bytes: the backbone's cache identity and the feature kind (plain test transform, one view only:
an augmented view depends on the image's position in its set, so it is never shared). A new entry
copies the rows an earlier one already holds and encodes only the rest.

One small sqlite table beside the feature entries; rows of an entry that no longer exists (a
cleaned cache) are ignored and dropped.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from bench.io import sha256_json

SCHEMA = "CREATE TABLE IF NOT EXISTS r (family TEXT, sha1 TEXT, entry TEXT, row INT, PRIMARY KEY (family, sha1))"


def family_key(version: int, backbone_identity: dict, kind: str) -> str:
    """What, besides the image, decides a one-view, unaugmented feature row's bytes."""
    return sha256_json({"version": version, "backbone": backbone_identity, "kind": kind})


class RowIndex:
    """(family, image sha1) -> (entry key, row) of completed feature-cache entries."""

    def __init__(self, db_path: Path):
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(db_path, timeout=60)
        self.db.execute(SCHEMA)

    def add(self, family: str, entry: str, hashes: list[str]) -> None:
        """Record that row i of ``entry`` holds the image with content hash ``hashes[i]`` (first holder kept)."""
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO r VALUES (?, ?, ?, ?)",
                                [(family, h, entry, i) for i, h in enumerate(hashes)])

    def find(self, family: str, hashes: list[str], is_complete) -> dict[str, tuple[str, int]]:
        """sha1 -> (entry, row) for the ``hashes`` some complete entry of ``family`` holds."""
        wanted = set(hashes)
        found, gone = {}, set()
        for sha1, entry, row in self.db.execute("SELECT sha1, entry, row FROM r WHERE family=?", (family,)):
            if sha1 not in wanted or entry in gone:
                continue
            if not is_complete(entry):
                gone.add(entry)
                continue
            found[sha1] = (entry, int(row))
        if gone:
            with self.db:
                self.db.executemany("DELETE FROM r WHERE entry=?", [(e,) for e in gone])
        return found


class RowSource:
    """For one image set and the kinds to extract: which rows can be copied from other entries, and
    their values. A row is copied only when every kind has it (else the encoder runs on it anyway,
    and its outputs serve every kind)."""

    def __init__(self, hashes: list[str], donors: dict[str, dict[str, tuple[str, int]]], read):
        kinds = list(donors)
        self.copy = np.array([bool(kinds) and all(h in donors[k] for k in kinds) for h in hashes], dtype=bool)
        self.hashes, self.donors, self.read = hashes, donors, read

    def values(self, kind: str, rows: np.ndarray) -> np.ndarray:
        """[len(rows), ...] float32 values of ``kind`` for copied image rows ``rows`` (read from their holders)."""
        where = [self.donors[kind][self.hashes[r]] for r in rows]
        out = None
        for entry in dict.fromkeys(e for e, _ in where):
            picked = [i for i, (e, _) in enumerate(where) if e == entry]
            source = self.read(entry)  # [1, N, ...] memmap
            values = np.asarray(source[0, [where[i][1] for i in picked]], dtype=np.float32)
            if out is None:
                out = np.empty((len(rows), *values.shape[1:]), np.float32)
            out[picked] = values
        return out

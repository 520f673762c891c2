"""Cell records and the test scores saved beside them: written by the runner and score fusion, read
by fusion and ``bench report``.

Pure numpy: no torch, no pandas.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from bench.io import atomic_path

RECORD_VERSION = 1  # the layout of a cell record; bump when a field changes meaning


def backbone_spec(record: dict) -> dict:
    """The record's backbone spec (``backbone.spec``, else its config's ``backbone``); ``{}`` when it has
    neither (e.g. a diagnostics record without a backbone)."""
    return (record.get("backbone") or {}).get("spec") or (record.get("config") or {}).get("backbone") or {}


def scores_path(record_path: Path) -> Path:
    return record_path.with_suffix(".scores.npz")


def save_scores(record_path: Path, scores: dict[str, np.ndarray], test) -> None:
    """Every score matrix of a cell on its test split (``test``: its ``labels`` and ``image_ids``), for
    fusion and significance tests, atomically. Written before the record, so a record always has its
    scores beside it."""
    with atomic_path(scores_path(record_path), suffix=".npz") as tmp:
        np.savez_compressed(tmp, labels=test.labels, image_ids=np.array([str(i) for i in test.image_ids]),
                            **{f"score__{name}": s.astype(np.float32) for name, s in scores.items()})


class ScoresError(ValueError):
    """A scores file that is missing, damaged or lacks an array; the message names it (``path``, ``reason``)."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"scores file {path} is {reason}")
        self.path, self.reason = str(path), reason


def saved_scores(record_path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The record's main ("score") matrix [N, C], test labels [N, C] and image ids (None if not saved),
    from the scores file beside it, opened once. :class:`ScoresError` naming the file when it cannot be read."""
    path = scores_path(Path(record_path))
    try:
        with np.load(path) as data:
            ids = data["image_ids"] if "image_ids" in data.files else None
            return data["score__score"], data["labels"], ids
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        reason = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable ({type(exc).__name__}: {exc})"
        raise ScoresError(path, reason) from exc


def same_test_set(labels: np.ndarray, ids: np.ndarray | None, other_labels: np.ndarray,
                  other_ids: np.ndarray | None) -> bool:
    """Whether two saved test sets are the same: equal labels [N, C], and equal image ids in the same
    order when both were saved."""
    return labels.shape == other_labels.shape and np.array_equal(labels, other_labels) and (
        ids is None or other_ids is None or np.array_equal(ids, other_ids))

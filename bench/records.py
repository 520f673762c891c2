"""Cell records and the test scores saved beside them: written by the runner and score fusion, read
by fusion and ``bench report``.

Pure numpy: no torch, no pandas.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from bench.errors import RecordError, ScoresError
from bench.io import atomic_path

RECORD_VERSION = 1  # the layout of a cell record; bump when a field changes meaning


NUMBER, TEXT, WHOLE = "number", "text", "whole number"
# the cell record contract (DESIGN "Result records"): field -> (kind, may it be null); checked whenever a record
# is read (bench report, a rerun deciding what is done, fusion), so a bad one is named and left out, never
# half-used (a text mAP ended in a pandas traceback in the report)
CELL_FIELDS = {
    "method": (TEXT, False), "dataset": (TEXT, False), "setting": (TEXT, False), "status": (TEXT, False),
    "seed": (WHOLE, False), "label_ratio": (NUMBER, True), "shots": (WHOLE, True), "config_hash": (TEXT, False),
    "mAP": (NUMBER, True), "n_test": (WHOLE, True), "n_trainable_params": (WHOLE, True),
}
OPTIONAL = {"shots", "n_test", "n_trainable_params", "mAP"}
OBJECTS = ("per_class_AP", "seconds", "config", "backbone", "train_data", "peak_memory_mb", "f1", "branches")


def _kind_ok(kind: str, value) -> bool:
    if isinstance(value, bool):
        return False
    if kind == TEXT:
        return isinstance(value, str)
    if kind == WHOLE:
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


def check_record(record) -> None:
    """A cell record against :data:`CELL_FIELDS`: a JSON object, every required field present with its kind
    (numbers finite), ``status`` "ok" or "failed", an ok record's ``mAP`` a number, the per-class APs and
    seconds numbers or null, the nested sections objects. :class:`RecordError` naming the first bad field."""
    if not isinstance(record, dict):
        raise RecordError(f"a record is a JSON object, got {type(record).__name__}")
    for name, (kind, nullable) in CELL_FIELDS.items():
        if name not in record:
            if name in OPTIONAL:
                continue
            raise RecordError(f"field {name!r} is missing")
        value = record[name]
        if not (value is None and nullable) and not _kind_ok(kind, value):
            raise RecordError(f"field {name!r} is {value!r}, not a {'finite ' if kind == NUMBER else ''}{kind}")
    if record["status"] not in ("ok", "failed"):
        raise RecordError(f"field 'status' is {record['status']!r}, not 'ok' or 'failed'")
    if record["status"] == "ok" and not _kind_ok(NUMBER, record.get("mAP")):
        raise RecordError(f"field 'mAP' of a finished cell is {record.get('mAP')!r}, not a finite number")
    for name in OBJECTS:
        if record.get(name) is not None and not isinstance(record[name], dict):
            raise RecordError(f"field {name!r} is {type(record[name]).__name__}, not an object")
    for name in ("per_class_AP", "seconds"):
        for key, value in (record.get(name) or {}).items():
            if value is not None and not _kind_ok(NUMBER, value):
                raise RecordError(f"field {name}.{key} is {value!r}, not a finite number")


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


def saved_scores(record_path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The record's main ("score") matrix [N, C], test labels [N, C] and image ids (None if not saved),
    from the scores file beside it, opened once. :class:`ScoresError` naming the file when it cannot be read."""
    path = scores_path(Path(record_path))
    try:
        with np.load(path, allow_pickle=False) as data:  # plain arrays only: a scores file never unpickles
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

"""Cell records and what is saved beside them: the test scores, written by the runner and score fusion and
read by fusion and ``bench report``, and the bootstrap resamples of those scores' mAP, computed once when
the cell finishes and read by the report's significance tests (:func:`record_resamples`).

Pure numpy: no torch, no pandas.
"""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
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


def save_scores(record_path: Path, scores: dict[str, np.ndarray], test, resamples: bool = True) -> None:
    """Every score matrix of a cell on its test split (``test``: its ``labels`` and ``image_ids``), for
    fusion and significance tests, atomically. Written before the record, so a record always has its
    scores beside it. ``resamples``: then the bootstrap resamples of the main matrix's mAP
    (:func:`record_resamples` with the report's defaults), so ``bench report`` reads them instead of
    resampling every record of a full grid."""
    from bench.phases import timed

    with atomic_path(scores_path(record_path), suffix=".npz") as tmp:
        np.savez_compressed(tmp, labels=test.labels, image_ids=np.array([str(i) for i in test.image_ids]),
                            **{f"score__{name}": s.astype(np.float32) for name, s in scores.items()})
    if resamples:
        with timed("bootstrap resamples"):
            record_resamples(record_path)


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


RESAMPLES_VERSION = 1  # the layout of a resamples file; bump when the bootstrap changes what it stores
N_BOOT, BOOT_SEED = 1000, 0  # what a finished cell precomputes: the defaults of ``bench report``


@dataclass(frozen=True)
class Resamples:
    """A record's mAP on its whole test set (``observed``) and on each bootstrap resample of the test images
    (``values`` [n_boot], :func:`bench.analysis.stats.map_resamples`), with digests of the test labels and
    image ids they were computed on (two records' resamples pair up only when those match)."""

    observed: float
    values: np.ndarray
    labels_digest: str
    ids_digest: str  # "" when the scores file holds no image ids

    def same_test_set(self, other: Resamples) -> bool:
        """Equal labels, and equal image ids in the same order when both were saved (:func:`same_test_set`)."""
        return self.labels_digest == other.labels_digest and (
            not self.ids_digest or not other.ids_digest or self.ids_digest == other.ids_digest)


def resamples_path(record_path: Path) -> Path:
    return Path(record_path).with_suffix(".resamples.npz")


def _digest(array: np.ndarray | None) -> str:
    if array is None:
        return ""
    array = np.ascontiguousarray(array)
    head = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(head + (array.astype(str).tobytes() if array.dtype.kind in "OU" else array.tobytes())
                          ).hexdigest()


def record_resamples(record_path: str | Path, n_boot: int = N_BOOT, seed: int = BOOT_SEED,
                     store: bool = True) -> Resamples:
    """The bootstrap resamples of a record's saved test scores, read from ``<record>.resamples.npz`` when that
    file was made from the scores file as it is now (its size and mtime) with the same ``n_boot`` and
    ``seed``; else computed and, with ``store``, written there (a read-only folder is no error: computed each
    time). The scores of a finished cell do not change, so the report pays the bootstrap once per record.
    :class:`ScoresError` when the scores file is missing or unreadable."""
    from bench.analysis.stats import map_resamples

    scores_file, side = scores_path(Path(record_path)), resamples_path(Path(record_path))
    try:
        stat = os.stat(scores_file)
    except OSError as exc:
        raise ScoresError(scores_file, "missing" if isinstance(exc, FileNotFoundError) else
                          f"unreadable ({type(exc).__name__}: {exc})") from exc
    stamp = [RESAMPLES_VERSION, stat.st_size, stat.st_mtime_ns, n_boot, seed]
    try:
        with np.load(side) as stored:
            if stored["stamp"].tolist() == stamp:
                return Resamples(float(stored["observed"]), stored["values"], str(stored["labels_digest"]),
                                 str(stored["ids_digest"]))
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, zlib.error):
        pass  # missing, stale or damaged: computed again below
    scores, labels, ids = saved_scores(record_path)
    observed, values = map_resamples(scores, labels, n_boot, seed)
    found = Resamples(observed, values, _digest(labels), _digest(ids))
    if store:
        store_resamples(record_path, found, n_boot, seed)
    return found


def store_resamples(record_path: str | Path, found: Resamples, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> None:
    """Write ``found`` beside the record, stamped with its scores file as it is now: the resamples of that
    file's content (:func:`record_resamples` computes them; a copy of a scores file has its source's). A
    read-only or full work dir is no error: the report recomputes them next time."""
    stat = os.stat(scores_path(Path(record_path)))
    stamp = [RESAMPLES_VERSION, stat.st_size, stat.st_mtime_ns, n_boot, seed]
    try:
        with atomic_path(resamples_path(Path(record_path)), suffix=".npz") as tmp:
            np.savez(tmp, stamp=np.array(stamp, np.int64), observed=np.float64(found.observed), values=found.values,
                     labels_digest=np.array(found.labels_digest), ids_digest=np.array(found.ids_digest))
    except OSError:
        pass

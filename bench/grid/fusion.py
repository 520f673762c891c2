"""Score fusion of two finished cells: the TaI-DPT paper's "TaI-DPT + DualCoOp" (methods.md sec. 4).

TaI-DPT ``ensemble_score.py:74-79``: each score matrix is min-max normalised *globally* (one min and
one max over all images and classes, not per class), then ``s = (1 - r) * A + r * B`` with A the
TaI-DPT scores (its merged 0.5 global + 0.5 local score, ``ensemble_score.py:60``) and B the other
method's (DualCoOp: r = 0.9, the ``scripts/ensemble.sh`` example; also the commented-out
``partial_TaI_merge_rate`` at ``train_caption.py:93``).

A fused result is a *derived record*: the same JSON shape as a runner record (so ``bench report``
lists it), with ``derived_from`` naming both source records and their config hashes, and a
scores file beside it. Nothing is trained or re-evaluated: only the saved test scores
(:func:`bench.records.saved_scores`) are read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bench.analysis.metrics import f1_block, multilabel_metrics
from bench.cell.plan import Cell
from bench.errors import RecordError, UsageError
from bench.io import read_json, sha256_json, write_json
from bench.provenance import environment
from bench.records import (
    RECORD_VERSION,
    backbone_spec,
    check_record,
    same_test_set,
    save_scores,
    saved_scores,
    scores_path,
)

NORMALISATION = "global min-max"


def minmax_global(scores: np.ndarray) -> np.ndarray:
    """(s - min) / (max - min) over the whole matrix (``ensemble_score.py:76-77``); a constant matrix -> 0."""
    scores = np.asarray(scores, dtype=np.float64)
    low, high = float(scores.min()), float(scores.max())
    if high == low:
        return np.zeros_like(scores)
    return (scores - low) / (high - low)


def fuse_scores(scores_a: np.ndarray, scores_b: np.ndarray, rate: float) -> np.ndarray:
    """(1 - rate) * norm(A) + rate * norm(B), both globally min-max normalised ([N, C] each)."""
    if scores_a.shape != scores_b.shape:
        raise ValueError(f"score matrices differ in shape: {scores_a.shape} vs {scores_b.shape}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"fusion rate must be in [0, 1], got {rate}")
    return (1.0 - rate) * minmax_global(scores_a) + rate * minmax_global(scores_b)


def _read_record(path: Path) -> dict:
    try:
        record = read_json(path)
        check_record(record)
    except (OSError, json.JSONDecodeError, RecordError) as exc:
        raise RecordError(f"cannot read record {path}: {exc}") from exc
    if record.get("status") != "ok":
        raise RecordError(f"record {path} has status {record.get('status')!r}; only finished ('ok') cells fuse")
    if not scores_path(Path(path)).is_file():
        raise RecordError(f"no saved test scores beside {path} (expected {scores_path(Path(path))}); "
                                "re-run that cell with --force to write them")
    return record


@dataclass(frozen=True)
class SourceCell:
    """A finished cell to fuse: its record file, the record, and what its scores file holds (the main
    score matrix [N, C], the test labels [N, C], the image ids or None)."""

    path: Path
    record: dict
    scores: np.ndarray
    labels: np.ndarray
    image_ids: np.ndarray | None


def _load(path: Path, record: dict) -> SourceCell:
    scores, labels, image_ids = saved_scores(path)
    return SourceCell(path, record, scores, labels, image_ids)


def _source(path: Path, record: dict) -> dict:
    return {"path": str(path), "method": record["method"], "setting": record["setting"],
            "label_ratio": record.get("label_ratio"), "shots": record.get("shots"), "seed": record["seed"],
            "config_hash": record["config_hash"], "data_key": record.get("data_key")}


def fuse_records(record_a: Path, record_b: Path, rate: float, out_record: Path, name: str, *,
                 pairing: str | None = None) -> Path:
    """Fuse two cells' saved "score" matrices and write a derived record (and its scores) at ``out_record``.

    ``record_a`` is weighted ``1 - rate`` (TaI-DPT), ``record_b`` ``rate`` (DualCoOp); the derived
    record takes setting, label ratio and seed from ``record_b``. Both cells must have been
    evaluated on the same test images with the same labels. ``pairing`` (how the two cells were
    matched) is stored in the record's ``fusion`` entry.
    """
    record_a, record_b = Path(record_a), Path(record_b)
    a = _load(record_a, _read_record(record_a))
    b = _load(record_b, _read_record(record_b))
    return _fuse_loaded(a, b, rate, Path(out_record), name, pairing)


def _fuse_loaded(a: SourceCell, b: SourceCell, rate: float, out_record: Path, name: str,
                 pairing: str | None) -> Path:
    """:func:`fuse_records` on two cells already read."""
    rec_a, rec_b = a.record, b.record
    split_a, split_b = (r.get("config", {}).get("eval_split", "test") for r in (rec_a, rec_b))
    if rec_a["dataset"] != rec_b["dataset"] or split_a != split_b:
        raise UsageError(f"cannot fuse cells of different datasets or splits: {rec_a['dataset']}/{split_a} "
                         f"({a.path}) and {rec_b['dataset']}/{split_b} ({b.path})")
    if not same_test_set(a.labels, a.image_ids, b.labels, b.image_ids):
        raise UsageError(f"the test labels (or image order) of {a.path} and {b.path} differ; "
                         "fusion needs the same test split read the same way")
    classnames = list(rec_b.get("per_class_AP") or {}) or None
    if classnames is not None and list(rec_a.get("per_class_AP") or {}) != classnames:
        raise UsageError(f"{a.path} and {b.path} list different classes")
    fused = fuse_scores(a.scores, b.scores, float(rate))  # [N, C]
    metrics = multilabel_metrics(fused, b.labels, classnames)
    sources = [_source(a.path, rec_a), _source(b.path, rec_b)]
    fusion = {"rate": float(rate), "normalisation": NORMALISATION, "weights": {rec_a["method"]: 1.0 - float(rate),
                                                                                rec_b["method"]: float(rate)},
              "scores": "score", "reference": "TaI-DPT ensemble_score.py"}
    if pairing:
        fusion["pairing"] = pairing
    config = {"fusion": fusion, "eval_split": split_b,
              "derived_from": [{k: s[k] for k in ("method", "config_hash")} for s in sources]}
    spec_a, spec_b = backbone_spec(rec_a), backbone_spec(rec_b)
    record = {
        "status": "ok", "record_version": RECORD_VERSION, "method": name, "dataset": rec_b["dataset"],
        "setting": rec_b["setting"], "label_ratio": rec_b.get("label_ratio"), "shots": rec_b.get("shots"),
        "seed": rec_b["seed"],
        "config_hash": sha256_json(config)[:16], "config": config, "environment": environment("cpu"),
        "mAP": metrics["mAP"], "per_class_AP": metrics["per_class_AP"], "empty_classes": metrics["empty_classes"],
        "f1": f1_block(metrics),
        "branches": {"score": metrics["mAP"], rec_a["method"]: rec_a.get("mAP"), rec_b["method"]: rec_b.get("mAP")},
        # one backbone string for the report's column, and both in full
        "backbone": {"spec": {"model": f"{spec_a['model']}+{spec_b['model']}",
                              "pretrained": f"{spec_a.get('pretrained')}+{spec_b.get('pretrained')}"},
                     "parts": [rec_a.get("backbone"), rec_b.get("backbone")]},
        "image_protocol": rec_b.get("image_protocol") or rec_a.get("image_protocol"),
        "derived_from": sources,
        "fusion": fusion,
        "train_data": None, "n_test": int(b.labels.shape[0]),
        "seconds": {"train": 0.0, "eval": 0.0},
    }
    test = SimpleNamespace(labels=b.labels, image_ids=list(b.image_ids) if b.image_ids is not None else [])
    save_scores(out_record, {"score": fused.astype(np.float32)}, test)  # scores first: a record always has them
    write_json(out_record, record)
    return out_record


@dataclass(frozen=True)
class FusionSpec:
    """Which cells to fuse: ``a`` zero-shot cells (weight 1 - rate) with ``b`` cells of ``setting_b``."""

    a: str = "taidpt"
    b: str = "dualcoop"
    rate: float = 0.9  # scripts/ensemble.sh example; train_caption.py:93 (commented) partial_TaI_merge_rate
    name: str | None = None  # default "<a>+<b>"
    setting_a: str = "zero-shot"
    setting_b: str = "partial"

    @property
    def method(self) -> str:
        return self.name or f"{self.a}+{self.b}"


def _cells(folder: Path, method: str, setting: str) -> list[tuple[Path, dict]]:
    """(record path, record) of every finished cell of ``method`` in ``setting`` in a records folder. The
    record says the method, setting, label ratio and seed; a file not named as the runner names that
    cell (:attr:`bench.cell.plan.Cell.name`: a copy, a backup) is skipped."""
    out = []
    for path in sorted(folder.glob(f"{method}__{setting}*.json")):
        try:
            record = read_json(path)
            check_record(record)
        except (OSError, json.JSONDecodeError, RecordError):
            continue  # a record being written by another process, or not following the record contract
        try:
            cell = Cell(record["method"], record["dataset"], record["setting"], record.get("label_ratio"),
                        shots=record.get("shots"), seed=record["seed"])
        except (KeyError, ValueError):
            continue  # not a cell record
        if (cell.method, cell.setting, cell.name) != (method, setting, path.stem):
            continue
        if record.get("status") == "ok" and scores_path(path).is_file():
            out.append((path, record))
    return out


def fuse_sweep(work_dir: str | Path, dataset: str, spec: FusionSpec | dict | None = None,
               force: bool = False) -> list[Path]:
    """Fuse every finished ``spec.b`` cell with the ``spec.a`` cell of the same seed, in one run's records.

    ``work_dir`` is a run folder (holding ``records/<dataset>/``), ``dataset`` the dataset name
    used in the records (e.g. ``coco2014``). When the ``a`` method has no cell of a seed, its first
    (lowest) seed is used and the record says so (``pairing``). The derived record is written as
    ``<name>__<setting>_r<ratio>__s<seed>.json`` beside the others; an existing one is kept when it
    was derived from the same source configs, unless ``force``. Returns the derived record paths.
    """
    spec = FusionSpec(**spec) if isinstance(spec, dict) else (spec or FusionSpec())
    folder = Path(work_dir) / "records" / dataset
    a_cells = {record["seed"]: (path, record) for path, record in _cells(folder, spec.a, spec.setting_a)}
    written = []
    if not a_cells:
        return written
    loaded_a: dict[int, SourceCell] = {}  # an a cell's scores, read once however many b cells it joins
    for path_b, rec_b in _cells(folder, spec.b, spec.setting_b):
        seed = rec_b["seed"]
        pairing = "same seed" if seed in a_cells else f"first seed of {spec.a} ({min(a_cells)})"
        seed_a = seed if seed in a_cells else min(a_cells)
        path_a, rec_a = a_cells[seed_a]
        out = Cell(spec.method, dataset, spec.setting_b, rec_b.get("label_ratio"), seed,
                   shots=rec_b.get("shots")).record_path(work_dir)
        if out.is_file() and not force and _up_to_date(out, path_a, rec_a, path_b, rec_b):
            written.append(out)
            continue
        if seed_a not in loaded_a:
            loaded_a[seed_a] = _load(path_a, rec_a)
        written.append(_fuse_loaded(loaded_a[seed_a], _load(path_b, rec_b), spec.rate, out, spec.method, pairing))
    return written


def fuse_finished(work_dir: str | Path, cfg, methods: list[str], force: bool = False) -> list[Path]:
    """Every derived cell of the config's ``fusions`` whose two methods are among ``methods`` (:func:`fuse_sweep`),
    from the finished cells of the run folder ``work_dir``. Returns the derived record paths."""
    from bench.config import to_plain

    written = []
    for spec in to_plain(cfg.get("fusions", []) or []):
        if spec.get("a") in methods and spec.get("b") in methods:
            written += fuse_sweep(work_dir, cfg.dataset.type, spec, force=force)
    return written


def _up_to_date(out: Path, path_a: Path, rec_a: dict, path_b: Path, rec_b: dict) -> bool:
    """Whether a derived record was made from the current versions of both source records (read already)."""
    try:
        derived = read_json(out)
        hashes = [rec_a["config_hash"], rec_b["config_hash"]]
    except (OSError, json.JSONDecodeError, KeyError):
        return False
    sources = derived.get("derived_from") or []
    return (derived.get("status") == "ok" and [s.get("path") for s in sources] == [str(path_a), str(path_b)]
            and [s.get("config_hash") for s in sources] == hashes
            and [s.get("data_key") for s in sources] == [rec_a.get("data_key"), rec_b.get("data_key")]
            and scores_path(out).is_file()
            and os.path.getmtime(out) >= max(os.path.getmtime(path_a), os.path.getmtime(path_b)))

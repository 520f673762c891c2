"""Run one cell: build the method and its data, train it, evaluate it, write its record.

Planning a cell and the state of its record: :mod:`bench.cell.plan`; its training data: :mod:`bench.cell.trainsets`
(generated images: :mod:`bench.generation.generators`, T2I-PAL's mixed set: :mod:`bench.cell.generated`; values tuned on
validation images: :mod:`bench.cell.validation`); training and prediction: :mod:`bench.cell.train`; provenance:
:mod:`bench.provenance`. A record is written atomically, after the scores file beside it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.analysis.metrics import f1_block, multilabel_metrics
from bench.cell.checkpoints import clear_checkpoints
from bench.cell.fitdata import fit_from_features
from bench.cell.generated import generated_training_data
from bench.cell.online import encode_test_images, image_protocol, wants_pixels
from bench.cell.plan import Cell, CellPlan, plan_cell, record_key, record_state, stale_reason
from bench.cell.session import Session
from bench.cell.train import fit, predict
from bench.cell.trainsets import TrainSet, caption_training_data, image_training_data
from bench.cell.validation import tune_on_validation
from bench.config import config_hash, method_features, method_protocol, to_plain
from bench.data.base import Split
from bench.errors import CellFailed, DataError, JobError, MissingResourcesError, SharedBackboneError
from bench.io import atomic_write_text, is_write_fault, write_json
from bench.locking import exclusive
from bench.method import Method
from bench.phases import timed
from bench.provenance import environment, peak_memory_mb
from bench.records import RECORD_VERSION, record_resamples, save_scores
from bench.registry import construct

log = logging.getLogger("bench")


@dataclass
class Prepared:
    """A built method with its data: test features, and the training set when the method trains."""

    method: Method
    backbone: object
    test: Split
    test_arrays: dict[str, np.ndarray]
    trainset: TrainSet | None
    seconds: dict


# the run's data, shared backbone or machinery: every cell would fail alike, so the run stops with one line
RUN_ERRORS = (DataError, SharedBackboneError, JobError, MissingResourcesError)


def belongs_to_cell(exc: BaseException) -> bool:
    """Whether ``exc``, raised while a cell ran, is that cell's failure (its record says so and the sweep goes on)
    rather than the run's: bad data (:class:`~bench.errors.DataError`), the config's own backbone not loading, a dead
    worker, missing resources, a full disk or a read-only folder (:func:`bench.io.is_write_fault`), Ctrl-C and exits
    end the run."""
    return isinstance(exc, Exception) and not isinstance(exc, RUN_ERRORS) and not is_write_fault(exc)


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (the first line of the message; bench's own errors have one)."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text[:500]}" if text else type(exc).__name__


def prepare_cell(session: Session, plan: CellPlan) -> Prepared:
    """Build the method and get its features (computed once into the cache, then read)."""
    from mmengine.runner import set_random_seed

    backbone = session.backbone(plan.backbone_overrides)
    zsl = plan.cell.setting == "zsl"  # built for the seen classes only; re-prompted at evaluation (bench.cell.zsl)
    test = session.zsl_split(session.eval_split) if zsl else session.split(session.eval_split)
    test.check_evaluable()
    # the method's initial parameters must not depend on what ran before in this process (loading a
    # backbone the first time draws random numbers: open_clip initialises before loading weights)
    set_random_seed(plan.cell.seed)
    method: Method = construct(plan.method_cls, plan.kwargs, f"method {plan.cell.method!r}")
    method.build(backbone, session.zsl_classes().seen if zsl else test.classnames)
    method.to(backbone.device)
    t0 = time.perf_counter()
    kinds = sorted(set(method.image_features.values()))
    test_feats = session.split_features(backbone, test, kinds)
    test_arrays = {role: test_feats[kind][0] for role, kind in method.image_features.items()}
    t1 = time.perf_counter()
    trainset = training_data(session, plan.cell, method, backbone, plan.train) if method.trains_on else None
    seconds = {"extract_test": t1 - t0, "prepare_train": time.perf_counter() - t1}
    return Prepared(method, backbone, test, test_arrays, trainset, seconds)


def run_cell(session: Session, cell: Cell, force: bool = False, wait: bool = True) -> Path | None:
    """Run one cell and write its record atomically; return the record path (None: skipped, see ``wait``).

    A cell whose record was made with the same config on the same data (:func:`bench.cell.plan.record_state`)
    is not recomputed unless ``force``, and nothing is written then; a record of another config or of
    other data (an edited annotation file, a replaced image) is recomputed and replaced, with a warning
    saying what changed. One process runs a cell at a time: it holds the cell's lock from planning to
    the record; another process waits for it (``wait``, saying so in one line) and then skips the cell
    if the record it finds is done, or returns None at once (``wait=False``) so the caller can come back.
    Checkpoints go to the cell's folder for this config and data, so training resumes only from a
    checkpoint the same config wrote on the same data.

    A cell that fails at run time (a non-finite loss, a generator or backbone that will not load, a method that
    raises, CUDA out of memory: :func:`belongs_to_cell`) writes a failed record (``status: "failed"``, its one-line
    ``error`` and the ``traceback``) and raises :class:`bench.errors.CellFailed`, so a sweep goes on with the other
    cells and the report lists it; bad data, a full disk or a read-only folder end the run instead.
    """
    record_path = cell.record_path(session.work_dir)
    plan = plan_cell(session.cfg, cell)
    if not force and record_state(record_path, plan, session.data) == "done":
        return record_path
    with exclusive(cell.lock_path(session.work_dir), f"cell {cell.name}", wait=wait) as held:
        if not held:
            return None
        reason = None if force else stale_reason(record_path, plan, session.data)  # again: it may have
        if not force and reason is None:  # been finished by the process this one waited for
            return record_path
        if reason and reason != "todo":
            log.warning("%s: %s; recomputing", cell.name, reason)
        return _record(session, plan, record_path, force)


def _record(session: Session, plan: CellPlan, record_path: Path, force: bool) -> Path:
    """Run the planned cell (its lock held) and write its record."""
    cell = plan.cell
    data = session.data.for_cell(plan.method_cls.trains_on, session.eval_split, cell.setting)
    state_dir = cell.state_dir(session.work_dir, record_key(plan, data["key"]))
    state_dir.mkdir(parents=True, exist_ok=True)
    if force:
        clear_checkpoints(state_dir)  # a forced cell trains from scratch
    config_text = json.dumps(plan.config, indent=1, default=str)  # says which config the checkpoints are of
    if not (state_dir / "config.json").is_file() or (state_dir / "config.json").read_text() != config_text:
        atomic_write_text(state_dir / "config.json", config_text)
    base = {"record_version": RECORD_VERSION, "method": cell.method, "dataset": cell.dataset,
            "setting": cell.setting, "label_ratio": cell.label_ratio, "shots": cell.shots, "seed": cell.seed,
            "config_hash": config_hash(plan.config), "config": plan.config,
            "data_key": data["key"], "data_digests": {k: v for k, v in data.items() if k != "key"},
            "environment": environment(session.device)}
    try:
        record = {"status": "ok", **base, **_run(session, plan, state_dir)}
    except Exception as exc:
        if not belongs_to_cell(exc):
            raise
        reason = one_line(exc)
        write_json(record_path, {"status": "failed", **base, "error": reason, "traceback": traceback.format_exc()})
        raise CellFailed(reason, str(record_path)) from exc
    with timed("records and scores"):
        write_json(record_path, record)
    clear_checkpoints(state_dir)  # the record is what counts now; checkpoints were only for resuming
    return record_path


def _run(session: Session, plan: CellPlan, state_dir: Path) -> dict:
    cell, train = plan.cell, plan.train
    if session.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    prepared = prepare_cell(session, plan)
    method, backbone, test, trainset = prepared.method, prepared.backbone, prepared.test, prepared.trainset
    t0 = time.perf_counter()
    # Tip-Adapter, linear probe: fit from the labelled features first (bench/cell/fitdata.py; its time counts as
    # training)
    fit_info = fit_from_features(session, cell, method, backbone, trainset) if method.fits_features else None
    if trainset is not None and train.get("epochs", 0) > 0:
        # mmengine's Runner reseeds (randomness=dict(seed)): the same initial state whether or not
        # features were just extracted
        fit(session, cell, method, trainset, train, state_dir)
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    feats_cfg = method_features(session.cfg, cell.method)
    batch_size = (session.cfg.get("features", {}) or {}).get("eval_batch_size", 256)
    # values the method tunes after training (T2I-PAL's branch weights): on validation images, never test
    validation = tune_on_validation(session, cell, method, backbone, batch_size=batch_size)
    test_arrays = prepared.test_arrays
    if wants_pixels(method):  # the method trained the image tower: encode the test images now (bench/cell/online.py)
        test_arrays = encode_test_images(method, test.image_paths, batch_size, feats_cfg.get("num_workers", 0),
                                         where=f"{test.dataset}/{test.split}")
    if cell.setting == "zsl":
        results = zsl_results(session, cell, prepared, test_arrays, batch_size)
    else:
        scores = predict(method, test_arrays, batch_size=batch_size)
        threshold = float(method.score_threshold)
        metrics = {name: multilabel_metrics(s, test.labels, test.classnames, threshold=threshold)
                   for name, s in scores.items()}
        with timed("records and scores"):
            save_scores(cell.record_path(session.work_dir), scores, test, resamples=False)
        with timed("bootstrap resamples"):  # once, here, so the report does not resample every record
            record_resamples(cell.record_path(session.work_dir))
        main = metrics["score"]
        results = {"mAP": main["mAP"], "per_class_AP": main["per_class_AP"], "empty_classes": main["empty_classes"],
                   "f1": f1_block(main), "branches": {name: r["mAP"] for name, r in metrics.items()}}
    eval_seconds = time.perf_counter() - t0
    return {
        **results,
        "backbone": {"spec": dataclasses.asdict(backbone.spec), "weights_sha256": backbone.weights_hash,
                     "resolution": input_resolution(backbone)},
        "protocol": method_protocol(session.cfg, cell.method),  # "shared" backbone/features, or the "reference"'s
        "image_protocol": image_protocol(method, feats_cfg) if method.trains_on == "images" else None,
        "method_hparams": to_plain(method.hparams()),
        "train_schedule": train,
        "train_data": trainset.description if trainset is not None else None,
        "fit": fit_info,
        "validation": validation,
        "n_test": len(test),
        "n_trainable_params": sum(p.numel() for p in method.trainable_parameters()),
        "seconds": {**prepared.seconds, "train": train_seconds, "eval": eval_seconds},
        "peak_memory_mb": peak_memory_mb(session.device),
    }


def zsl_results(session: Session, cell: Cell, prepared: Prepared, test_arrays: dict, batch_size: int) -> dict:
    """The zsl setting's record entries: the ``zsl`` (unseen classes) and ``gzsl`` (seen + unseen) blocks,
    the split used, and, as the cell's headline, the ZSL block's mAP, per-class AP and top-k F1 (its
    scores are the ones saved beside the record). ``test_arrays``: the test features the method scores (the
    cached ones, or those its own image tower encoded after training)."""
    from bench.cell.zsl import evaluate_zsl

    classes = session.zsl_classes()
    blocks, (scores, view) = evaluate_zsl(prepared.method, prepared.test, test_arrays, classes,
                                          lambda m, arrays: predict(m, arrays, batch_size=batch_size))
    save_scores(cell.record_path(session.work_dir), scores, view)
    zsl = blocks["zsl"]
    return {"mAP": zsl["mAP"], "per_class_AP": zsl["per_class_AP"], "empty_classes": zsl["empty_classes"],
            "f1": {k: v for k, v in zsl.items() if "@" in k}, "branches": zsl["branches"],
            "zsl": blocks["zsl"], "gzsl": blocks["gzsl"], "zsl_split": classes.description}


def training_data(session: Session, cell: Cell, method: Method, backbone, train: dict) -> TrainSet:
    """The cell's training set, from what the method trains on and the cell's setting."""
    if method.trains_on == "images":
        return image_training_data(session, cell, method, backbone)
    if method.trains_on == "captions":
        return caption_training_data(session, cell, method, backbone)
    if method.trains_on == "generated":
        return generated_training_data(session, cell, method, backbone)
    raise ValueError(f"{method.name}: unknown trains_on {method.trains_on!r}")


def input_resolution(backbone) -> int | None:
    """The image side the backbone reads (its spec's ``image_size``, else the model's own; None if unknown)."""
    size = backbone.spec.image_size or getattr(getattr(backbone.model, "visual", None), "image_size", None)
    if isinstance(size, (tuple, list)):
        size = size[0]
    return int(size) if size else None

"""Values a method tunes after training, chosen on validation images, never on the test split.

Validation images, as :mod:`bench.cell.fitdata` makes them for the methods that fit from features (one
definition of "validation" for every tuned value; Tip-Adapter / CoOp ``split_trainval(p_val=0.2)``):
* the dataset's ``val`` split when it has one (the toy world) and the run does not evaluate on it, with
  the cell's label budget: partial labels at the cell's ratio and seed, or the few-shot sampler with the
  cell's K (zero-shot: its labels as they are), so the search sees no denser supervision than training;
* otherwise a seeded ``HOLDOUT_FRACTION`` (fitdata's 20%) of the cell's training images (:func:`holdout_rows`;
  zero-shot: of the train split, at most 2,000 images), with the labels they have in the cell; the
  method then does not train on them (bench.cell.generated leaves them out).
A method that tunes something implements ``tuning_grid() -> list[dict]`` (candidates, the configured one
first: it wins ties), ``combine(branch_scores, candidate) -> scores`` and ``set_tuned(candidate)``
(T2I-PAL's branch weights, methods/t2ipal.py). The record's ``validation`` entry lists the images used,
every candidate's validation mAP and the choice.
"""

from __future__ import annotations

import math

import numpy as np

from bench.cell.fitdata import HOLDOUT_FRACTION, budgeted_val_split, holdout_split
from bench.data.base import few_shot_indices

HOLDOUT_MAX = 2000  # zero-shot hold-outs (the whole train split is the pool)
HOLDOUT_SALT = 31  # the zero-shot hold-out's RNG stream: default_rng([seed, HOLDOUT_SALT])


def uses_val_split(session) -> bool:
    """Whether validation images come from the dataset's ``val`` split (else a train hold-out)."""
    return session.eval_split != "val" and session.dataset.has_split("val")


def holdout_rows(session, cell) -> np.ndarray | None:
    """Sorted train-split rows held out for validation in this cell (None when the val split is used):
    few-shot and partial cells, :func:`bench.cell.fitdata.holdout_split` of the cell's training images (its
    K-shot selection, or the whole train split), the draw the fitting methods make; zero-shot cells,
    ``HOLDOUT_FRACTION`` of the train split, at most ``HOLDOUT_MAX``, by ``default_rng([seed, HOLDOUT_SALT])``."""
    if uses_val_split(session):
        return None
    train = session.split("train")
    if cell.setting in ("fewshot", "partial"):
        pool = few_shot_indices(train.labels, cell.shots, cell.seed) if cell.setting == "fewshot" \
            else np.arange(len(train))
        return pool[holdout_split(len(pool), cell.seed)[0]]
    size = min(HOLDOUT_MAX, max(1, round(HOLDOUT_FRACTION * len(train))))
    return np.sort(np.random.default_rng([cell.seed, HOLDOUT_SALT]).choice(len(train), size=size, replace=False))


def validation_images(session, cell) -> tuple:
    """(split, rows, labels [N, C] in {1, 0, -1}, class names, description) of the cell's validation images:
    rows ``rows`` of ``split`` (the val split, or the train split for a hold-out), so their features are
    read from the whole split's cache entry, the one every cell and the diagnostics share."""
    from bench.data.base import apply_partial_labels

    if uses_val_split(session):
        split, rows = budgeted_val_split(session, cell)
        labels = split.labels[rows]
        known = float((labels != 0).mean()) if len(rows) else 0.0
        return split, rows, labels, split.classnames, {
            "split": "val", "n_images": int(len(rows)), "known_label_fraction": known}
    train = session.split("train")
    if cell.setting == "partial":  # the labels this cell knows
        train = apply_partial_labels(train, cell.label_ratio, cell.seed)
    rows = holdout_rows(session, cell)
    description = {"split": "train hold-out", "n_images": int(len(rows)), "fraction": HOLDOUT_FRACTION,
                   "seed": cell.seed}
    return train, rows, train.labels[rows].astype(np.int8), train.classnames, description


def tunes(method) -> bool:
    """Whether the method chooses values on validation images after training (``tuning_grid``)."""
    return bool(hasattr(method, "tuning_grid") and method.tuning_grid())


def choose(method, branches: dict[str, np.ndarray], labels: np.ndarray, classnames: list[str]) -> dict:
    """Every candidate of ``method.tuning_grid()`` scored by validation mAP; the best (first on ties; the
    first candidate when no mAP is finite) is set on the method. Returns the record's entry."""
    from bench.analysis.metrics import multilabel_metrics

    grid = method.tuning_grid()
    results = [{**values, "mAP": multilabel_metrics(method.combine(branches, values), labels, classnames)["mAP"]}
               for values in grid]
    finite = [i for i, r in enumerate(results) if r["mAP"] is not None and math.isfinite(r["mAP"])]
    best = max(finite, key=lambda i: (results[i]["mAP"], -i)) if finite else 0
    method.set_tuned(grid[best])
    return {"grid": results, "chosen": grid[best], "mAP": results[best]["mAP"]}


def tune_on_validation(session, cell, method, backbone, batch_size: int = 256) -> dict | None:
    """Choose the method's tuned values on the cell's validation images (None when it tunes nothing)."""
    from bench.cell.train import predict

    if not tunes(method):
        return None
    if cell.setting == "zsl":  # scored on classes never trained on: no labelled image of those to tune with
        return {"split": None, "n_images": 0, "chosen": None,
                "note": "zsl: no validation labels of the unseen classes; the configured values are used"}
    split, rows, labels, classnames, description = validation_images(session, cell)
    if not len(rows):  # e.g. a K-shot selection that took every train image: nothing left to hold out
        return {**description, "chosen": None, "note": "no validation image left: the configured values are used"}
    kinds = sorted(set(method.image_features.values()))
    feats = session.split_features(backbone, split, kinds)  # the whole split's entry (one encoder pass per image)
    arrays = {role: np.asarray(feats[kind][0][np.asarray(rows)]) for role, kind in method.image_features.items()}
    branches = predict(method, arrays, batch_size=batch_size)
    return {**description, **choose(method, branches, labels, classnames)}

"""What a ``fits_features`` method (bench/method.py) fits from: the cell's labelled training features
and a validation set for its hyperparameter search. The test split never enters.

Training set: the cell's own (the runner's training set: partial labels at the cell's ratio, or the
few-shot subset), read from the feature cache with its V views.

Validation set -- the references search on test (Tip-Adapter ``main_imagenet.py:43,110``; Tip-Adapter-F
keeps its best epoch on test, ``main.py:111-126``); bench never does:
* ``"val split"``: the dataset's own validation split (toy: minival2014; COCO when
  ``instances_minival2014.json`` exists) when it has one and it is not the split being evaluated
  (``runtime.eval_split``). It gets the cell's label budget -- partial labels at the cell's ratio
  and seed, or the few-shot sampler with the cell's shots -- so the search sees no denser
  supervision than the training set. The training set stays whole.
* ``"holdout"``: otherwise (COCO, VOC2007 and NUS-WIDE ship no validation split, and a toy run with
  ``eval_split=val`` evaluates on it) a seeded ``HOLDOUT_FRACTION`` of the cell's training images,
  with the labels they have in the cell, which the method then does not fit on: it sees 80% of the
  cell's training images. 20% is Tip-Adapter's / CoOp's ``split_trainval(p_val=0.2)``
  (``datasets/oxford_pets.py:56``), how those repositories make a val split where a dataset has none.
The record's ``fit.data`` says which, with the sizes and known-label fractions.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.data.base import DataError, apply_partial_labels, few_shot_indices
from bench.errors import UsageError
from bench.method import LabelledFeatures

HOLDOUT_FRACTION = 0.2  # Tip-Adapter datasets/oxford_pets.py:56 split_trainval(p_val=0.2)


def fit_from_features(session, cell, method, backbone, trainset) -> dict:
    """Build the method's training and validation features, seed torch with the cell's seed, call
    ``method.fit_features`` and return the record's ``fit`` entry (data description + the method's)."""
    t0 = time.perf_counter()
    train, rows = cached_training_features(method, trainset)
    train, val, description = validation_split(session, cell, method, backbone, train, rows)
    t1 = time.perf_counter()
    torch.manual_seed(cell.seed)  # what the method draws (batch order, views) depends on the cell only
    fitted = method.fit_features(train, val)
    seconds = {"data": t1 - t0, "fit": time.perf_counter() - t1}  # data: reading (and once extracting) features
    return {"data": description, **fitted, "seconds": seconds}


def cached_training_features(method, trainset) -> tuple[LabelledFeatures, np.ndarray]:
    """The cell's training images as [V, N, ...] features and [N, C] labels, and their rows in the
    train split (the cached protocol's ``FeatureDataset``: item i is feature row ``rows[i]``)."""
    dataset = getattr(trainset, "dataset", None)
    if getattr(dataset, "arrays", None) is None or dataset.views is None:
        raise UsageError(f"{method.name} fits from cached image features: set features.mode='cached' "
                         "(the online protocol re-encodes images and has none)")
    rows = np.asarray(dataset.rows)
    feats = {role: np.asarray(array[:, rows], dtype=np.float32) for role, array in dataset.arrays.items()}
    return LabelledFeatures(feats, np.asarray(dataset.labels, dtype=np.int8)), rows


def budgeted_val_split(session, cell):
    """(the dataset's val split with the cell's label budget -- partial labels at its ratio and seed -- and
    the rows to use: the few-shot sampler's with the cell's K, else all). A DataError when the val split
    shares images with the split being evaluated."""
    val = session.split("val")
    overlap = set(val.image_paths) & set(session.split(session.eval_split).image_paths)
    if overlap:
        raise DataError(f"{session.dataset.name}: {len(overlap)} images are in both the val and the "
                        f"{session.eval_split} split (e.g. {sorted(overlap)[0]}); the search would see test images")
    rows = np.arange(len(val))
    if cell.setting == "partial":
        val = apply_partial_labels(val, cell.label_ratio, cell.seed)
    elif cell.setting == "fewshot":
        rows = few_shot_indices(val.labels, cell.shots, cell.seed)  # the cell's K
    return val, rows


def holdout_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation, fitting) positions among ``n`` training items, both sorted: ``HOLDOUT_FRACTION`` of them
    (rounded) by ``default_rng([seed, 7]).permutation(n)``, the rest."""
    n_val = int(round(HOLDOUT_FRACTION * n))
    order = np.random.default_rng([seed, 7]).permutation(n)
    return np.sort(order[:n_val]), np.sort(order[n_val:])


def validation_split(session, cell, method, backbone, train: LabelledFeatures, rows: np.ndarray):
    """(training set, validation set, description): the dataset's val split with the cell's label
    budget, or a seeded holdout of the training set (module docstring). ``rows``: the training
    images' rows in the train split. Validation features are always the plain test transform's."""
    kinds = sorted(set(method.image_features.values()))
    if session.eval_split != "val" and session.dataset.has_split("val"):
        val, rows = budgeted_val_split(session, cell)
        feats = session.split_features(backbone, val, kinds)  # the whole split: one cache entry for every cell
        val_set = LabelledFeatures({role: np.asarray(feats[kind][:1, rows], dtype=np.float32)
                                    for role, kind in method.image_features.items()}, val.labels[rows])
        source = "val split"
    else:
        n = len(train.labels)
        val_rows, fit_rows = holdout_split(n, cell.seed)
        if len(val_rows) < 1 or len(fit_rows) < 1:
            raise DataError(f"{method.name}: {n} training images are too few to hold out a validation set "
                            f"({HOLDOUT_FRACTION:.0%}); use a dataset with a val split or more images")
        plain = train.feats  # V = 1: the plain transform; else read the plain features of the train split
        if next(iter(train.feats.values())).shape[0] > 1:
            feats = session.split_features(backbone, session.split("train"), kinds)
            plain = {role: feats[kind][:, rows] for role, kind in method.image_features.items()}
        val_set = LabelledFeatures({r: np.asarray(a[:1, val_rows], dtype=np.float32) for r, a in plain.items()},
                                   train.labels[val_rows])
        train = LabelledFeatures({r: a[:, fit_rows] for r, a in train.feats.items()}, train.labels[fit_rows])
        source = "holdout"
    if not (val_set.labels == 1).any():
        raise DataError(f"{method.name}: the validation set ({source}, {len(val_set.labels)} images) has no known "
                        "positive label to choose hyperparameters by; use more images or a larger label ratio")
    description = {"validation": source, "holdout_fraction": HOLDOUT_FRACTION if source == "holdout" else None,
                   "n_train": len(train.labels), "n_val": len(val_set.labels),
                   "train_known_fraction": float((train.labels != 0).mean()),
                   "val_known_fraction": float((val_set.labels != 0).mean())}
    return train, val_set, description

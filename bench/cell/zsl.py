"""The ``zsl`` setting inside a cell: train on seen classes, score unseen ones (ZSL) and all (GZSL).

DualCoOp's zero-shot protocol (sunxm2357/DualCoOp@49e71d7 ``train_zsl.py``; class splits and image
selection: :mod:`bench.data.zsl`). What a cell does in it:

- the method is built for the **seen** classes only: no unseen class name reaches ``build``;
- training data carry seen columns only: images with at least one seen positive
  (:func:`bench.data.zsl.class_view`), or captions labelled with the seen classes, from which every
  caption that names an unseen class is dropped (:func:`seen_captions`) -- so no unseen label and
  no unseen class name reaches training, not even inside caption text;
- after training the method re-prompts (``Method.rebuild``) the unseen classes, then seen + unseen,
  and each set is scored on the test images that have a positive in it: the record's ``zsl`` and
  ``gzsl`` blocks (mAP, per-class AP, top-k P/R/F1 for k = 3, 5; ``bench.analysis.metrics.zsl_metrics``).

A method that cannot score unseen classes (per-class parameters, e.g. class-specific contexts) is
not run: :func:`zsl_skip_reason` gives the one-line reason the sweep prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.analysis.metrics import zsl_metrics
from bench.data.base import POSITIVE, Split
from bench.data.zsl import class_view, load_zsl_split

TOP_K = (3, 5)  # DualCoOp validate_zsl --top_k: 3 (opts.py:111) and 5 (README's val_zsl.py example)


@dataclass(frozen=True)
class ZSLClasses:
    """The resolved split of one dataset: seen and unseen names, and all of them, in dataset order."""

    seen: list[str]
    unseen: list[str]
    evaluated: list[str]  # seen + unseen in the dataset's class order (the GZSL classes)
    description: dict  # what the record keeps (bench.data.zsl.ZSLSplit.describe)


def resolve_classes(dataset, test: Split) -> ZSLClasses:
    """The dataset's ``zsl_split`` checked against the class list of ``test`` (loaded for zsl)."""
    split = load_zsl_split(getattr(dataset, "zsl_split", None), dataset.name)
    seen, unseen = split.resolve(test.classnames, f"the {dataset.name} class list")
    chosen = set(seen) | set(unseen)
    return ZSLClasses(seen, unseen, [c for c in test.classnames if c in chosen], split.describe(seen, unseen))


def zsl_skip_reason(cfg, name: str, method_cls: type) -> str | None:
    """Why the method ``name`` (a registered method or a config variant), as configured, cannot run the zsl
    setting; None when it can. Constructing a method is cheap (``build`` makes the parameters), so options
    such as ``csc`` are taken into account."""
    if "zsl" not in getattr(method_cls, "settings", ()):
        return getattr(method_cls, "unseen_note", "") or "it does not declare the zsl setting"
    from bench.config import method_config
    from bench.registry import construct

    kwargs = method_config(cfg, name, method_cls, "zsl")[0] if cfg is not None else {}
    return construct(method_cls, kwargs, f"method {name!r}").unseen_blocker()


def split_identity(cfg) -> dict:
    """The split file a zsl cell of this config uses (``dataset.zsl_split``, else the reader's default) and its
    hash: part of the cell config, so an edited split file makes the cell's record stale."""
    import inspect

    from bench.registry import DATASETS, lookup

    dataset = dict(cfg.get("dataset") or {})
    reader = lookup(DATASETS, dataset.get("type"))
    default = inspect.signature(reader.__init__).parameters.get("zsl_split")
    name = dataset.get("zsl_split", default.default if default is not None else None)
    split = load_zsl_split(name, getattr(reader, "name", dataset.get("type")))
    return {"name": split.name, "sha256": split.sha256}


def seen_training_split(train: Split, classes: ZSLClasses) -> tuple[Split, np.ndarray]:
    """Training images with at least one seen positive, seen columns only, and their rows in ``train``."""
    return class_view(train, classes.seen)


def seen_captions(captions: list[str], labels: np.ndarray, classnames: list[str],
                  classes: ZSLClasses) -> tuple[list[str], np.ndarray, int]:
    """Parsed captions (labels over ``classnames``) reduced to the seen classes: captions naming an unseen
    class are dropped, the rest keep their seen columns, captions with no seen class are dropped too.
    Returns (captions, labels [M, n_seen], number dropped for naming an unseen class)."""
    column = {c: i for i, c in enumerate(classnames)}
    unseen_cols = [column[c] for c in classes.unseen if c in column]
    names_unseen = (labels[:, unseen_cols] == POSITIVE).any(axis=1) if unseen_cols else np.zeros(len(labels), bool)
    seen_labels = labels[:, [column[c] for c in classes.seen]]
    keep = ~names_unseen & (seen_labels == POSITIVE).any(axis=1)
    return [c for c, k in zip(captions, keep) if k], seen_labels[keep], int(names_unseen.sum())


def evaluate_zsl(method, test: Split, test_arrays: dict, classes: ZSLClasses,
                 predict: Callable[[object, dict], dict[str, np.ndarray]]) -> tuple[dict, tuple[dict, Split]]:
    """The ``zsl`` (unseen classes) and ``gzsl`` (seen + unseen) blocks of a trained method.

    ``predict(method, arrays)`` returns the method's named score matrices over every test row; the method
    is re-prompted for each class set and scored on all test images, and each block reads the rows of
    the images with a positive in its class set (memory stays that of one prediction pass). Also returns
    the ZSL scores and view, which the cell saves beside its record."""
    blocks, saved = {}, None
    for part, names in (("zsl", classes.unseen), ("gzsl", classes.evaluated)):
        view, rows = class_view(test, names)
        method.rebuild(names)
        scores = {name: s[rows] for name, s in predict(method, test_arrays).items()}
        block = zsl_metrics(scores["score"], view.labels, names, ks=TOP_K)
        block["branches"] = {name: zsl_metrics(s, view.labels, names, ks=())["mAP"] for name, s in scores.items()}
        blocks[part] = block
        if part == "zsl":
            saved = (scores, view)
    return blocks, saved

"""Multi-label metrics as the reference repositories compute them (pure numpy; the mmengine metric
built on them is :class:`bench.analysis.mmmetric.MultiLabelMetric`).

AP follows DualCoOp / TaI-DPT ``utils/helper.py``: per class, sort the scores in descending
order, walk the ranking and average the precision at every positive (non-interpolated).
Only label 1 is positive; label -1 is negative; label 0 ("unknown") is ignored. Test labels
are never partial, and the VOC reader turns difficult-only objects into -1 by default, which is
what the references do (they count difficult as negative), so on test sets the two agree. One
deliberate difference from the references (see README, "Protocol"): a class with no
positive among the evaluated images has no defined AP; it is left out of the mean and listed
in ``empty_classes`` instead of entering the mean as 0.

Ties: the references break ties by ``argsort`` order, so their AP of tied scores depends on
the order of the images. We treat a group of tied scores as one threshold, as scikit-learn's
``average_precision_score`` does: identical to the references when there are no ties, and
independent of image order when there are (a constant scorer gets AP = the positive rate).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_scores(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores as float64, labels) after checking both are [N, C] and the scores finite."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must both be [N, C]")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf")
    return scores, labels


def average_precision(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class non-interpolated AP. scores, labels: [N, C]; returns [C] with NaN for empty classes."""
    scores, labels = check_scores(scores, labels)
    ap = np.full(scores.shape[1], np.nan)
    for c in range(scores.shape[1]):
        known = labels[:, c] != 0
        s, y = scores[known, c], labels[known, c] == 1
        npos = int(y.sum())
        if npos == 0:
            continue
        order = np.argsort(-s, kind="stable")
        s, hits = s[order], y[order]
        group_end = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each tie group
        tp = np.cumsum(hits)[group_end]
        precision = tp / (group_end + 1)
        recall_gain = np.diff(np.r_[0, tp]) / npos
        ap[c] = float((precision * recall_gain).sum())
    return ap


def f1_scores(scores: np.ndarray, labels: np.ndarray, *, top_k: int | None = None,
              threshold: float | None = None) -> dict[str, float]:
    """CP, CR, CF1, OP, OR, OF1 (in %) for predictions made by top-k or by a score threshold.

    As in DualCoOp's ``validate``: per-class precision/recall averaged over classes (a class
    with no prediction has precision 0), CF1 from the averaged CP and CR; overall OP/OR/OF1
    pooled over all known entries. Unknown labels (0) are excluded from both counts.
    """
    if (top_k is None) == (threshold is None):
        raise ValueError("give exactly one of top_k or threshold")
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if top_k is not None:
        k = min(top_k, scores.shape[1])
        idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        pred = np.zeros(scores.shape, dtype=bool)
        np.put_along_axis(pred, idx, True, axis=1)
    else:
        pred = scores > threshold
    known = labels != 0
    gt = labels == 1
    tp = (pred & gt & known).sum(0).astype(np.float64)
    n_pred = (pred & known).sum(0).astype(np.float64)
    n_gt = (gt & known).sum(0).astype(np.float64)
    cp = np.divide(tp, n_pred, out=np.zeros_like(tp), where=n_pred > 0).mean()
    cr = np.divide(tp, n_gt, out=np.zeros_like(tp), where=n_gt > 0).mean()
    op = tp.sum() / max(n_pred.sum(), 1.0)
    orr = tp.sum() / max(n_gt.sum(), 1.0)
    cf1 = 2 * cp * cr / (cp + cr) if cp + cr > 0 else 0.0
    of1 = 2 * op * orr / (op + orr) if op + orr > 0 else 0.0
    return {k: 100.0 * float(v) for k, v in
            dict(CP=cp, CR=cr, CF1=cf1, OP=op, OR=orr, OF1=of1).items()}


def multilabel_metrics(scores: np.ndarray, labels: np.ndarray, classnames: Sequence[str] | None = None,
                       *, top_k: int = 3, threshold: float = 0.5) -> dict:
    """mAP (%), per-class AP, the empty classes, and F1 scores at top-k ("@top3") and at a score
    threshold ("@thr"; the threshold used is returned too). A threshold only means something for
    scores on a known scale: each method declares its own (``Method.score_threshold``)."""
    ap = average_precision(scores, labels)
    names = list(classnames) if classnames is not None else [str(i) for i in range(len(ap))]
    valid = ~np.isnan(ap)
    out = {
        "mAP": float(100.0 * ap[valid].mean()) if valid.any() else float("nan"),
        "per_class_AP": {n: (None if np.isnan(a) else float(100.0 * a)) for n, a in zip(names, ap)},
        "empty_classes": [n for n, v in zip(names, valid) if not v],
    }
    for tag, kw in ((f"top{top_k}", dict(top_k=top_k)), ("thr", dict(threshold=threshold))):
        out.update({f"{k}@{tag}": v for k, v in f1_scores(scores, labels, **kw).items()})
    out["threshold"] = float(threshold)
    return out


def f1_block(metrics: dict) -> dict:
    """A record's ``f1`` entry from :func:`multilabel_metrics`: the F1 scores and their precision and
    recall ("...@top3", "...@thr") and the score threshold used (cell and fused records alike)."""
    return {k: v for k, v in metrics.items() if "@" in k or k == "threshold"}


def top_k_prf(scores: np.ndarray, labels: np.ndarray, k: int) -> dict[str, float]:
    """Precision, recall and F1 (in %) of predicting each image's ``k`` highest-scoring classes, pooled
    over all images: DualCoOp's zero-shot metric, ``calc_F1`` (``utils/helper.py:106-141``) on the
    ranking of ``validate_zsl`` (``utils/validations.py:144, 154``; ``--top_k`` 3, or 5 in the README).

    TP = positives among the k predictions, FP = the other predictions (``helper.py:117-125``: an
    image without a positive still makes k false positives), P = TP / (TP + FP), R = TP / #positives,
    F1 = 2PR / (P + R), and 0 when P or R is 0 (``helper.py:129-139``); with fewer than k classes every
    class is predicted (``helper.py:123-124``). Positives are labels == 1. Ties in the ranking go to the
    lower class index (the reference's torch ``argsort`` leaves their order unspecified).
    """
    scores, labels = check_scores(scores, labels)
    k = min(int(k), scores.shape[1])
    if k < 1:
        raise ValueError(f"top-k needs k >= 1, got {k}")
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    positive = labels == 1
    tp = float(np.take_along_axis(positive, top, axis=1).sum())
    n_pred, n_pos = float(top.size), float(positive.sum())
    precision = tp / n_pred if n_pred else float("nan")
    recall = tp / n_pos if n_pos else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision > 0 and recall > 0 else 0.0
    return {"P": 100.0 * precision, "R": 100.0 * recall, "F1": 100.0 * f1}


def zsl_metrics(scores: np.ndarray, labels: np.ndarray, classnames: Sequence[str], ks: Sequence[int] = (3, 5)) -> dict:
    """One block of the zsl setting (ZSL or GZSL): mAP (%), per-class AP, empty classes (bench's mAP,
    see the module docstring), and ``P@k``, ``R@k``, ``F1@k`` from :func:`top_k_prf` for every k."""
    ap = average_precision(scores, labels)
    valid = ~np.isnan(ap)
    out = {"mAP": float(100.0 * ap[valid].mean()) if valid.any() else float("nan"),
           "per_class_AP": {n: (None if np.isnan(a) else float(100.0 * a)) for n, a in zip(classnames, ap)},
           "empty_classes": [n for n, v in zip(classnames, valid) if not v],
           "n_images": int(len(labels)), "n_classes": int(len(classnames))}
    for k in ks:
        out.update({f"{name}@{k}": value for name, value in top_k_prf(scores, labels, k).items()})
    return out

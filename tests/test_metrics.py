"""Metrics against scikit-learn and hand-worked cases."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_score, recall_score

from bench.metrics import average_precision, f1_scores, multilabel_metrics
from bench.mmmetric import MultiLabelMetric


def _labels(rng, n, c, p=0.3):
    return np.where(rng.random((n, c)) < p, 1, -1)


@pytest.mark.parametrize("ties", [False, True])
def test_ap_matches_sklearn(ties):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(200, 7))
    if ties:
        scores = np.round(scores * 2) / 2  # many tied scores per class
    labels = _labels(rng, 200, 7)
    expected = [average_precision_score(labels[:, c] == 1, scores[:, c]) for c in range(7)]
    np.testing.assert_allclose(average_precision(scores, labels), expected, atol=1e-12)
    assert multilabel_metrics(scores, labels)["mAP"] == pytest.approx(100 * np.mean(expected))


def test_ap_hand_worked_and_reference_walk():
    # ranking: pos, neg, pos, neg -> AP = (1/1 + 2/3) / 2
    scores = np.array([[0.9], [0.8], [0.7], [0.1]])
    labels = np.array([[1], [-1], [1], [-1]])
    assert average_precision(scores, labels)[0] == pytest.approx((1 + 2 / 3) / 2)
    # a constant scorer gets AP = positive rate, whatever the image order
    const = np.zeros((4, 1))
    assert average_precision(const, labels)[0] == pytest.approx(0.5)
    assert average_precision(const, labels[::-1])[0] == pytest.approx(0.5)


def test_unknown_labels_ignored_and_empty_class_excluded():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(30, 3))
    labels = _labels(rng, 30, 3)
    labels[:, 2] = -1  # no positive: excluded and listed
    labels[:5, 0] = 0  # unknown entries: ignored
    out = multilabel_metrics(scores, labels, ["a", "b", "c"])
    keep = labels[:, 0] != 0
    ap_a = average_precision_score(labels[keep, 0] == 1, scores[keep, 0])
    ap_b = average_precision_score(labels[:, 1] == 1, scores[:, 1])
    assert out["empty_classes"] == ["c"]
    assert out["per_class_AP"]["c"] is None
    assert out["mAP"] == pytest.approx(100 * (ap_a + ap_b) / 2)


def test_f1_topk_and_threshold_against_sklearn():
    rng = np.random.default_rng(2)
    scores = rng.random((60, 5))
    labels = _labels(rng, 60, 5, 0.4)
    truth = labels == 1
    top3 = np.zeros_like(truth)
    for i, row in enumerate(scores):
        top3[i, np.argsort(-row)[:3]] = True
    for pred, kw in ((top3, dict(top_k=3)), (scores > 0.5, dict(threshold=0.5))):
        got = f1_scores(scores, labels, **kw)
        cp = precision_score(truth, pred, average="macro", zero_division=0)
        cr = recall_score(truth, pred, average="macro", zero_division=0)
        op = precision_score(truth, pred, average="micro", zero_division=0)
        orr = recall_score(truth, pred, average="micro", zero_division=0)
        assert got["CP"] == pytest.approx(100 * cp)
        assert got["CR"] == pytest.approx(100 * cr)
        assert got["CF1"] == pytest.approx(100 * 2 * cp * cr / (cp + cr))
        assert got["OF1"] == pytest.approx(100 * 2 * op * orr / (op + orr))


def test_bad_scores_rejected():
    with pytest.raises(ValueError, match="NaN or inf"):
        average_precision(np.array([[np.nan]]), np.array([[1]]))
    with pytest.raises(ValueError, match="must both be"):
        average_precision(np.zeros((3, 2)), np.zeros((3, 3)))


def test_mmengine_metric_accumulates_batches():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(40, 4))
    labels = _labels(rng, 40, 4)
    metric = MultiLabelMetric(classnames=list("abcd"))
    import torch

    for start in range(0, 40, 16):
        metric.process({}, [(torch.tensor(scores[start:start + 16]), torch.tensor(labels[start:start + 16]))])
    out = metric.compute_metrics(metric.results)
    assert out["mAP"] == pytest.approx(multilabel_metrics(scores, labels)["mAP"])
    assert set(out) >= {"mAP", "CF1@top3", "OF1@top3", "CF1@thr", "threshold"}

"""Metrics against scikit-learn and hand-worked cases."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_score, recall_score

from bench.analysis.metrics import average_precision, f1_scores, multilabel_metrics
from bench.analysis.mmmetric import MultiLabelMetric


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


def test_top_k_prf_hand_worked():
    """DualCoOp's calc_F1 pooled top-k precision / recall / F1, worked by hand."""
    from bench.analysis.metrics import top_k_prf

    scores = np.array([[0.9, 0.1, 0.8, 0.3], [0.2, 0.7, 0.6, 0.5], [0.4, 0.3, 0.2, 0.1]])
    labels = np.array([[1, -1, -1, 1], [-1, 1, -1, -1], [-1, -1, 1, 1]])
    # top-3 per image: {0, 2, 3} (TP 0, 3), {1, 2, 3} (TP 1), {0, 1, 2} (TP 2): TP 4 of 9 predictions, 5 positives
    got = top_k_prf(scores, labels, 3)
    assert got["P"] == pytest.approx(100 * 4 / 9)
    assert got["R"] == pytest.approx(100 * 4 / 5)
    assert got["F1"] == pytest.approx(100 * 32 / 56)  # 2 * (4/9) * (4/5) / (4/9 + 4/5)
    # k = 5 > 4 classes: every class predicted (calc_F1's `j < FP.shape[0]` guard): 5 TP of 12, recall 1
    got = top_k_prf(scores, labels, 5)
    assert (got["P"], got["R"], got["F1"]) == pytest.approx((100 * 5 / 12, 100.0, 100 * 10 / 17))
    # an image without a positive still makes k false positives; ties go to the lower class index
    got = top_k_prf(np.array([[0.5, 0.5, 0.5], [0.1, 0.2, 0.3]]), np.array([[-1, 1, -1], [-1, -1, -1]]), 1)
    assert (got["P"], got["R"], got["F1"]) == (0.0, 0.0, 0.0)
    got = top_k_prf(np.array([[0.5, 0.5, 0.5], [0.1, 0.2, 0.3]]), np.array([[1, -1, -1], [-1, -1, -1]]), 1)
    assert (got["P"], got["R"]) == pytest.approx((50.0, 100.0))


def _calc_f1_reference(gt, idxs, k, num_classes):
    """DualCoOp utils/helper.py:106-141 calc_F1, transcribed loop for loop (test-only, for comparison)."""
    tp, fp, class_samples = np.zeros(num_classes), np.zeros(num_classes), np.zeros(num_classes)
    for i in range(len(gt)):
        gt_label = list(np.where(gt[i])[0])
        tps = [elem in idxs[i][:k] for elem in gt_label]
        for j in range(len(gt_label)):
            tp[gt_label[j]] += tps[j]
            class_samples[gt_label[j]] += 1
        fps = [elem not in gt_label for elem in idxs[i][:k]]
        for j in range(k):
            if j < fp.shape[0]:
                fp[idxs[i][j]] += fps[j]
    p = np.nansum(tp) / (np.nansum(tp) + np.nansum(fp))
    r = np.nansum(tp) / np.nansum(class_samples)
    f1 = 0 if p == 0 or r == 0 else 2 * p * r / (p + r)
    return 100 * p, 100 * r, 100 * f1


@pytest.mark.parametrize("k", [3, 5])
def test_top_k_prf_equals_reference_loop(k):
    from bench.analysis.metrics import top_k_prf, zsl_metrics

    rng = np.random.default_rng(5)
    scores = rng.random((40, 7))
    labels = _labels(rng, 40, 7, 0.3)
    expected = _calc_f1_reference((labels == 1).astype(int), np.argsort(-scores, axis=1), k, 7)
    got = top_k_prf(scores, labels, k)
    assert (got["P"], got["R"], got["F1"]) == pytest.approx(expected)
    block = zsl_metrics(scores, labels, [f"c{i}" for i in range(7)])
    assert block[f"F1@{k}"] == pytest.approx(expected[2])
    assert block["mAP"] == pytest.approx(multilabel_metrics(scores, labels)["mAP"])

"""The shared multi-label losses (methods/_parts/losses.py) against values worked out by hand."""

import math

import pytest
import torch

from bench.methods._parts.losses import asymmetric_loss, ranking_loss


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_asl_one_by_three_with_an_unknown_entry():
    logits = torch.tensor([[2.0, -1.0, 0.5]], requires_grad=True)
    targets = torch.tensor([[1.0, -1.0, 0.0]])  # positive, negative, unknown
    # by hand (DualCoOp utils/asymmetric_loss.py): gamma_pos 1, gamma_neg 2, clip 0.05, sum; unknown dropped
    p_pos = _sigmoid(2.0)
    positive_term = math.log(p_pos) * (1 - p_pos) ** 1
    p_neg = min(1 - _sigmoid(-1.0) + 0.05, 1.0)  # the negative probability, shifted by the clip
    negative_term = math.log(p_neg) * (1 - p_neg) ** 2
    expected = -(positive_term + negative_term)
    loss = asymmetric_loss(logits, targets, gamma_neg=2.0, gamma_pos=1.0, clip=0.05)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)

    # the focusing weights carry no gradient: d/dx of -log(sigmoid(x)) * w with w held fixed is -(1 - p) * w
    loss.backward()
    assert float(logits.grad[0, 0]) == pytest.approx(-(1 - p_pos) * (1 - p_pos), rel=1e-5)
    p = _sigmoid(-1.0)  # d/dx log(1 - sigmoid(x) + clip) = -p (1 - p) / (1 - p + clip)
    assert float(logits.grad[0, 1]) == pytest.approx(p * (1 - p) / (1 - p + 0.05) * (1 - p_neg) ** 2, rel=1e-5)
    assert float(logits.grad[0, 2]) == 0.0  # the unknown entry does not train

    # a negative scored far below zero: 1 - p + clip > 1 is capped at 1, log 1 = 0, so it costs nothing
    capped = asymmetric_loss(torch.tensor([[-6.0]]), torch.tensor([[-1.0]]), gamma_neg=2.0, gamma_pos=1.0, clip=0.05)
    assert float(capped) == 0.0


def test_asl_is_dualcoop_softmax_over_negative_and_positive_logits_and_a_sum():
    # DualCoOp scores a class with the softmax over (l_neg, l_pos); callers pass l_pos - l_neg
    l_neg, l_pos = 0.2, 1.3
    p_pos = math.exp(l_pos) / (math.exp(l_neg) + math.exp(l_pos))
    expected_positive = -math.log(p_pos) * (1 - p_pos)
    got = asymmetric_loss(torch.tensor([[l_pos - l_neg]]), torch.tensor([[1.0]]), gamma_neg=2.0, gamma_pos=1.0)
    assert float(got) == pytest.approx(expected_positive, rel=1e-6)
    # a sum over entries, not a mean: two copies of the batch cost twice as much
    logits, targets = torch.tensor([[1.1, -0.3]]), torch.tensor([[1.0, -1.0]])
    once = asymmetric_loss(logits, targets)
    twice = asymmetric_loss(torch.cat([logits, logits]), torch.cat([targets, targets]))
    assert float(twice) == pytest.approx(2 * float(once), rel=1e-6)


def test_ranking_loss_tiny_batch_by_hand():
    scores = torch.tensor([[0.5, 1.0, 9.0, 0.2],
                           [2.0, 0.0, 1.5, -1.0]])
    targets = torch.tensor([[1.0, -1.0, 0.0, -1.0],  # positive {0}, negatives {1, 3}; class 2 unknown (its 9 ignored)
                            [1.0, 1.0, -1.0, 0.0]])  # positives {0, 1}, negative {2}; class 3 unknown
    # sample 1: (0,1) max(0, 1 - 0.5 + 1.0) = 1.5, (0,3) max(0, 1 - 0.5 + 0.2) = 0.7  -> 2.2
    # sample 2: (0,2) max(0, 1 - 2.0 + 1.5) = 0.5, (1,2) max(0, 1 - 0.0 + 1.5) = 2.5 -> 3.0
    assert float(ranking_loss(scores, targets, margin=1.0)) == pytest.approx((2.2 + 3.0) / 2, rel=1e-6)
    # margin 0.5: sample 1 gives 1.0 + 0.2, sample 2 gives 0.0 (clipped) + 2.0
    assert float(ranking_loss(scores, targets, margin=0.5)) == pytest.approx((1.2 + 2.0) / 2, rel=1e-6)
    # an image with no known positive contributes 0 but still counts in the batch mean
    none = torch.tensor([[-1.0, -1.0, 0.0, 0.0]])
    both = ranking_loss(torch.cat([scores[:1], scores[:1]]), torch.cat([targets[:1], none]))
    assert float(both) == pytest.approx(2.2 / 2, rel=1e-6)


@pytest.mark.parametrize("integer_scores", [False, True])
def test_ranking_loss_in_chunks_equals_the_dense_pairs_and_their_gradient(monkeypatch, integer_scores):
    """Past RANKING_ELEMENTS the [B, C, C] pairs are taken a few samples at a time with the gradient computed in
    the same pass: the loss is the dense one's, the gradient autograd's (ties at the margin included: integer
    scores make margin - s_i + s_j == 0 pairs), and the graph keeps only [B, C]."""
    import bench.methods._parts.losses as losses

    torch.manual_seed(3)
    scores = torch.randn(8, 25) * 2
    if integer_scores:
        scores = scores.round()
    targets = torch.randint(-1, 2, (8, 25))
    dense_in = scores.clone().requires_grad_()
    dense = ranking_loss(dense_in, targets)
    dense.backward()
    monkeypatch.setattr(losses, "RANKING_ELEMENTS", 3 * 25 * 25)  # 3 samples at a time: chunks 3, 3, 2
    chunked_in = scores.clone().requires_grad_()
    chunked = ranking_loss(chunked_in, targets)
    assert type(chunked.grad_fn).__name__ == "_ChunkedRankingBackward"
    chunked.backward()
    assert torch.equal(chunked, dense)
    torch.testing.assert_close(chunked_in.grad, dense_in.grad, atol=1e-6, rtol=0)  # counts / 8: exact here
    # by hand for one sample: positives {0}, negatives {1, 2}, margin 1
    s = torch.tensor([[2.0, 1.5, -3.0, 9.0]], requires_grad=True)
    monkeypatch.setattr(losses, "RANKING_ELEMENTS", 1)
    loss = ranking_loss(s, torch.tensor([[1, -1, -1, 0]]))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.5) and s.grad.tolist() == [[-1.0, 1.0, 0.0, 0.0]]

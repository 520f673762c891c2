"""Multi-label losses of the reference methods, on bench targets {1 positive, 0 unknown, -1 negative}."""

from __future__ import annotations

import torch


def asymmetric_loss(logits: torch.Tensor, targets: torch.Tensor, gamma_neg: float = 2.0, gamma_pos: float = 1.0,
                    clip: float = 0.05, eps: float = 1e-8) -> torch.Tensor:
    """Asymmetric loss (Ridnik et al. 2021) as DualCoOp computes it (``utils/asymmetric_loss.py``).

    ``logits`` [B, C] is one logit per class: DualCoOp's softmax over (negative, positive) prompt
    logits equals sigmoid(positive - negative), so callers pass that difference. Unknown entries
    (0) are dropped; the negative probability is shifted by ``clip`` and capped at 1; the focusing
    weights (1 - p_t)^gamma are computed without gradient; the result is a **sum** over the known
    entries (DualCoOp does not average; its ``loss_w`` rescales it).
    """
    known = targets != 0
    positive = (targets[known] > 0).to(logits.dtype)
    p_pos = torch.sigmoid(logits[known])
    p_neg = 1.0 - p_pos
    if clip and clip > 0:
        p_neg = (p_neg + clip).clamp(max=1.0)
    loss = positive * torch.log(p_pos.clamp(min=eps)) + (1 - positive) * torch.log(p_neg.clamp(min=eps))
    if gamma_neg > 0 or gamma_pos > 0:
        with torch.no_grad():
            p_t = p_pos * positive + p_neg * (1 - positive)
            weight = torch.pow(1 - p_t, gamma_pos * positive + gamma_neg * (1 - positive))
        loss = loss * weight
    return -loss.sum()


RANKING_ELEMENTS = 1 << 24  # (sample, i, j) pairs held at once (64 MB per fp32 temporary): memory, never numbers


def ranking_loss(scores: torch.Tensor, targets: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """TaI-DPT's ranking loss (``trainers/utils.py``): per sample, the sum over every
    (positive i, negative j) pair of max(0, margin - s_i + s_j), averaged over the batch.

    Unknown entries (0) are in neither set. Applied to logits already multiplied by the method's
    scale (4 in TaI-DPT), so the margin is in scaled units. The pairs are a [B, C, C] tensor: at 80
    classes it is small and autograd differentiates it as written; past ``RANKING_ELEMENTS`` (NUS-WIDE's
    1,006 zsl classes: 1M pairs per sample, 9.6 GB of temporaries for one TaI-DPT batch) it is taken a few
    samples at a time by :class:`_ChunkedRanking`, which keeps only the gradient [B, C].
    """
    pos = (targets > 0).to(scores.dtype)
    neg = (targets < 0).to(scores.dtype)
    if scores.shape[0] * scores.shape[1] ** 2 > RANKING_ELEMENTS:
        return _ChunkedRanking.apply(scores, pos, neg, float(margin))
    hinge = (margin - scores[:, :, None] + scores[:, None, :]).clamp(min=0)  # [B, i, j]: i positive, j negative
    return (hinge * pos[:, :, None] * neg[:, None, :]).sum(dim=(1, 2)).mean()


class _ChunkedRanking(torch.autograd.Function):
    """:func:`ranking_loss` over chunks of samples, with its gradient computed in the same pass: d/ds_i of a
    sample's loss is minus the number of its negatives j whose hinge margin - s_i + s_j is > 0 (clamp's
    subgradient as autograd takes it: 0 at 0) for a positive i, plus the number of such positives for a negative j;
    counts are exact in floating point, and the mean divides by B."""

    @staticmethod
    def forward(ctx, scores, pos, neg, margin):
        step = max(1, RANKING_ELEMENTS // scores.shape[1] ** 2)
        losses, grads = [], []
        for s, p, n in zip(scores.detach().split(step), pos.split(step), neg.split(step)):
            raw = margin - s[:, :, None] + s[:, None, :]
            pair = p[:, :, None] * n[:, None, :]
            losses.append((raw.clamp(min=0) * pair).sum(dim=(1, 2)))
            active = (raw > 0).to(s.dtype) * pair
            grads.append(active.sum(dim=1) - active.sum(dim=2))  # as a negative j, minus as a positive i
        ctx.save_for_backward(torch.cat(grads) / scores.shape[0])
        return torch.cat(losses).mean()

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad_output * grad, None, None, None

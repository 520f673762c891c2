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


def ranking_loss(scores: torch.Tensor, targets: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """TaI-DPT's ranking loss (``trainers/utils.py``): per sample, the sum over every
    (positive i, negative j) pair of max(0, margin - s_i + s_j), averaged over the batch.

    Unknown entries (0) are in neither set. Applied to logits already multiplied by the method's
    scale (4 in TaI-DPT), so the margin is in scaled units.
    """
    pos = (targets > 0).to(scores.dtype)
    neg = (targets < 0).to(scores.dtype)
    hinge = (margin - scores[:, :, None] + scores[:, None, :]).clamp(min=0)  # [B, i, j]: i positive, j negative
    return (hinge * pos[:, :, None] * neg[:, None, :]).sum(dim=(1, 2)).mean()

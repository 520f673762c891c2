"""mAP on a validation set, in torch and batched over candidate score matrices: the selection metric
of the hyperparameter searches in ``methods/tip_adapter.py`` and ``methods/linear_probe.py``."""

from __future__ import annotations

import numpy as np
import torch

MAP_ELEMENTS = 1 << 23  # score entries ranked at once (its temporaries take ~80 bytes each): memory, never numbers


def mean_average_precision(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """mAP in % of ``scores`` [..., N, C] against ``labels`` [N, C] in {1, 0 (unknown), -1}; returns [...].

    The same number as ``bench.analysis.metrics`` (per class over its known entries only; a group of tied
    scores is one threshold, as scikit-learn's ``average_precision_score``; a class without a known
    positive is left out of the mean), vectorised over classes and leading dimensions so a grid
    search evaluates many settings per call. NaN where no class has a known positive. The leading
    dimensions are ranked ``MAP_ELEMENTS`` score entries at a time (Tip-Adapter's 20 alphas x a 16k-image
    COCO validation set x 80 classes took 1.7 GB of temporaries at once).
    """
    if scores.ndim > 2:
        flat = scores.reshape(-1, *scores.shape[-2:])
        step = max(1, MAP_ELEMENTS // max(1, scores.shape[-2] * scores.shape[-1]))
        if len(flat) > step:
            return torch.cat([_map(flat[i:i + step], labels) for i in range(0, len(flat), step)]
                             ).reshape(scores.shape[:-2])
    return _map(scores, labels)


def _map(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    known = labels != 0
    # sorted along the last axis, [..., C, N]: numpy sorts contiguous rows ~1.7x faster than strided columns
    ranked = torch.where(known, scores, -torch.inf).transpose(-1, -2).contiguous()
    if ranked.device.type == "cpu":  # numpy's sort is ~4x faster than torch's on CPU (the toy world's searches)
        order = torch.from_numpy(np.argsort(-ranked.numpy(), axis=-1))
    else:
        order = torch.argsort(ranked, dim=-1, descending=True)
    ranked = ranked.gather(-1, order)
    hits = (labels == 1).T.double().expand_as(ranked).gather(-1, order)
    tp = hits.cumsum(-1)  # true positives in the top i + 1
    group_end = torch.ones_like(hits, dtype=torch.bool)  # last entry of each group of tied scores
    group_end[..., :-1] = ranked[..., :-1] != ranked[..., 1:]
    tp_at_end = torch.where(group_end, tp, 0.0)
    tp_before = torch.cat([torch.zeros_like(tp[..., :1]), tp_at_end.cummax(-1).values[..., :-1]], dim=-1)
    rank = torch.arange(1, tp.shape[-1] + 1, dtype=tp.dtype, device=tp.device)
    # sum over thresholds of precision x recall gained there (``bench.analysis.metrics.average_precision``)
    n_pos = hits.sum(-1)
    ap = (group_end * (tp / rank) * (tp - tp_before)).sum(-1) / n_pos
    return 100.0 * ap.where(n_pos > 0, torch.nan).nanmean(-1)

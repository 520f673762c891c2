"""The multi-label metrics of :mod:`bench.analysis.metrics` as an mmengine metric.

Kept apart from :mod:`bench.analysis.metrics` so that reading records (``bench report``, :mod:`bench.analysis.stats`)
does not import mmengine and torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from bench.analysis.metrics import multilabel_metrics


class MultiLabelMetric(BaseMetric):
    """mAP and F1 scores as an mmengine metric (accumulate per batch, reduce at the end).

    ``process`` takes the model's ``predict`` output: a list of (scores [B, C], targets [B, C]).
    ``compute_metrics`` returns a flat dict of floats (mAP, CP/CR/CF1/OP/OR/OF1 at top-k and threshold).
    """

    default_prefix = "mlr"

    def __init__(self, classnames: Sequence[str] | None = None, top_k: int = 3, threshold: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.classnames, self.top_k, self.threshold = classnames, top_k, threshold

    def process(self, data_batch, data_samples) -> None:
        for scores, targets in data_samples:
            self.results.append((np.asarray(scores, dtype=np.float64), np.asarray(targets)))

    def compute_metrics(self, results: list) -> dict[str, float]:
        scores = np.concatenate([s for s, _ in results])
        labels = np.concatenate([t for _, t in results])
        out = multilabel_metrics(scores, labels, self.classnames, top_k=self.top_k, threshold=self.threshold)
        return {k: v for k, v in out.items() if isinstance(v, float)}

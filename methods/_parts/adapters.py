"""CLIP-Adapter's residual bottleneck adapter (Gao et al., IJCV 2023; gaopengcuhk/CLIP-Adapter @08d07f8
``clip_adapter.py``), used by ``clip_adapter`` on the global image feature and by T2I-PAL on its image features."""

from __future__ import annotations

import torch
from torch import nn


class ResidualAdapter(nn.Module):
    """alpha * MLP(x) + (1 - alpha) * x, MLP = Linear(D, D/r, no bias), ReLU, Linear(D/r, D, no bias), ReLU.

    The MLP is ``clip_adapter.py:55-67`` (``Adapter(c_in, reduction=4)``), the mix ``clip_adapter.py:102-105``
    (``ratio = 0.2``).
    """

    def __init__(self, dim: int, alpha: float, reduction: int = 4):
        super().__init__()
        self.alpha = alpha
        self.mlp = nn.Sequential(nn.Linear(dim, dim // reduction, bias=False), nn.ReLU(inplace=True),
                                 nn.Linear(dim // reduction, dim, bias=False), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * self.mlp(x) + (1 - self.alpha) * x

"""What the cells of one run share: the config, the dataset and its loaded splits, loaded backbones, and the
feature cache (with the config's extraction batch size and workers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.backbone import load_backbone, resolve_spec
from bench.cache import FeatureCache
from bench.config import to_plain
from bench.data.base import DataError, Split
from bench.registry import DATASETS, build


class Session:
    """What cells of one run share: datasets, loaded backbones, the feature cache."""

    def __init__(self, cfg, work_dir: str | Path, device: str | None = None, progress: bool = True):
        self.cfg = cfg
        self.work_dir = Path(work_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.progress = progress
        runtime = cfg.get("runtime", {}) or {}
        # "test" for results; "val" to tune hyperparameters without touching the test split (toy world:
        # minival2014). Recorded in every record (config.eval_split).
        self.eval_split = runtime.get("eval_split", "test")
        self.cache = FeatureCache(runtime.get("cache_dir") or self.work_dir.parent / "cache", progress=progress)
        self.dataset = build(DATASETS, to_plain(cfg.dataset))
        if self.eval_split != "test" and not self.dataset.has_split(self.eval_split):
            raise DataError(f"{self.dataset.name} has no {self.eval_split!r} split to evaluate on")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cfg.dump(str(self.work_dir / "config.py"))  # the whole run's config, --cfg-options applied
        self._splits: dict[str, Split] = {}
        self._backbones: dict = {}

    def split(self, name: str) -> Split:
        """The dataset's split ``name``, loaded once per run."""
        if name not in self._splits:
            self._splits[name] = self.dataset.load(name)
        return self._splits[name]

    def backbone(self, overrides: dict | None = None):
        """The config's backbone with a method's ``overrides`` (e.g. another model or input size), loaded once."""
        spec = resolve_spec({**to_plain(self.cfg.backbone), **(overrides or {})})
        if spec not in self._backbones:
            amp = (self.cfg.get("runtime", {}) or {}).get("amp")
            self._backbones[spec] = load_backbone(spec, device=self.device, amp=amp)
        return self._backbones[spec]

    def image_features(self, backbone, paths: list[str], kinds, desc: str, **kw) -> dict[str, np.ndarray]:
        """The cache's features of ``paths``, extracted with the config's ``features`` batch size and workers."""
        feats = self.cfg.get("features", {}) or {}
        return self.cache.image_features(backbone, paths, kinds, batch_size=feats.get("batch_size", 64),
                                         num_workers=feats.get("num_workers", 0), desc=desc, **kw)

    def split_features(self, backbone, split: Split, kinds, **kw) -> dict[str, np.ndarray]:
        """The cache's features of every image of ``split`` (see :meth:`image_features`)."""
        return self.image_features(backbone, split.image_paths, kinds, f"{split.dataset}/{split.split} features", **kw)

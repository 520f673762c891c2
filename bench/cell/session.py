"""What the cells of one run share: the config, the dataset and its loaded splits and their content digests,
loaded backbones, and the feature cache (with the config's extraction batch size and workers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.cell.datakey import DataKeys, cache_root
from bench.config import to_plain
from bench.data.base import DataError, Split
from bench.errors import BackboneError, SharedBackboneError
from bench.features.backbone import load_backbone
from bench.features.cache import FeatureCache
from bench.features.spec import resolve_spec
from bench.features.standin import is_standin, load_standin
from bench.io import atomic_write_text
from bench.phases import timed
from bench.registry import DATASETS, build


def write_run_config(cfg, work_dir: Path) -> None:
    """The whole run's config, --cfg-options applied, as ``<run>/config.py`` (``bench status`` reads it); not rewritten
    when unchanged (a rerun with nothing to compute writes nothing, so it also works in a read-only work dir)."""
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    text, dumped = cfg.dump(), Path(work_dir) / "config.py"
    if not dumped.is_file() or dumped.read_text() != text:
        atomic_write_text(dumped, text)


class Session:
    """What cells of one run share: datasets, loaded backbones, the feature cache."""

    def __init__(self, cfg, work_dir: str | Path, device: str | None = None, progress: bool = True,
                 rebuild_features: bool = False, record_config: bool = True):
        self.cfg = cfg
        self.work_dir = Path(work_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.progress = progress
        runtime = cfg.get("runtime", {}) or {}
        # "test" for results; "val" to tune hyperparameters without touching the test split (toy world:
        # minival2014). Recorded in every record (config.eval_split).
        self.eval_split = runtime.get("eval_split", "test")
        self.cache = FeatureCache(cache_root(cfg, self.work_dir), progress=progress, rebuild=rebuild_features)
        self.dataset = build(DATASETS, to_plain(cfg.dataset))
        if self.eval_split != "test" and not self.dataset.has_split(self.eval_split):
            raise DataError(f"{self.dataset.name} has no {self.eval_split!r} split to evaluate on")
        if record_config:  # (not by a reader such as `bench status`)
            write_run_config(cfg, self.work_dir)
        self._splits: dict[str, Split] = {}
        self._zsl_classes = None
        self._backbones: dict = {}
        self._backbone_errors: dict = {}
        # what records are keyed by besides their config: the content of the data (bench.cell.datakey)
        self.data = DataKeys(self.dataset, self._keyed_split, self.cache.file_hashes)
        # (backbone spec, image set, views) -> every kind the run reads from that set (bench.grid.selection's
        # feature_needs): the first encoder pass over a set stores them all, so no later consumer encodes them again
        self.feature_needs: dict[tuple, set[str]] = {}
        self._parsed: dict[tuple, tuple] = {}

    def shared_state(self) -> dict:
        """What a worker process's session of the same run can adopt instead of computing it again (bench/grid/jobs.py):
        the loaded splits and the parsed caption corpus (parsing imports inflect: ~5 s)."""
        return {"splits": self._splits, "parsed": self._parsed}

    def adopt(self, state: dict) -> None:
        """Take over :meth:`shared_state` of the parent process's session (same config and data)."""
        self._splits.update(state["splits"])
        self._parsed.update(state["parsed"])

    def _keyed_split(self, name: str) -> Split:
        """A split by its data-key name: ``zsl:<name>`` as read for the zsl setting, else ``name``."""
        return self.zsl_split(name[4:]) if name.startswith("zsl:") else self.split(name)

    def split(self, name: str) -> Split:
        """The dataset's split ``name``, loaded once per run."""
        if name not in self._splits:
            with timed("read annotations"):
                self._splits[name] = self.dataset.load(name)
        return self._splits[name]

    def zsl_split(self, name: str) -> Split:
        """A split with the dataset's class list of the zsl setting (NUS-WIDE: tags + concepts; else ``split``)."""
        if not hasattr(self.dataset, "load_zsl"):
            return self.split(name)
        if f"zsl:{name}" not in self._splits:
            with timed("read annotations"):
                self._splits[f"zsl:{name}"] = self.dataset.load_zsl(name)
        return self._splits[f"zsl:{name}"]

    def zsl_classes(self):
        """The dataset's seen/unseen split (``dataset.zsl_split``), checked against its class list (bench.cell.zsl)."""
        from bench.cell.zsl import resolve_classes

        if self._zsl_classes is None:
            self._zsl_classes = resolve_classes(self.dataset, self.zsl_split(self.eval_split))
        return self._zsl_classes

    def parsed_corpus(self, classnames: list[str]) -> tuple:
        """(parser, captions naming a class, their labels [M, C] in {1, -1}, corpus size): the dataset's
        training caption corpus through the caption parser for ``classnames``, once per run and class list
        (every caption- or generation-trained cell and the diagnostics read it; the toy corpus takes about
        a second to parse)."""
        key = tuple(classnames)
        if key not in self._parsed:
            from bench.data.captions import CaptionParser

            parser = CaptionParser.from_file(self.dataset.synonyms, list(classnames))
            corpus = self.dataset.caption_corpus()
            self._parsed[key] = (parser, *parser.parse_corpus(corpus), len(corpus))
        return self._parsed[key]

    def backbone(self, overrides: dict | None = None, spec=None):
        """The config's backbone with a method's ``overrides`` (e.g. another model or input size), or the one of
        a given ``spec``; loaded once (a :class:`~bench.errors.BackboneError` too: raised again, not retried; for the
        config's own backbone a :class:`~bench.errors.SharedBackboneError`, which stops the run)."""
        spec = spec or self.backbone_spec(overrides)
        if spec in self._backbone_errors:  # failed once in this run: every cell reading it fails at once, alike
            raise self._backbone_errors[spec]
        if spec not in self._backbones:
            amp = (self.cfg.get("runtime", {}) or {}).get("amp")
            load = load_standin if is_standin(spec.model) else load_backbone  # standin: timing only
            try:
                self._backbones[spec] = load(spec, device=self.device, amp=amp)
            except BackboneError as exc:
                shared = spec == self.backbone_spec()  # the config's own: every cell needs it, so the run stops
                self._backbone_errors[spec] = SharedBackboneError(str(exc)) if shared else exc
                if not shared:
                    raise
                raise self._backbone_errors[spec] from exc
        return self._backbones[spec]

    def backbone_spec(self, overrides: dict | None = None):
        """The :class:`~bench.features.spec.BackboneSpec` of the config's backbone with a method's ``overrides``."""
        return resolve_spec({**to_plain(self.cfg.backbone), **(overrides or {})})

    def image_features(self, backbone, paths: list[str], kinds, desc: str, image_set: str | None = None,
                       **kw) -> dict[str, np.ndarray]:
        """The cache's features of ``paths``, extracted with the config's ``features`` batch size and workers.

        ``image_set`` ("eval", "train", "generated"): what the images are, so the encoder pass that
        extracts them also stores the other kinds the run will read from them (``feature_needs``)."""
        feats = self.cfg.get("features", {}) or {}
        # keyed by the spec as configured (the loaded backbone's own spec may resolve defaults, e.g. quick_gelu)
        spec = next((planned for planned, loaded in self._backbones.items() if loaded is backbone), backbone.spec)
        need = self.feature_needs.get((spec, image_set, int(kw.get("views", 1))), set())
        return self.cache.image_features(backbone, paths, kinds, also=sorted(need - set(kinds)),
                                         batch_size=feats.get("batch_size", 64),
                                         num_workers=feats.get("num_workers", 0), desc=desc, **kw)

    def split_features(self, backbone, split: Split, kinds, **kw) -> dict[str, np.ndarray]:
        """The cache's features of every image of ``split`` (see :meth:`image_features`)."""
        image_set = "eval" if split.split == self.eval_split else split.split
        return self.image_features(backbone, split.image_paths, kinds, f"{split.dataset}/{split.split} features",
                                   where=f"{split.dataset}/{split.split}", image_set=image_set, **kw)

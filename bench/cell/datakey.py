"""The content of the data a cell reads, as a digest its record is keyed by (besides its config hash), and
the image content hashes it is made of (the feature cache's keys: :class:`bench.features.hashes.FileHashes`).
No torch.

A record is "done" only while its config hash *and* this data key match: an edited annotation file, a
replaced image or a changed image list makes it stale, and a rerun recomputes it. What a cell reads:

- the evaluation split, always;
- the ``train`` split, when the method trains on images (partial labels and few-shot subsets are
  drawn from it);
- the caption corpus and the caption parser's synonym lists, when it trains on captions or on
  images generated from them;
- in the ``zsl`` setting, the splits as read for it (``zsl:<split>``: NUS-WIDE's tag columns; the
  seen/unseen class split file is in the config hash already).

A split's digest covers what its reader made of the annotation files (class names, image ids and
paths, the label matrix, the captions), so any edit that changes what bench sees changes the key,
and a reformatted file that reads the same does not; and the images' content, through the feature
cache's sha1 of each image file (memoised by path, size and mtime in the cache's sqlite index, the
same hashes that key the cached features: image bytes are hashed once, not twice). Each digest is
computed once per process (:class:`DataKeys`).

The code is not part of the key: the record carries the bench version and git commit; after changing
a method's code, rerun with ``--force``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.data.base import Split
from bench.features.hashes import FileHashes
from bench.phases import timed


def split_digest(split: Split, image_hashes: list[str]) -> str:
    """sha256 of a split's content: names, ids, paths, labels (dtype, shape, bytes), captions, image hashes."""
    h = hashlib.sha256()
    head = {"dataset": split.dataset, "split": split.split, "classnames": list(split.classnames),
            "image_ids": [str(i) for i in split.image_ids], "image_paths": list(split.image_paths),
            "captions": split.captions, "labels": [str(split.labels.dtype), list(split.labels.shape)]}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(split.labels).tobytes())
    h.update("\n".join(image_hashes).encode())
    return h.hexdigest()


def captions_digest(corpus: list[str], synonyms: dict) -> str:
    """sha256 of a caption corpus (in order) and the synonym lists it is parsed with."""
    h = hashlib.sha256(json.dumps(synonyms, sort_keys=True, default=str).encode())
    for caption in corpus:
        h.update(caption.encode())
        h.update(b"\0")
    return h.hexdigest()


def cache_root(cfg, work_dir: Path) -> Path:
    """The feature cache folder of a run: ``runtime.cache_dir``, else ``cache`` beside the run folder."""
    return Path((cfg.get("runtime", {}) or {}).get("cache_dir") or Path(work_dir).parent / "cache").expanduser()


def dry_run_keys(cfg, work_dir: Path) -> DataKeys:
    """A run's :class:`DataKeys` without a session (``bench run --dry-run``): the dataset is read, and its
    images hashed (memoised in the feature cache's index), only when a digest is asked for."""
    import functools

    from bench.config import to_plain
    from bench.registry import DATASETS, build

    dataset = build(DATASETS, to_plain(cfg.dataset))
    hashes: list[FileHashes] = []

    @functools.cache
    def load(name: str) -> Split:  # zsl:<name>: as read for the zsl setting (bench.cell.session.Session.zsl_split)
        if name.startswith("zsl:"):
            return dataset.load_zsl(name[4:]) if hasattr(dataset, "load_zsl") else load(name[4:])
        return dataset.load(name)

    def file_hashes(paths: list[str]) -> list[str]:
        if not hashes:
            hashes.append(FileHashes(cache_root(cfg, work_dir) / "file_hashes.sqlite"))
        return hashes[0](paths, progress=False)

    return DataKeys(dataset, load, file_hashes)


class DataKeys:
    """Digests of one dataset's splits and caption corpus, each computed once per process.

    ``split(name)`` loads a split (the session's memoised loader; ``zsl:<name>`` as read for the zsl
    setting); ``file_hashes(paths)`` returns the content hash of each image (the feature cache's).
    """

    def __init__(self, dataset, split: Callable[[str], Split], file_hashes: Callable[[list[str]], list[str]]):
        self.dataset, self._split, self._file_hashes = dataset, split, file_hashes
        self._digests: dict[str, str] = {}

    def load_split(self, name: str) -> Split:
        """The split itself (memoised by the loader; ``zsl:<name>`` as read for the zsl setting)."""
        return self._split(name)

    def split(self, name: str) -> str:
        if name not in self._digests:
            split = self._split(name)
            with timed("data key"):
                self._digests[name] = split_digest(split, self._file_hashes(list(split.image_paths)))
        return self._digests[name]

    def captions(self) -> str:
        if "captions" not in self._digests:
            from bench.data.captions import load_synonyms

            corpus = self.dataset.caption_corpus()
            with timed("data key"):
                self._digests["captions"] = captions_digest(corpus, load_synonyms(self.dataset.synonyms))
        return self._digests["captions"]

    def for_cell(self, trains_on: str | None, eval_split: str, setting: str | None = None) -> dict[str, str]:
        """The digests of what a cell of a method that ``trains_on`` reads in ``setting``, by part
        (``eval:<split>``, ``train``, ``captions``), and ``key``: one digest of them all (16 hex digits)."""
        prefix = "zsl:" if setting == "zsl" else ""
        parts = {f"eval:{eval_split}": self.split(prefix + eval_split)}
        if trains_on == "images":
            parts["train"] = self.split(prefix + "train")
        if trains_on in ("captions", "generated"):
            parts["captions"] = self.captions()
        key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
        return {"key": key, **parts}

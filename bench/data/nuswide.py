"""NUS-WIDE (81 concepts) in the official release layout read by TaI-DPT:

    <data_root>/Concepts81.txt                          81 concept names, one per line
    <data_root>/ImageList/{Train,Test}Imagelist.txt     image paths, e.g. ``actor\\0001_2124494179.jpg``
    <data_root>/TrainTestLabels/Labels_<concept>_{Train,Test}.txt   one 0/1 per image, aligned with the list
    <data_root>/Flickr/<subdir>/<image>.jpg

Label 1 -> positive, 0 -> negative. Images listed but missing on disk are common in NUS-WIDE
mirrors; ``skip_missing=True`` drops them (the count is kept in ``missing``), otherwise a missing
image is an error at feature extraction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data.base import NEGATIVE, POSITIVE, DataError, Split, require_dir, require_file
from bench.data.coco import coco_captions
from bench.registry import DATASETS

NUS_HINT = "see README 'Real datasets' for the NUS-WIDE files; pass --data-root /path/to/NUS-WIDE"


@DATASETS.register_module(name="nuswide")
class NUSWIDE:
    """NUS-WIDE multi-label recognition on the 81 human-annotated concepts."""

    name = "nuswide"
    synonyms = "nuswide"
    split_files = {"train": "Train", "test": "Test"}

    def __init__(self, data_root: str, skip_missing: bool = False, caption_files: tuple = (),
                 synonyms: str | None = None):
        self.data_root = Path(data_root).expanduser()
        if synonyms:  # a user's synonym file (path) or another built-in list, for caption parsing
            self.synonyms = synonyms
        self.skip_missing = skip_missing
        self.caption_files = tuple(caption_files)
        self.missing = 0

    def options(self) -> dict:
        return {"data_root": str(self.data_root), "skip_missing": self.skip_missing,
                "caption_files": list(self.caption_files), "synonyms": self.synonyms}

    def has_split(self, split: str) -> bool:
        return split in self.split_files

    def load(self, split: str) -> Split:
        if split not in self.split_files:
            raise DataError(f"{self.name} has no split {split!r}; valid: {sorted(self.split_files)}")
        tag = self.split_files[split]
        root = require_dir(self.data_root, "NUS-WIDE data root", NUS_HINT)
        concepts = [c.strip() for c in require_file(root / "Concepts81.txt", "NUS-WIDE concept list",
                                                     NUS_HINT).read_text().splitlines() if c.strip()]
        listed = [ln.strip().replace("\\", "/") for ln in
                  require_file(root / "ImageList" / f"{tag}Imagelist.txt", "NUS-WIDE image list",
                               NUS_HINT).read_text().splitlines() if ln.strip()]
        labels = np.empty((len(listed), len(concepts)), dtype=np.int8)
        for c, concept in enumerate(concepts):
            path = require_file(root / "TrainTestLabels" / f"Labels_{concept}_{tag}.txt", "NUS-WIDE label file",
                                NUS_HINT)
            values = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
            if len(values) != len(listed) or not set(values) <= {"0", "1"}:
                raise DataError(f"{path}: expected {len(listed)} lines of 0/1 (one per image of "
                                f"{tag}Imagelist.txt), got {len(values)} lines")
            labels[:, c] = np.where(np.array(values) == "1", POSITIVE, NEGATIVE)
        paths = [str(root / "Flickr" / p) for p in listed]
        keep = np.ones(len(paths), bool)
        if self.skip_missing:
            keep = np.array([Path(p).is_file() for p in paths])
            self.missing = int((~keep).sum())
        return Split(dataset=self.name, split=split, image_paths=[p for p, k in zip(paths, keep) if k],
                     labels=labels[keep], classnames=concepts, captions=[[] for _ in range(int(keep.sum()))],
                     image_ids=[p for p, k in zip(listed, keep) if k])

    def caption_corpus(self) -> list[str]:
        """Captions from ``caption_files`` (TaI-DPT uses OpenImages localized narratives, .jsonl)."""
        import json

        if not self.caption_files:
            raise DataError("NUS-WIDE has no captions of its own; set dataset.caption_files to OpenImages "
                            "localized-narratives .jsonl files (TaI-DPT's corpus) or COCO caption json files")
        corpus: list[str] = []
        for name in self.caption_files:
            path = require_file(Path(name).expanduser(), "caption file")
            if path.suffix == ".jsonl":
                corpus += [json.loads(line)["caption"].strip() for line in path.read_text().splitlines() if line]
            else:
                corpus += coco_captions(path)
        return corpus

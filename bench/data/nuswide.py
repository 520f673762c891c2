"""NUS-WIDE (81 concepts) in the official release layout read by TaI-DPT:

    <data_root>/Concepts81.txt                          81 concept names, one per line
    <data_root>/ImageList/{Train,Test}Imagelist.txt     image paths, e.g. ``actor\\0001_2124494179.jpg``
    <data_root>/TrainTestLabels/Labels_<concept>_{Train,Test}.txt   one 0/1 per image, aligned with the list
    <data_root>/Flickr/<subdir>/<image>.jpg

For the zsl setting (:meth:`NUSWIDE.load_zsl`) the 1,000 Flickr tags come in as well:

    <data_root>/NUS_WID_Tags/TagList1k.txt              1,000 tag names, one per line
    <data_root>/NUS_WID_Tags/AllTags1k.txt              one row of 1,000 0/1 values per image of
    <data_root>/ImageList/Imagelist.txt                 every image (rows matched by <subdir>/<file>)

Label 1 -> positive, 0 -> negative. Images listed but missing on disk are common in NUS-WIDE
mirrors; ``skip_missing=True`` drops them (the count is kept in ``missing``), otherwise a missing
image is an error at feature extraction.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from bench.data.base import NEGATIVE, POSITIVE, DataError, Split, require_dir, require_file, split_name
from bench.data.coco import coco_captions
from bench.registry import DATASETS

NUS_HINT = "see README 'Real datasets' for the NUS-WIDE files; pass --data-root /path/to/NUS-WIDE"


@DATASETS.register_module(name="nuswide")
class NUSWIDE:
    """NUS-WIDE multi-label recognition on the 81 human-annotated concepts."""

    name = "nuswide"
    synonyms = "nuswide"
    split_files = {"train": "Train", "test": "Test"}
    official_sizes = {"train": 161_789, "test": 107_859, "classes": 81}  # listed images: the dry run's sizes

    def __init__(self, data_root: str, skip_missing: bool = False, caption_files: tuple = (),
                 synonyms: str | None = None, zsl_split: str | None = "nuswide_925_81"):
        self.data_root = Path(data_root).expanduser()
        self.zsl_split = zsl_split  # seen/unseen split of the zsl setting (bench/data/zsl/<name>.json or a path)
        if synonyms:  # a user's synonym file (path) or another built-in list, for caption parsing
            self.synonyms = synonyms
        self.skip_missing = skip_missing
        self.caption_files = tuple(caption_files)
        self.missing = 0

    def options(self) -> dict:
        return {"data_root": str(self.data_root), "skip_missing": self.skip_missing,
                "caption_files": list(self.caption_files), "synonyms": self.synonyms,
                "zsl_split": self.zsl_split}

    def has_split(self, split: str) -> bool:
        return split in self.split_files

    def load(self, split: str) -> Split:
        tag = split_name(self.name, split, self.split_files)
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
                     image_ids=[p for p, k in zip(listed, keep) if k],
                     source=str(root / "ImageList" / f"{tag}Imagelist.txt"))

    def load_zsl(self, split: str) -> Split:
        """The split labelled with the Flickr tags that are not concepts, then the 81 concepts: the class list
        of the zero-shot protocol (DualCoOp ``dataloaders/nus_wide.py:26-29``, 1,006 names = 925 tags + 81
        concepts; a tag that is also a concept is the concept's column)."""
        base = self.load(split)
        tag_dir = self.data_root / "NUS_WID_Tags"
        hint = "the zsl setting reads NUS-WIDE's Flickr tags (NUS_WID_Tags from the official download)"
        tags = [t.strip() for t in require_file(tag_dir / "TagList1k.txt", "NUS-WIDE tag list", hint)
                .read_text().splitlines() if t.strip()]
        everything = [image_key(ln) for ln in require_file(self.data_root / "ImageList" / "Imagelist.txt",
                                                           "NUS-WIDE image list", hint).read_text().splitlines()
                      if ln.strip()]
        row_of = {key: i for i, key in enumerate(everything)}
        missing = [p for p in base.image_ids if image_key(p) not in row_of]
        if missing:
            raise DataError(f"{len(missing)} {split} image(s) not in {self.data_root / 'ImageList' / 'Imagelist.txt'}, "
                            f"e.g. {missing[0]}")
        wanted = {row_of[image_key(p)]: j for j, p in enumerate(base.image_ids)}
        matrix_path = require_file(tag_dir / "AllTags1k.txt", "NUS-WIDE tag matrix", hint)
        values = np.zeros((len(base), len(tags)), dtype=np.int8)
        n_rows = 0
        with open(matrix_path) as f:  # streamed: the full matrix is 269,648 rows
            for i, line in enumerate(f):
                n_rows += 1
                if i in wanted:
                    row = line.split()
                    if len(row) != len(tags):
                        raise DataError(f"{matrix_path}:{i + 1}: {len(row)} values, expected {len(tags)} "
                                        "(one 0/1 per tag of TagList1k.txt)")
                    values[wanted[i]] = np.array(row, dtype=np.int8)
        if n_rows != len(everything):
            raise DataError(f"{matrix_path}: {n_rows} rows, but ImageList/Imagelist.txt lists {len(everything)} "
                            "images (one row per image expected)")
        concepts = set(base.classnames)
        keep = [i for i, t in enumerate(tags) if t not in concepts]
        tag_labels = np.where(values[:, keep] == 1, POSITIVE, NEGATIVE).astype(np.int8)
        return dataclasses.replace(base, labels=np.concatenate([tag_labels, base.labels], axis=1),
                                   classnames=[tags[i] for i in keep] + base.classnames)

    def caption_corpus(self) -> list[str]:
        """Captions from ``caption_files`` (TaI-DPT uses OpenImages localized narratives, .jsonl)."""
        import json

        corpus: list[str] = []
        for name, hint in self.caption_sources():
            path = require_file(name, "caption file", hint)
            if path.suffix == ".jsonl":
                corpus += [json.loads(line)["caption"].strip() for line in path.read_text().splitlines() if line]
            else:
                corpus += coco_captions(path, hint=hint)
        return corpus

    def caption_sources(self) -> list[tuple[Path, str]]:
        """(file, how to supply it) for each file of ``caption_files``."""
        if not self.caption_files:
            raise DataError("NUS-WIDE has no captions of its own; set dataset.caption_files to OpenImages "
                            "localized-narratives .jsonl files (TaI-DPT's corpus) or COCO caption json files")
        return [(Path(name).expanduser(), "listed in dataset.caption_files") for name in self.caption_files]


def image_key(line: str) -> str:
    """``<subdir>/<file>`` of an image list line (the lists write ``actor\\0001.jpg`` or
    ``C:\\ImageData\\Flickr\\actor\\0001.jpg``)."""
    return "/".join(line.strip().replace("\\", "/").split("/")[-2:])

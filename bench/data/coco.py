"""MS-COCO 2014 in its official layout (also the layout the toy world is written in).

    <data_root>/annotations/instances_{train,val}2014.json
    <data_root>/annotations/captions_{train,val}2014.json     (optional; needed by caption-trained methods)
    <data_root>/{train,val}2014/<file_name>

Splits: ``train`` = train2014, ``test`` = val2014 (as DualCoOp and TaI-DPT), and ``val`` =
``minival2014`` when ``instances_minival2014.json`` exists (the toy world writes one); without it
the runner holds out part of the training images. The 80 categories are sorted by COCO id and
numbered 0..79 (the standard order of both references). Labels are 1 where the image has an
instance of the class, else -1. By default only images with at least one instance are kept
(DualCoOp: 82,081 train / 40,137 test); ``keep_unannotated=True`` keeps all ids as all-negative
rows, as TaI-DPT's evaluation does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.data.base import NEGATIVE, POSITIVE, DataError, Split, repeated_values, require_dir, require_file, split_name
from bench.registry import DATASETS

COCO_HINT = "download COCO 2014 from https://cocodataset.org and pass --data-root /path/to/coco"


def read_json(path: Path, what: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(f"corrupt {what} {path}: {exc}") from exc


@DATASETS.register_module(name="coco2014")
class COCO2014:
    """MS-COCO 2014 multi-label recognition (80 classes)."""

    name = "coco2014"
    synonyms = "coco"  # bench/data/synonyms/coco.json: the caption parser's word lists
    split_dirs = {"train": "train2014", "val": "minival2014", "test": "val2014"}
    hint = COCO_HINT
    # images with an instance (DualCoOp's counts), classes, captions (one per train image): the dry run's sizes
    # when the data is not on disk
    official_sizes = {"train": 82_081, "test": 40_137, "classes": 80, "captions": 82_783}

    def __init__(self, data_root: str, keep_unannotated: bool = False, extra_caption_files: tuple = (),
                 synonyms: str | None = None, captions_per_image: int | None = 1, zsl_split: str | None = "coco_48_17"):
        self.data_root = Path(data_root).expanduser()
        self.captions_per_image = captions_per_image
        if synonyms:  # a user's synonym file (path) or another built-in list, for caption parsing
            self.synonyms = synonyms
        self.keep_unannotated = keep_unannotated
        self.extra_caption_files = tuple(extra_caption_files)
        self.zsl_split = zsl_split  # seen/unseen split of the zsl setting (bench/data/zsl/<name>.json or a path)

    def options(self) -> dict:
        return {"data_root": str(self.data_root), "keep_unannotated": self.keep_unannotated,
                "extra_caption_files": list(self.extra_caption_files), "synonyms": self.synonyms,
                "captions_per_image": self.captions_per_image, "zsl_split": self.zsl_split}

    def has_split(self, split: str) -> bool:
        stem = self.split_dirs.get(split)
        return stem is not None and (self.data_root / "annotations" / f"instances_{stem}.json").is_file()

    def load(self, split: str) -> Split:
        stem = split_name(self.name, split, self.split_dirs)
        require_dir(self.data_root, f"{self.name} data root", self.hint)
        ann_path = require_file(self.data_root / "annotations" / f"instances_{stem}.json",
                                f"{self.name} annotation file", self.hint)
        ann = read_json(ann_path, "annotation file")
        missing = [key for key in ("images", "annotations", "categories") if not isinstance(ann.get(key), list)]
        if missing:
            raise DataError(f"COCO annotation file {ann_path} has no {' / '.join(missing)} list; an instances file "
                            "needs images, annotations and categories")
        repeated = repeated_values([im.get("id") for im in ann["images"]])
        if repeated:  # one image listed twice would count twice (or as an unlabelled extra row)
            raise DataError(f"COCO annotation file {ann_path} lists image id(s) {', '.join(map(str, repeated[:10]))} "
                            "more than once; remove the repeated image entries")
        categories = sorted(ann["categories"], key=lambda c: c["id"])
        column = {c["id"]: i for i, c in enumerate(categories)}
        images = sorted(ann["images"], key=lambda im: im["id"])
        row = {im["id"]: i for i, im in enumerate(images)}
        labels = np.full((len(images), len(categories)), NEGATIVE, dtype=np.int8)
        annotated = np.zeros(len(images), dtype=bool)
        for a in ann["annotations"]:
            if a["image_id"] not in row or a["category_id"] not in column:
                raise DataError(f"annotation {a.get('id')} in {ann_path} refers to an unknown "
                                f"image {a['image_id']} or category {a['category_id']}")
            labels[row[a["image_id"]], column[a["category_id"]]] = POSITIVE
            annotated[row[a["image_id"]]] = True
        keep = np.ones(len(images), bool) if self.keep_unannotated else annotated
        captions = self._captions(stem)
        image_dir = self.data_root / stem
        kept = [im for im, k in zip(images, keep) if k]
        return Split(
            dataset=self.name, split=split,
            image_paths=[str(image_dir / im["file_name"]) for im in kept],
            labels=labels[keep], classnames=[c["name"] for c in categories],
            captions=[captions.get(im["id"], []) for im in kept],
            image_ids=[im["id"] for im in kept], source=str(ann_path),
        )

    def _captions(self, stem: str) -> dict[int, list[str]]:
        path = self.data_root / "annotations" / f"captions_{stem}.json"
        if not path.is_file():
            return {}
        by_image: dict[int, list[str]] = {}
        for a in sorted(read_json(path, "caption file")["annotations"], key=lambda a: a["id"]):
            by_image.setdefault(a["image_id"], []).append(a["caption"].strip())
        return by_image

    def caption_corpus(self) -> list[str]:
        """Training captions for caption-trained methods: the train split's captions only.

        (TaI-DPT reads captions_train2017.json, whose images include most of val2014 -- our test
        split; we use train2014 captions so no test image's caption is ever trained on.) TaI-DPT keeps
        one caption per image (``coco_caption_text_embed_sampled_idx.pkl``); ``captions_per_image``
        (default 1: the lowest annotation id of each image) does the same, None keeps all five.
        """
        corpus = []
        for path, hint in self.caption_sources():
            corpus += coco_captions(path, self.captions_per_image, hint)
        return corpus

    def caption_sources(self) -> list[tuple[Path, str]]:
        """(file, how to supply it) for each file of the caption corpus: the train split's captions under the
        data root, then ``extra_caption_files`` (relative to it)."""
        train = self.data_root / "annotations" / f"captions_{self.split_dirs['train']}.json"
        return [(train, f"dataset.data_root; {self.hint}"),
                *((self.data_root / extra, "dataset.extra_caption_files") for extra in self.extra_caption_files)]


def coco_captions(path: str | Path, per_image: int | None = None, hint: str = COCO_HINT) -> list[str]:
    """The captions of a COCO-format caption file in annotation-id order; at most ``per_image`` per image.
    ``hint`` says how to supply a missing file for the dataset at hand (the config key that sets it)."""
    path = require_file(Path(path).expanduser(), "caption file", hint)
    taken: dict = {}
    out = []
    for a in sorted(read_json(path, "caption file")["annotations"], key=lambda a: a["id"]):
        taken[a["image_id"]] = taken.get(a["image_id"], 0) + 1
        if per_image is None or taken[a["image_id"]] <= per_image:
            out.append(a["caption"].strip())
    return out

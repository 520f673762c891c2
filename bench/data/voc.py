"""PASCAL VOC 2007 in its official layout.

    <data_root>/Annotations/<id>.xml
    <data_root>/ImageSets/Main/{trainval,test}.txt
    <data_root>/JPEGImages/<id>.jpg

(``data_root`` is the ``VOCdevkit/VOC2007`` folder.) Splits: ``train`` = trainval (5,011 images),
``test`` = test (4,952). A class is positive when the image has a non-difficult object of it.
Difficult-only classes: the references skip difficult objects, so those classes are negatives
at test (``difficult="negative"``, the default); ``difficult="ignore"`` marks them unknown (0),
as the VOC devkit does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from bench.data.base import NEGATIVE, POSITIVE, UNKNOWN, DataError, Split, require_dir, require_file, split_name
from bench.data.coco import coco_captions
from bench.errors import UsageError
from bench.registry import DATASETS

VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]
VOC_HINT = "download VOC2007 trainval+test and pass --data-root /path/to/VOCdevkit/VOC2007"
CAPTION_HINT = ("VOC2007 has no captions: caption-trained methods read MS-COCO's; pass --cfg-options "
                "dataset.caption_file=/path/to/coco/annotations/captions_train2014.json")


@DATASETS.register_module(name="voc2007")
class VOC2007:
    """PASCAL VOC 2007 multi-label recognition (20 classes)."""

    name = "voc2007"
    synonyms = "voc2007"
    split_files = {"train": "trainval", "test": "test"}
    official_sizes = {"train": 5_011, "test": 4_952, "classes": 20}  # the dry run's sizes without the data

    def __init__(self, data_root: str, difficult: str = "negative", caption_file: str | None = None,
                 synonyms: str | None = None, captions_per_image: int | None = 1, zsl_split: str | None = None):
        self.zsl_split = zsl_split  # no standard seen/unseen split for VOC: the zsl setting needs a split file
        if synonyms:  # a user's synonym file (path) or another built-in list, for caption parsing
            self.synonyms = synonyms
        if difficult not in ("negative", "ignore"):
            raise UsageError(f"difficult must be 'negative' or 'ignore', got {difficult!r}")
        self.data_root = Path(data_root).expanduser()
        self.difficult = difficult
        self.caption_file = caption_file
        self.captions_per_image = captions_per_image

    def options(self) -> dict:
        return {"data_root": str(self.data_root), "difficult": self.difficult, "caption_file": self.caption_file,
                "synonyms": self.synonyms, "captions_per_image": self.captions_per_image,
                "zsl_split": self.zsl_split}

    def has_split(self, split: str) -> bool:
        return split in self.split_files

    def load(self, split: str) -> Split:
        stem = split_name(self.name, split, self.split_files)
        root = require_dir(self.data_root, "VOC2007 data root", VOC_HINT)
        list_file = require_file(root / "ImageSets" / "Main" / f"{stem}.txt",
                                 "VOC2007 image list", VOC_HINT)
        ids = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
        column = {c: i for i, c in enumerate(VOC_CLASSES)}
        labels = np.full((len(ids), len(VOC_CLASSES)), NEGATIVE, dtype=np.int8)
        for row, image_id in enumerate(ids):
            xml_path = require_file(root / "Annotations" / f"{image_id}.xml", "VOC2007 annotation", VOC_HINT)
            try:
                objects = ET.parse(xml_path).getroot().findall("object")
            except ET.ParseError as exc:
                raise DataError(f"corrupt VOC2007 annotation {xml_path}: {exc}") from exc
            difficult_only = set()
            for obj in objects:
                name = obj.findtext("name", "").strip()
                if name not in column:
                    raise DataError(f"{xml_path}: unknown VOC class {name!r}")
                if obj.findtext("difficult", "0").strip() == "1":
                    difficult_only.add(name)
                else:
                    labels[row, column[name]] = POSITIVE
            if self.difficult == "ignore":
                for name in difficult_only:
                    if labels[row, column[name]] != POSITIVE:
                        labels[row, column[name]] = UNKNOWN
        return Split(dataset=self.name, split=split,
                     image_paths=[str(root / "JPEGImages" / f"{i}.jpg") for i in ids],
                     labels=labels, classnames=list(VOC_CLASSES), captions=[[] for _ in ids], image_ids=ids,
                     source=str(list_file))

    def caption_corpus(self) -> list[str]:
        """VOC has no captions; TaI-DPT trains its VOC prompts on MS-COCO captions (``caption_file``), the same
        one-caption-per-image sample as for COCO (``coco_caption_text_embed_sampled_idx.pkl`` in
        ``voc2007_distill.py``): ``captions_per_image`` as in :meth:`COCO2014.caption_corpus`."""
        [(path, hint)] = self.caption_sources()
        return coco_captions(path, self.captions_per_image, hint)

    def caption_sources(self) -> list[tuple[Path, str]]:
        """The one caption file (COCO's train captions), with how to supply it."""
        if not self.caption_file:
            raise DataError("VOC2007 has no captions; set dataset.caption_file to "
                            "/path/to/coco/annotations/captions_train2014.json")
        return [(Path(self.caption_file).expanduser(), CAPTION_HINT)]

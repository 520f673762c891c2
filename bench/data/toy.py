"""The toy world as a dataset: generated on first use (bench/toy), then read by the COCO reader."""

from __future__ import annotations

from bench.data.coco import COCO2014
from bench.registry import DATASETS


@DATASETS.register_module(name="toy")
class Toy(COCO2014):
    """Procedural multi-label scenes written in the MS-COCO 2014 layout (see bench/toy/build.py).

    Splits: train = train2014, val = minival2014, test = val2014. The caption corpus is the train
    captions plus the caption-only corpus (scenes that were captioned but never rendered).
    """

    name = "toy"
    synonyms = "toy"
    official_sizes = None  # generated on first use: the dry run reads it
    hint = "the toy world is generated on first use; delete the folder to regenerate it"

    def __init__(self, data_root: str = "data/toy", n_train: int = 4000, n_val: int = 1000, n_test: int = 1000,
                 n_text_only: int = 5000, seed: int = 0, image_size: int = 128, use_text_only: bool = True,
                 synonyms: str | None = None, zsl_split: str | None = "toy_15_5"):
        super().__init__(data_root, keep_unannotated=False, zsl_split=zsl_split,
                         extra_caption_files=("annotations/captions_textonly.json",) if use_text_only else (),
                         synonyms=synonyms, captions_per_image=None)  # toy: every caption (3-5 per image)
        self.generation = dict(n_train=n_train, n_val=n_val, n_test=n_test, n_text_only=n_text_only, seed=seed,
                               image_size=image_size)
        self.use_text_only = use_text_only
        self._ready = False

    def options(self) -> dict:
        return {**super().options(), **self.generation}

    def ensure(self) -> None:
        if not self._ready:
            from bench.toy.build import ensure_toy_dataset

            ensure_toy_dataset(self.data_root, **self.generation)
            self._ready = True

    def has_split(self, split: str) -> bool:
        self.ensure()
        return super().has_split(split)

    def load(self, split: str):
        self.ensure()
        return super().load(split)

    def caption_corpus(self) -> list[str]:
        self.ensure()
        return super().caption_corpus()

    def caption_sources(self):
        self.ensure()
        return super().caption_sources()

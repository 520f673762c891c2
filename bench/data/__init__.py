"""Dataset readers. Importing this package registers them in bench.registry.DATASETS."""

from bench.data import coco, nuswide, toy, voc  # noqa: F401

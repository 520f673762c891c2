"""Training sets, one home for every kind a method trains on: real images (partial labels, few-shot, or the
seen classes of the zsl setting), the caption corpus (texts as images), and the parts generated images share
with them (``bench.cell.generated`` plans T2I-PAL's generated images from :func:`parsed_captions` and builds its
set from :class:`FeatureDataset`, :class:`TrainSet` and :func:`image_training_data`).

Items are dicts ``{"feats": {role: tensor}, "targets": tensor}`` (cached features) or ``{"pixels", "targets"}``
(the ``online`` protocol, re-encoded every step); targets are in {1, 0 (unknown), -1}.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.cell.online import image_mode
from bench.cell.plan import Cell
from bench.cell.session import Session
from bench.config import method_features
from bench.data.base import DataError, apply_partial_labels, few_shot_indices
from bench.errors import UsageError
from bench.features.augment import ImageRows, augmentation
from bench.method import Method
from bench.phases import timed


class FeatureDataset(Dataset):
    """Rows of cached features and their targets.

    ``views=None``: arrays are [N, ...] (caption features). ``views=V``: arrays are [V, N, ...]
    (image features); item i in epoch e reads a view drawn from (seed, e, i), so a resumed run
    sees the same views as an uninterrupted one (:class:`EpochSampler` sets the epoch).
    """

    def __init__(self, arrays: dict[str, np.ndarray], labels: np.ndarray, views: int | None = None,
                 rows: np.ndarray | None = None, seed: int = 0):
        self.arrays, self.labels, self.views, self.seed = arrays, labels, views, seed
        self.rows = np.arange(len(labels)) if rows is None else rows  # item i reads feature row rows[i]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def _view(self, i: int) -> int:
        return int(np.random.default_rng([self.seed, self.epoch, i]).integers(self.views)) if self.views > 1 else 0

    def __getitem__(self, i: int) -> dict:
        batch = self.batch([i])
        return {"feats": {role: v[0] for role, v in batch["feats"].items()}, "targets": batch["targets"][0]}

    def batch(self, indices) -> dict:
        """Items ``indices`` collated, in one read per array instead of one per item (training reads whole
        batches through :class:`Batched`); the same values in the same order as stacking ``self[i]``."""
        items = np.asarray(indices, dtype=np.int64)
        rows = self.rows[items]
        if self.views is None:
            picked = {role: a[rows] for role, a in self.arrays.items()}
        else:
            views = np.array([self._view(int(i)) for i in items], dtype=np.int64)
            picked = {role: a[views, rows] for role, a in self.arrays.items()}
        # np.array copies out of the read-only memmap (torch warns on non-writable buffers)
        feats = {role: torch.from_numpy(np.array(v, dtype=np.bool_ if v.dtype == np.bool_ else np.float32))
                 for role, v in picked.items()}
        return {"feats": feats, "targets": torch.from_numpy(self.labels[items].astype(np.float32))}


class Batched(Dataset):
    """The DataLoader's view of a dataset that has ``batch(indices)``: the loader fetches a whole batch with
    ``__getitems__``, and :func:`collate_batch` passes it through."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        return self.dataset[i]

    def __getitems__(self, indices) -> dict:
        return self.dataset.batch(indices)


def collate_batch(data):
    """Collate function for :class:`Batched`: a batch the dataset assembled passes through as it is."""
    from torch.utils.data import default_collate

    return data if isinstance(data, dict) else default_collate(data)


class ImageDataset(Dataset):
    """Images with train-time augmentation, for the ``online`` protocol (re-encoded every step)."""

    def __init__(self, paths: list[str], labels: np.ndarray, transform, where: str = ""):
        self.rows = ImageRows(paths, np.arange(len(paths)), len(paths), transform, None, where=where)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"pixels": self.rows[i], "targets": torch.from_numpy(self.labels[i].astype(np.float32))}


@dataclass
class TrainSet:
    """A cell's training data: the dataset, whether its items are images or texts, its size, and what the
    record says about it (``description``)."""

    dataset: Dataset
    modality: str  # "image" or "text"
    size: int
    description: dict


def image_training_data(session: Session, cell: Cell, method: Method, backbone) -> TrainSet:
    """Train-split images with the cell's label budget: partial labels at its ratio, or a few-shot
    subset, or (zsl) the images with a seen positive, labelled with the seen classes only (bench.cell.zsl).
    Features are always those of the whole split (one cache entry for every ratio, seed and shot count);
    a few-shot or zsl cell reads its rows."""
    full = session.zsl_split("train") if cell.setting == "zsl" else session.split("train")
    rows = np.arange(len(full))
    split = full
    with timed("label masks and K-shot selection"):
        if cell.setting == "zsl":
            from bench.cell.zsl import seen_training_split

            split, rows = seen_training_split(full, session.zsl_classes())
        elif cell.setting == "partial":
            split = apply_partial_labels(full, cell.label_ratio, cell.seed)
        elif cell.setting == "fewshot":
            rows = few_shot_indices(full.labels, cell.shots, cell.seed)  # nested across K for a seed
            split = full.subset(rows)
    known = float((split.labels != 0).mean())
    feats_cfg = method_features(session.cfg, cell.method)
    mode = image_mode(method, feats_cfg)  # "online" for a method that trains the image tower (bench/cell/online.py)
    description = {"split": "train", "n_images": len(split), "known_label_fraction": known, "protocol": mode}
    if cell.setting == "fewshot":
        description["shots"] = cell.shots
    if mode == "online":
        transform = augmentation(backbone, **(feats_cfg.get("augment") or {}))
        dataset = ImageDataset(split.image_paths, split.labels, transform, where=f"{split.dataset}/{split.split}")
        return TrainSet(dataset, "image", len(split), description)
    if mode != "cached":
        raise UsageError(f"features.mode must be 'cached' or 'online', got {mode!r}")
    views = int(feats_cfg.get("views", 1))
    augment = feats_cfg.get("augment") if views > 1 else None
    kinds = sorted(set(method.image_features.values()))
    feats = session.split_features(backbone, full, kinds, views=views, augment=augment)
    arrays = {role: feats[kind] for role, kind in method.image_features.items()}
    description.update(views=views, augment=augment)
    dataset = FeatureDataset(arrays, split.labels, views=views, rows=rows, seed=cell.seed)
    return TrainSet(dataset, "image", len(split), description)


def parsed_captions(session: Session, method: Method, setting: str | None = None) -> tuple[list[str], np.ndarray, dict]:
    """The dataset's training caption corpus, labelled by the caption parser: (captions, labels [M, C]
    in {1, -1}, description). Methods may subsample (``select_captions``) and add captions
    (``extra_captions``, e.g. TaI-DPT's per-class template captions).

    ``setting="zsl"``: parsed with the seen and unseen classes, then every caption that names an unseen
    class is dropped and the labels keep the seen columns (bench.cell.zsl.seen_captions); template captions
    are made for the seen classes only. No unseen class name reaches training, even in caption text."""
    dataset = session.dataset
    zsl = session.zsl_classes() if setting == "zsl" else None
    classnames = zsl.evaluated if zsl else session.split(session.eval_split).classnames
    parser, captions, labels, n_corpus = session.parsed_corpus(classnames)
    captions, labels = list(captions), labels.copy()  # the session's copy stays as parsed
    n_dropped = 0
    if zsl:
        from bench.cell.zsl import seen_captions

        captions, labels, n_dropped = seen_captions(captions, labels, classnames, zsl)
    n_parsed = len(captions)
    if hasattr(method, "select_captions"):
        captions, labels = method.select_captions(captions, labels)
    extra = getattr(method, "extra_captions", None)
    n_extra = 0
    if extra is not None:
        more, more_labels = extra(zsl.seen if zsl else parser.classnames)
        captions, labels, n_extra = captions + more, np.concatenate([labels, more_labels]), len(more)
    if not captions:
        raise DataError(f"no caption of the {dataset.name} corpus names a class; check the synonym file")
    description = {"corpus": f"{dataset.name} train captions", "n_corpus": n_corpus, "n_parsed": n_parsed,
                   "n_captions": len(captions), "n_extra_captions": n_extra, "synonyms": dataset.synonyms}
    if zsl:
        description.update(classes="seen", n_dropped_naming_unseen=n_dropped)
    return captions, labels, description


def caption_training_data(session: Session, cell: Cell, method: Method, backbone) -> TrainSet:
    """Texts as images: the caption corpus's EOT and token features (TaI-DPT)."""
    captions, labels, description = parsed_captions(session, method, cell.setting)
    feats = session.cache.caption_features(backbone, captions, desc=f"{session.dataset.name} caption features")
    return TrainSet(FeatureDataset(feats, labels), "text", len(captions), description)

"""What every dataset reader returns, and the label-budget transforms applied to it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import DataError, UsageError

POSITIVE, UNKNOWN, NEGATIVE = 1, 0, -1
SETTINGS = ("zero-shot", "partial", "fewshot", "zsl")  # zsl: seen/unseen classes (bench/data/zsl.py)


@dataclass(frozen=True)
class Split:
    """One split of a multi-label dataset.

    labels: int8 [N, C] with 1 (positive), -1 (negative), 0 (unknown).
    captions: per image, the human captions that come with it (empty lists where none).
    """

    dataset: str
    split: str
    image_paths: list[str]
    labels: np.ndarray
    classnames: list[str]
    captions: list[list[str]] = field(default_factory=list)
    image_ids: list = field(default_factory=list)
    source: str = ""  # the image list or annotation file the reader read it from: every error about it names it

    def __post_init__(self):
        if self.labels.shape != (len(self.image_paths), len(self.classnames)):
            raise DataError(
                f"{self.dataset}/{self.split}: label matrix {self.labels.shape} does not match "
                f"{len(self.image_paths)} images x {len(self.classnames)} classes{self._read_from()}"
            )
        if not self.image_paths:
            raise DataError(f"{self.dataset}/{self.split}: the split has no images; check its image list / "
                            f"annotation file{' ' + self.source if self.source else ''}")
        for what, values in (("image id", self.image_ids), ("image file", self.image_paths)):
            repeated = repeated_values(values)
            if repeated:  # counted twice in training and in every mAP: refuse rather than guess which to keep
                shown = ", ".join(str(v) for v in repeated[:10]) + (f" (+{len(repeated) - 10} more)"
                                                                    if len(repeated) > 10 else "")
                raise DataError(f"{self.dataset}/{self.split}: the split lists the same {what} more than once: "
                                f"{shown}; remove the repeated entries{' from ' + self.source if self.source else ''}")

    def _read_from(self) -> str:
        return f" (read from {self.source})" if self.source else ""

    def check_evaluable(self) -> None:
        """A DataError when no image has a positive label (every class's AP, and so the mAP, is undefined)."""
        if not (self.labels == POSITIVE).any():
            raise DataError(f"{self.dataset}/{self.split}: no image has a positive label, so there is nothing to "
                            "evaluate (mAP undefined); check the split's annotation files"
                            f"{' (' + self.source + ')' if self.source else ''}")

    def __len__(self) -> int:
        return len(self.image_paths)

    def subset(self, index) -> Split:
        index = np.asarray(index)
        pick = lambda seq: [seq[i] for i in index] if seq else []  # noqa: E731
        return dataclasses.replace(self, image_paths=pick(self.image_paths), labels=self.labels[index],
                                   captions=pick(self.captions), image_ids=pick(self.image_ids))


def repeated_values(values: list) -> list:
    """The values that occur more than once, in first-occurrence order."""
    seen, repeated = set(), {}
    for v in values:
        if v in seen:
            repeated[v] = None
        seen.add(v)
    return list(repeated)


def check_label_ratio(label_ratio: float) -> float:
    label_ratio = float(label_ratio)
    if not 0.0 < label_ratio <= 1.0:
        raise UsageError(f"label ratio must be in (0, 1], got {label_ratio}")
    return label_ratio


def check_shots(shots) -> int:
    """A few-shot cell's K: a positive whole number (``16``, ``"16"``, ``16.0``)."""
    try:
        value = float(shots)
    except (TypeError, ValueError):
        raise UsageError(f"shots must be a positive integer (images per class), got {shots!r}") from None
    if value != int(value) or value < 1:
        raise UsageError(f"shots must be a positive integer (images per class), got {shots!r}")
    return int(value)


def partial_label_mask(shape: tuple[int, int], label_ratio: float, seed: int) -> np.ndarray:
    """Bool [N, C]: True where a known label is kept.

    Each entry is kept independently with probability ``label_ratio`` (positives and negatives
    alike, as DualCoOp's ``--partial`` sampling). One uniform draw per seed serves every ratio,
    so the masks are nested (what is known at r=0.1 is also known at r=0.5) and every method
    sees the same mask for a seed.
    """
    label_ratio = check_label_ratio(label_ratio)
    draws = np.random.default_rng([seed, 20240521]).random(shape)
    return draws < label_ratio


def apply_partial_labels(split: Split, label_ratio: float, seed: int) -> Split:
    """The split with each known label kept with probability ``label_ratio``, the rest set to 0."""
    keep = partial_label_mask(split.labels.shape, label_ratio, seed)
    labels = np.where(keep, split.labels, UNKNOWN).astype(np.int8)
    return dataclasses.replace(split, labels=labels)


def few_shot_indices(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Indices of a K-shot training subset: every class positive in at least ``min(shots, #positives)``
    of the chosen images (sorted indices, reproducible from the seed).

    The usual multi-label K-shot sampling, made nested: one seeded priority order of the images
    (``default_rng([seed, 16]).permutation``), then for k = 1, 2, ..., ``shots`` in turn, classes are
    visited rarest first and each tops up to k positives with its highest-priority images not chosen
    yet (images already chosen count toward every class they show). The k-shot set is grown from the
    (k-1)-shot set, so the selections for K = 1, 2, 4, 8, 16 are nested for a seed.
    """
    shots = check_shots(shots)
    positives = labels == POSITIVE
    priority = np.random.default_rng([seed, 16]).permutation(len(labels))  # image ids, best first
    by_priority = positives[priority]  # [N, C] rows in priority order
    chosen = np.zeros(len(labels), dtype=bool)  # over priority positions
    classes = np.argsort(positives.sum(0), kind="stable")  # rarest first
    for k in range(1, shots + 1):
        for c in classes:
            column = by_priority[:, c]
            need = k - int((column & chosen).sum())
            if need > 0:
                chosen[np.flatnonzero(column & ~chosen)[:need]] = True
    return np.sort(priority[chosen]).astype(np.int64)


def require_file(path: str | Path, what: str, hint: str = "") -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing {what}: {path}" + (f" ({hint})" if hint else ""))
    return path


def split_name(dataset: str, split: str, names: dict[str, str]) -> str:
    """The reader's own name of ``split`` (file stem, list tag) from ``names``; a split it has not: one line."""
    if split not in names:
        raise DataError(f"{dataset} has no split {split!r}; valid: {sorted(names)}")
    return names[split]


def require_dir(path: str | Path, what: str, hint: str = "") -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"missing {what}: {path}" + (f" ({hint})" if hint else ""))
    return path

"""Seen/unseen class splits for zero-shot multi-label recognition (the ``zsl`` setting).

DualCoOp's second protocol (sunxm2357/DualCoOp@49e71d7 ``train_zsl.py``): prompts are learned on
images labelled with the *seen* classes only, then evaluated on the *unseen* classes (ZSL) and on
seen + unseen (GZSL). A split is a JSON file shipped in ``bench/data/zsl/`` (or given by path)::

    {"name": ..., "dataset": ..., "source": "<where the lists come from>",
     "seen": [names] | "rest", "seen_count": n (optional), "unseen": [names]}

``"seen": "rest"`` means every class of the dataset's ZSL class list that is not unseen (NUS-WIDE:
the Flickr tags of ``TagList1k.txt`` minus the 81 concepts, LESA's rule). A dataset reader picks its
split with ``dataset.zsl_split`` (a built-in name or a path) and may widen its class list for the
protocol with ``load_zsl(split)`` (NUS-WIDE adds the tag columns); otherwise ``load`` is used.

Which images each part uses, as DualCoOp's COCO loader (``dataloaders/coco_detection.py:31-55``:
the images of ``coco.imgToAnns``, i.e. those with an annotation in the part's own json file):
- training: the train split's images with at least one seen positive, seen columns only;
- ZSL test: the test images with at least one unseen positive, unseen columns;
- GZSL test: the test images with at least one positive among seen + unseen, those columns.
Columns keep the dataset's class order (DualCoOp sorts ``cls_id``, ``coco_detection.py:46``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data.base import POSITIVE, DataError, Split

ZSL_DIR = Path(__file__).resolve().parent / "zsl"


@dataclass(frozen=True)
class ZSLSplit:
    """A seen/unseen split as written in its file (``seen`` is None for ``"rest"``)."""

    name: str
    path: str
    source: str
    unseen: tuple[str, ...]
    seen: tuple[str, ...] | None
    seen_count: int | None
    sha256: str

    def resolve(self, classnames: list[str], where: str) -> tuple[list[str], list[str]]:
        """(seen, unseen) names in the dataset's class order, checked against ``classnames``.

        Unknown names, a class in both lists, duplicates or a wrong ``seen_count`` are a DataError
        naming the split file and the offending names."""
        known = set(classnames)
        listed = list(self.unseen) + list(self.seen or ())
        unknown = [n for n in dict.fromkeys(listed) if n not in known]
        if unknown:
            shown = unknown if len(unknown) <= 10 else [*unknown[:10], f"... {len(unknown) - 10} more"]
            raise DataError(f"zsl split {self.path}: {len(unknown)} class name(s) not in {where}: {shown} "
                            f"(valid names: the dataset's classes; fix the file or set dataset.zsl_split)")
        duplicated = sorted({n for n in listed if listed.count(n) > 1})
        if duplicated:
            raise DataError(f"zsl split {self.path}: listed twice (or both seen and unseen): {duplicated}")
        unseen = set(self.unseen)
        seen = set(self.seen) if self.seen is not None else known - unseen
        if self.seen_count is not None and len(seen) != self.seen_count:
            raise DataError(f"zsl split {self.path}: {len(seen)} seen classes in {where}, the file says "
                            f"{self.seen_count}")
        return [c for c in classnames if c in seen], [c for c in classnames if c in unseen]

    def describe(self, seen: list[str], unseen: list[str]) -> dict:
        """What a record keeps of the split: its name, file hash, source and the resolved lists."""
        return {"name": self.name, "sha256": self.sha256, "source": self.source,
                "n_seen": len(seen), "n_unseen": len(unseen), "seen": seen, "unseen": unseen}


def builtin_splits() -> list[str]:
    return sorted(p.stem for p in ZSL_DIR.glob("*.json"))


def load_zsl_split(name_or_path: str | None, dataset: str = "") -> ZSLSplit:
    """A split file by built-in name (``coco_48_17``) or path; structure checked."""
    if not name_or_path:
        raise DataError(f"{dataset or 'this dataset'} has no seen/unseen split for the zsl setting; set "
                        f"dataset.zsl_split to a split file (built-in: {', '.join(builtin_splits())})")
    path = Path(str(name_or_path)).expanduser()
    if path.suffix != ".json":
        path = ZSL_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise DataError(f"zsl split file not found: {path} (dataset.zsl_split; built-in: "
                        f"{', '.join(builtin_splits())}; or a path to a json file "
                        '{"unseen": [...], "seen": [...] or "rest", "source": ...})')
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(f"corrupt zsl split file {path}: {exc}") from exc
    seen = data.get("seen") if isinstance(data, dict) else None
    unseen = data.get("unseen") if isinstance(data, dict) else None
    if not (isinstance(unseen, list) and unseen and all(isinstance(n, str) for n in unseen)) or not (
            seen == "rest" or isinstance(seen, list) and seen and all(isinstance(n, str) for n in seen)):
        raise DataError(f"{path}: expected {{\"unseen\": [names], \"seen\": [names] or \"rest\", \"source\": ...}}")
    return ZSLSplit(name=str(data.get("name", path.stem)), path=str(path), source=str(data.get("source", "")),
                    unseen=tuple(unseen), seen=None if seen == "rest" else tuple(seen),
                    seen_count=data.get("seen_count"), sha256=hashlib.sha256(raw).hexdigest())


def class_view(split: Split, names: list[str]) -> tuple[Split, np.ndarray]:
    """The images of ``split`` with at least one positive among ``names``, labelled with those columns only,
    and their row indices in ``split`` (to read cached features)."""
    column = {c: i for i, c in enumerate(split.classnames)}
    cols = np.array([column[n] for n in names], dtype=np.int64)
    labels = split.labels[:, cols]
    rows = np.flatnonzero((labels == POSITIVE).any(axis=1))
    view = split.subset(rows)
    return dataclasses.replace(view, labels=np.ascontiguousarray(labels[rows]), classnames=list(names)), rows

"""What a sweep costs before it starts (``bench run --dry-run``): work counts and bytes from the plan and the
data's sizes, and, with ``--calibrate``, hours from rates measured on this machine (:mod:`bench.grid.calibrate`).

Counted per dataset, from the cells still to run:
  - images to encode per backbone, input resolution and image set (test, train, val, each generated set), with
    the feature kinds stored and their bytes in the cache (fp16: a global feature is D values, a dense map
    1 + HW, a position-free map HW; times the cached views);
  - images to generate (each generated-image method's captions times its images per caption);
  - per cell: training steps (epochs x batches of its training set: all train images with partial labels,
    the K-shot selection, the images with a seen positive in zsl, the caption corpus), text-tower prompt
    passes (training and evaluation; prompts per forward pass are counted by running each method once on
    the stand-in backbone, so plug-ins are counted too), and the bytes of its record and scores.
Sizes come from the data when it is on disk (its annotation files are read, no image is), else from each
reader's ``official_sizes`` (the released counts), which the output says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.config import method_features, to_plain
from bench.errors import UsageError

GB = 1e9


@dataclass
class Sizes:
    """Images per split, the class count, and (when read from disk) the train labels and caption corpus size."""

    n_images: dict[str, int]
    n_classes: int
    source: str  # "data on disk (<root>)" or "official sizes (...)"
    train_labels: np.ndarray | None = None
    n_captions: int | None = None


@dataclass
class Cost:
    """Everything the dry run prints for one dataset (see the module docstring)."""

    dataset: str
    sizes: Sizes
    feature_sets: list[dict] = field(default_factory=list)  # one per (backbone, resolution, image set, views)
    generated: list[dict] = field(default_factory=list)  # one per generated-image method
    cells: list[dict] = field(default_factory=list)  # one per cell to run


def backbone_shape(spec) -> tuple[int, int, int]:
    """(embedding size D, input side, grid cells HW) of a backbone spec, from its open_clip model config (or
    the stand-in's table), without building it."""
    from bench.features.standin import ARCHITECTURES, PREFIX, is_standin

    if is_standin(spec.model):
        arch = ARCHITECTURES[spec.model[len(PREFIX):]]
        side = int(spec.image_size or arch["image_size"])
        return arch["embed_dim"], side, (side // arch["stride"]) ** 2
    import json
    from pathlib import Path

    import open_clip

    from bench.features.spec import resolve_path

    config = open_clip.get_model_config(spec.model)
    if config is None and spec.model_config:
        path = Path(resolve_path(spec.model_config))
        config = json.loads(path.read_text()) if path.is_file() else None
    if config is None:
        raise UsageError(f"backbone {spec.model!r}: no open_clip model config to size its features from")
    vision = config["vision_cfg"]
    side = int(spec.image_size or vision["image_size"])
    stride = vision.get("patch_size") or 32  # ResNet towers reduce by 32
    return int(config["embed_dim"]), side, (side // stride) ** 2


def kind_values(kind: str, embed_dim: int, grid_cells: int) -> int:
    """Stored values per image of one feature kind (see the module docstring)."""
    rows = {"global": 1, "global_nopos": 1, "dense": 1 + grid_cells, "dense_nopos": grid_cells}[kind]
    return rows * embed_dim


def data_sizes(dataset, eval_split: str, load) -> Sizes:
    """The split sizes from the data on disk (``load(split)``), else the reader's official sizes."""
    from bench.data.base import DataError

    try:
        test, train = load(eval_split), load("train")
        try:
            n_captions = len(dataset.caption_corpus())
        except (DataError, OSError):
            n_captions = None
        return Sizes({eval_split: len(test), "train": len(train)}, len(test.classnames),
                     f"data on disk ({getattr(dataset, 'data_root', '?')})", train.labels, n_captions)
    except (DataError, OSError):
        official = getattr(dataset, "official_sizes", None)
        if not official:
            raise
        return Sizes({eval_split: official["test"], "train": official["train"]}, official["classes"],
                     f"the released sizes of {dataset.name} (no readable data at {getattr(dataset, 'data_root', '?')})",
                     None, official.get("captions"))


def training_size(cell, plan, method, sizes: Sizes, eval_split: str) -> tuple[int | None, str]:
    """(rows a cell trains on, what they are; None: unknown); few-shot counts are exact when the labels were read."""
    from bench.data.base import few_shot_indices

    n_train = sizes.n_images["train"]
    if not method.trains_on:
        return 0, "nothing (zero-shot)"
    if method.trains_on in ("captions", "generated"):
        what = "captions" if method.trains_on == "captions" else "generated images (+ captions)"
        if sizes.n_captions is None:
            return None, what + ": no caption corpus to count (dataset.caption_file(s))"
        n = sizes.n_captions
        if method.trains_on == "generated" and getattr(method, "max_captions", None):
            n = min(n, int(method.max_captions)) * int(getattr(method, "images_per_caption", 1))
        return n, what
    if cell.setting == "fewshot":
        if sizes.train_labels is not None:
            return len(few_shot_indices(sizes.train_labels, cell.shots, cell.seed)), f"{cell.shots}-shot images"
        return min(n_train, cell.shots * sizes.n_classes), f"{cell.shots}-shot images (at most K x classes)"
    return n_train, "train images"


def sweep_cost(cfg, cells, sizes: Sizes, prompts_per_forward) -> Cost:
    """The :class:`Cost` of running ``cells`` (``prompts_per_forward(plan) -> (fixed, per image)``: the text prompts
    one forward pass of the method encodes on a batch: ``fixed + per_image * batch``)."""
    from bench.cell.plan import plan_cell
    from bench.features.spec import resolve_spec
    from bench.registry import construct

    eval_split = (cfg.get("runtime", {}) or {}).get("eval_split", "test")
    feats_cfg = cfg.get("features", {}) or {}
    eval_batch = int(feats_cfg.get("eval_batch_size", 256))
    cost = Cost(cfg.dataset.type, sizes)
    sets: dict[tuple, set] = {}
    for cell in cells:
        plan = plan_cell(cfg, cell)
        method = construct(plan.method_cls, plan.kwargs, f"method {cell.method!r}")
        spec = resolve_spec({**to_plain(cfg.backbone), **plan.backbone_overrides})
        kinds = set(method.image_features.values())
        views = int(method_features(cfg, cell.method).get("views", 1))
        sets.setdefault((spec, eval_split, 1), set()).update(kinds)
        if method.trains_on == "images":
            sets.setdefault((spec, "train", views), set()).update(kinds)
        n_rows, what = training_size(cell, plan, method, sizes, eval_split)
        if method.trains_on == "generated" and n_rows and not any(g["method"] == cell.method for g in cost.generated):
            cost.generated.append({"method": cell.method, "images": n_rows,
                                   "generator": to_plain(getattr(method, "generator", {}))})
            sets.setdefault((spec, f"generated ({cell.method})", 1), set()).update(kinds)
        epochs, batch = int(plan.train.get("epochs", 0)), int(plan.train.get("batch_size", 32) or 32)
        steps = epochs * math.ceil((n_rows or 0) / batch)
        eval_batches = math.ceil(sizes.n_images[eval_split] / eval_batch)
        fixed, per_image = prompts_per_forward(plan)  # per forward pass: fixed + per image of its batch
        n_test = sizes.n_images[eval_split]
        eval_prompts = eval_batches * fixed + per_image * n_test
        prompts = steps * fixed + per_image * epochs * (n_rows or 0) * (steps > 0) + eval_prompts
        n_scores = sizes.n_images[eval_split] * sizes.n_classes
        cost.cells.append({"cell": cell.name, "method": cell.method, "setting": cell.setting, "rows": n_rows,
                           "rows_are": what, "steps": steps, "batch": batch, "eval_batches": eval_batches,
                           "prompt_passes": prompts, "eval_prompt_passes": eval_prompts,
                           "fits_features": bool(method.fits_features),
                           # JSON (~8 KB + per-class AP), scores (float32, before compression) + labels, resamples
                           "record_bytes": 8_000 + 40 * sizes.n_classes + 5 * n_scores + 16_000})
    for (spec, image_set, views), kinds in sets.items():
        dim, side, grid = backbone_shape(spec)
        split = image_set if image_set in sizes.n_images else None
        n = sizes.n_images[split] if split else next(g["images"] for g in cost.generated
                                                     if image_set.endswith(f"({g['method']})"))
        values = sum(kind_values(k, dim, grid) for k in kinds)
        cost.feature_sets.append({"backbone": spec.describe(), "arch": f"{spec.model}@{side}", "resolution": side,
                                  "image_set": image_set,
                                  "images": n, "views": views, "kinds": sorted(kinds),
                                  "bytes": 2 * values * n * views})
    return cost


def format_cost(costs: list[Cost], hours: dict | None = None) -> str:
    """The dry run's summary: per dataset and in total (``hours``: :func:`bench.grid.calibrate.estimate_hours`)."""
    lines = []
    total = {"images": 0, "bytes": 0, "generated": 0, "steps": 0, "prompts": 0, "records": 0, "cells": 0}
    for cost in costs:
        sizes = cost.sizes
        lines += ["", f"cost of the cells to run on {cost.dataset} ({len(cost.cells)} cells; sizes: {sizes.source}: "
                  + ", ".join(f"{k} {v:,} images" for k, v in sizes.n_images.items())
                  + f", {sizes.n_classes} classes)", "",
                  "| backbone | resolution | image set | images | views | kinds stored | cache |", "|---" * 7 + "|"]
        for s in cost.feature_sets:
            lines.append(f"| {s['backbone']} | {s['resolution']} | {s['image_set']} | {s['images']:,} | {s['views']} | "
                         f"{', '.join(s['kinds'])} | {s['bytes'] / GB:.2f} GB |")
        for g in cost.generated:
            lines.append(f"images to generate for {g['method']} ({g['generator'].get('type', '?')} generator): "
                         f"{g['images']:,}")
        lines += ["", "| method | cells | trains on (rows per cell) | training steps per cell | text-tower prompt "
                  "passes per cell | records + scores per cell |", "|---" * 6 + "|"]
        by_method: dict[str, list[dict]] = {}
        for c in cost.cells:
            by_method.setdefault(c["method"], []).append(c)
        for method, cells in by_method.items():
            rows = sorted({c["rows"] for c in cells if c["rows"] is not None}) or ["?"]
            steps = sorted({c["steps"] for c in cells}) if all(c["rows"] is not None for c in cells) else ["?"]
            fits = " + a fit from features" if cells[0]["fits_features"] else ""
            lines.append(f"| {method} | {len(cells)} | {cells[0]['rows_are']} ({_span(rows)}) | {_span(steps)}{fits} | "
                         f"{_span(sorted({c['prompt_passes'] for c in cells})) if steps != ['?'] else '?'} | "
                         f"{max(c['record_bytes'] for c in cells) / 1e6:.1f} MB |")
        images = sum(s["images"] * s["views"] for s in cost.feature_sets)
        cache = sum(s["bytes"] for s in cost.feature_sets)
        part = {"images": images, "bytes": cache, "generated": sum(g["images"] for g in cost.generated),
                "steps": sum(c["steps"] for c in cost.cells), "prompts": sum(c["prompt_passes"] for c in cost.cells),
                "records": sum(c["record_bytes"] for c in cost.cells), "cells": len(cost.cells)}
        lines.append("")
        lines.append(_totals(f"{cost.dataset} in all", part))
        total = {k: total[k] + part[k] for k in total}
    if len(costs) > 1:
        lines.append(_totals("every dataset", total))
    if hours:
        lines += ["", hours["text"]]
    return "\n".join(lines)


def _span(values: list) -> str:
    text = [f"{v:,}" if isinstance(v, int) else str(v) for v in (values[0], values[-1])]
    return text[0] if len(values) == 1 else f"{text[0]} to {text[1]}"


def _totals(what: str, t: dict) -> str:
    return (f"{what}: {t['cells']} cells, {t['images']:,} image encodings, cache {t['bytes'] / GB:.1f} GB, "
            f"{t['generated']:,} images to generate, {t['steps']:,} training steps, {t['prompts']:,} text-tower "
            f"prompt passes, records and scores {t['records'] / GB:.2f} GB")

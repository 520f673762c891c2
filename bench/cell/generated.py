"""T2I-PAL's training set: generated images with their captions, captions alone, and labelled real images.

One row of the set is one of three kinds, all trained by the same model in the same batches:
  generated  an image rendered from a training caption (its caption's labels), with that caption
  caption    a training caption that is not rendered (a non-photographic template caption, or every
             caption in the "w/o T2I" row): text-as-image features only
  real       a labelled train image of a few-shot or partial-label cell, with its known labels only
             (0 = unknown), no caption
Each item carries ``image_rows`` / ``text_rows`` flags; rows without an image (or caption) get zero
features there and the method's loss leaves them out of that term (methods/t2ipal.py). When no row
has an image at all, the set is the captions alone, as for TaI-DPT, and the method drops the parts
no image would train (adapter, prototypes).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from bench.config import method_features
from bench.errors import UsageError


def generation_plan(session, method, setting: str | None = None) -> dict:
    """What a generated-image method trains on and renders: its captions and labels (the TaI-DPT caption
    set, or a seeded subset of ``max_captions``: the same for every ablation row), which caption each
    image shows (``caption_index``: only captions ``method.rendered_mask`` keeps), the seeds, the
    generator, and the image paths in the cache (which may not exist yet). ``setting="zsl"``: the
    captions of the seen classes only (``bench.cell.trainsets.parsed_captions``)."""
    from bench.cell.trainsets import parsed_captions
    from bench.config import to_plain
    from bench.generation.generators import caption_seeds, image_key, image_path
    from bench.registry import GENERATORS, build

    captions, labels, description = parsed_captions(session, method, setting)
    if method.max_captions and len(captions) > method.max_captions:
        keep = np.sort(np.random.default_rng([method.generation_seed, 7]).choice(
            len(captions), size=int(method.max_captions), replace=False))
        captions, labels = [captions[i] for i in keep], labels[keep]
    rendered = method.rendered_mask(captions, session.split(session.eval_split).classnames)
    caption_index, seeds = caption_seeds(len(captions), method.images_per_caption, method.generation_seed)
    chosen = rendered[caption_index]  # seeds stay tied to the caption's position: cached images are reused
    caption_index, seeds = caption_index[chosen], seeds[chosen]
    generator = build(GENERATORS, to_plain(method.generator))
    root = session.cache.root / "generated"
    identity = generator.identity()
    paths = [str(image_path(root, image_key(identity, captions[c], s)))
             for c, s in zip(caption_index, seeds, strict=True)]
    description.update(n_train_captions=len(captions), n_rendered_captions=int(rendered.sum()))
    return {"captions": captions, "labels": labels, "caption_index": caption_index, "seeds": seeds,
            "generator": generator, "root": root, "paths": paths, "description": description}


def generated_training_data(session, cell, method, backbone):
    """The cell's T2I-PAL training set (see the module docstring) as a runner ``TrainSet``.

    Captions: :func:`generation_plan` (TaI-DPT's caption set, ``max_captions`` subset).
    Generated images: rendered by ``method.generator`` (cached, resumable, rank-sharded in the prepare
    phase of a distributed sweep), ``features.views`` cached views each like real training images;
    with ``method.exclude_near_duplicates`` (a cosine), those whose global feature is that close to a
    test image's are dropped (counted in the description; their captions stay, as caption rows).
    Real images: the runner's few-shot or partial-label selection of the train split, minus the
    validation hold-out (:mod:`bench.cell.validation`).
    """
    from bench.cell.trainsets import FeatureDataset, TrainSet

    plan = generation_plan(session, method, cell.setting)  # zsl: the seen classes' captions only
    captions, labels, caption_index = plan["captions"], plan["labels"], plan["caption_index"]
    description = dict(plan["description"])
    generated = None
    if len(caption_index):
        generated, caption_index, gen_description = _generated_images(session, cell, method, backbone, plan)
        description.update(gen_description)
        if not len(generated):  # every generated image was a near duplicate of a test image
            generated = None
    real, real_description = _real_images(session, cell, method, backbone)
    description.update(real_description)
    caption_feats = session.cache.caption_features(backbone, captions, desc="caption features") \
        if method.use_captions or (generated is None and real is None) else None
    if generated is None and real is None:  # nothing but captions: TaI-DPT's training set
        method.drop_image_parts()
        description.update(n_generated=0, with_captions=True, image_parts="dropped: no image in training")
        return TrainSet(FeatureDataset(caption_feats, labels), "text", len(captions), description)
    text = FeatureDataset(caption_feats, labels) if caption_feats is not None else None
    rendered = np.zeros(len(captions), dtype=bool)
    rendered[caption_index] = True
    caption_only = np.flatnonzero(~rendered) if text is not None else np.zeros(0, np.int64)
    dataset = MixedDataset(generated, caption_index, text, caption_only, real)
    description.update(n_caption_only=int(len(caption_only)), with_captions=text is not None,
                       n_rows=len(dataset))
    return TrainSet(dataset, "image", len(dataset), description)


def _generated_images(session, cell, method, backbone, plan):
    """(FeatureDataset of the generated images, their caption indices, description) for a generation plan."""
    from bench.cell.trainsets import FeatureDataset
    from bench.generation.generators import generate_all

    generator, captions, caption_index = plan["generator"], plan["captions"], plan["caption_index"]
    rank, world = session.cache.shard()
    before = sum(Path(p).is_file() for p in plan["paths"])
    t0 = time.perf_counter()
    paths = generate_all(generator, [captions[i] for i in caption_index], plan["seeds"].tolist(), plan["root"],
                         batch_size=int(getattr(generator, "batch_size", 8)), progress=session.progress,
                         rank=rank, world=world)
    if world > 1:
        torch.distributed.barrier()
    description = {"generator": generator.identity(), "images_per_caption": method.images_per_caption,
                   "n_newly_generated": len(paths) - before, "generation_seconds": time.perf_counter() - t0}
    keep = np.arange(len(paths))
    if method.exclude_near_duplicates is not None:
        keep, description["near_duplicates_removed"] = _without_near_duplicates(session, backbone, paths,
                                                                                method.exclude_near_duplicates)
    feats_cfg = method_features(session.cfg, cell.method)  # the method's image protocol, as for real images
    views = int(feats_cfg.get("views", 1))
    augment = feats_cfg.get("augment") if views > 1 else None
    kinds = sorted(set(method.image_features.values()))
    feats = session.image_features(backbone, paths, kinds, f"generated ({generator.name}) features",
                                   image_set="generated", views=views, augment=augment)
    arrays = {role: feats[kind] for role, kind in method.image_features.items()}
    caption_index = caption_index[keep]
    description.update(n_generated=int(len(keep)), views=views, augment=augment)
    images = FeatureDataset(arrays, plan["labels"][caption_index], views=views, rows=keep, seed=method.generation_seed)
    return images, caption_index, description


def _without_near_duplicates(session, backbone, paths: list[str], threshold: float) -> tuple[np.ndarray, dict]:
    """Indices of the generated images whose global feature is below ``threshold`` cosine to every test
    image's (the diagnostics' leakage check, :func:`bench.analysis.gaps.near_duplicates`), and a summary."""
    from bench.analysis.gaps import near_duplicates

    test = session.split(session.eval_split)
    generated = np.asarray(session.image_features(backbone, paths, ["global"], "generated features",
                                                   image_set="generated")["global"][0])
    real = np.asarray(session.split_features(backbone, test, ["global"])["global"][0])
    found = near_duplicates(generated, real, threshold=float(threshold))
    keep = np.flatnonzero(found.best_cosine < float(threshold))
    return keep, {"threshold": float(threshold), "n_removed": int(len(paths) - len(keep)),
                  "n_test_images_matched": int(len(np.unique(found.best_test[found.best_cosine >= threshold])))}


def _real_images(session, cell, method, backbone):
    """(FeatureDataset of the cell's labelled train images or None, description): few-shot and partial only."""
    from bench.cell.trainsets import FeatureDataset, image_training_data
    from bench.cell.validation import holdout_rows

    if cell.setting not in ("fewshot", "partial"):  # zero-shot and zsl: generated images and captions only
        return None, {"n_real": 0}
    real = image_training_data(session, cell, method, backbone)
    if not isinstance(real.dataset, FeatureDataset):
        raise UsageError("T2I-PAL's few-shot and partial-label cells need features.mode='cached' "
                         "(the online protocol re-encodes real images only)")
    base = real.dataset
    held = holdout_rows(session, cell)
    keep = np.ones(len(base.rows), dtype=bool) if held is None else ~np.isin(base.rows, held)
    dataset = FeatureDataset(base.arrays, base.labels[keep], views=base.views, rows=base.rows[keep], seed=base.seed)
    known = float((dataset.labels != 0).mean()) if len(dataset) else 0.0
    return dataset, {"n_real": len(dataset), "real_known_label_fraction": known,
                     "real_protocol": real.description.get("protocol"), "real_views": base.views}


class MixedDataset(torch.utils.data.Dataset):
    """Generated images (with their captions), captions alone, and real images, as one set of rows.

    Items: ``feats`` = {"global", "dense", "image_rows", and when captions train: "text", "text_rows"},
    ``targets``. A row without an image has zero image features and ``image_rows`` False; a row
    without a caption has zero caption features (one zero token, the rest padding) and ``text_rows`` False.
    """

    def __init__(self, generated, caption_index: np.ndarray, text, caption_only: np.ndarray, real):
        self.generated, self.caption_index, self.text, self.real = generated, caption_index, text, real
        self.caption_only = caption_only
        sizes = [len(generated) if generated is not None else 0, len(caption_only), len(real) if real else 0]
        self.kinds = np.repeat(np.arange(3), sizes)  # 0 generated, 1 caption, 2 real
        self.offsets = np.r_[0, np.cumsum(sizes)[:-1]]
        image = (generated if generated is not None else real)[0]["feats"]
        self.blank_image = {k: torch.zeros_like(v) for k, v in image.items()}
        self.blank_text = None
        if text is not None:
            self.blank_text = {k: torch.zeros_like(v) for k, v in text[0]["feats"].items()}
            if "dense_mask" in self.blank_text:  # one valid (zero) token: a finite forward (0 * NaN would still be
                self.blank_text["dense_mask"][0] = True  # NaN in the gradient of a masked-out row)

    def __len__(self) -> int:
        return len(self.kinds)

    def set_epoch(self, epoch: int) -> None:
        for part in (self.generated, self.real):
            if part is not None:
                part.set_epoch(epoch)

    def __getitem__(self, i: int) -> dict:
        kind = int(self.kinds[i])
        j = i - int(self.offsets[kind])
        caption = None
        if kind == 0:
            item = self.generated[j]
            caption = int(self.caption_index[j])
        elif kind == 1:
            caption = int(self.caption_only[j])
            item = {"feats": dict(self.blank_image), "targets": self.text[caption]["targets"]}
        else:
            item = self.real[j]
        feats = dict(item["feats"], image_rows=torch.tensor(kind != 1))
        if self.text is not None:
            feats["text"] = self.text[caption]["feats"] if caption is not None else dict(self.blank_text)
            feats["text_rows"] = torch.tensor(caption is not None)
        return {"feats": feats, "targets": item["targets"]}

    def batch(self, indices) -> dict:
        """Items ``indices`` collated, in one read per array and part (generated, real, captions) instead of one
        per item (training reads whole batches through :class:`bench.cell.trainsets.Batched`): the same values,
        dtypes and order as stacking ``self[i]``, whose per-item definition above is the reference."""
        items = np.asarray(indices, dtype=np.int64)
        kinds = self.kinds[items]
        local = items - self.offsets[kinds]  # row within its part
        n = len(items)
        parts = {0: self.generated, 2: self.real}
        targets = None
        image = _blank_rows(self.blank_image, n)
        for kind, part in parts.items():
            at = np.flatnonzero(kinds == kind)
            if len(at):
                got = part.batch(local[at])  # the part's own views, drawn per (seed, epoch, item)
                targets = _put(targets, at, got["targets"], n)
                for role, values in got["feats"].items():
                    image[role][at] = values
        feats = dict(image, image_rows=torch.from_numpy(kinds != 1))
        if self.text is not None:
            caption = np.full(n, -1, dtype=np.int64)
            generated, alone = kinds == 0, kinds == 1
            caption[generated] = self.caption_index[local[generated]]
            caption[alone] = self.caption_only[local[alone]]
            has = np.flatnonzero(caption >= 0)
            text = _blank_rows(self.blank_text, n)
            if len(has):
                got = self.text.batch(caption[has])
                for role, values in got["feats"].items():
                    text[role][has] = values
                at = np.flatnonzero(alone)  # a caption alone: its caption's labels
                targets = _put(targets, at, got["targets"][np.flatnonzero(alone[has])], n)
            feats["text"] = text
            feats["text_rows"] = torch.from_numpy(caption >= 0)
        return {"feats": feats, "targets": targets}


def _blank_rows(blank: dict, n: int) -> dict:
    """``n`` copies of a blank row's tensors, to be filled where a part has the row."""
    return {role: v.unsqueeze(0).repeat(n, *[1] * v.dim()) for role, v in blank.items()}


def _put(out: torch.Tensor | None, at: np.ndarray, values: torch.Tensor, n: int) -> torch.Tensor:
    """``values`` written at rows ``at`` of ``out`` (created with ``n`` rows on first use)."""
    if out is None:
        out = torch.zeros((n, *values.shape[1:]), dtype=values.dtype)
    if len(at):
        out[torch.from_numpy(at)] = values
    return out

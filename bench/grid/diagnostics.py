"""Per-dataset diagnostics records: modality gap, synthetic-to-real domain gap, leakage.

Written by ``bench run`` after the cells, from features already in the cache (plus those of the
train split's images for the real-vs-real reference), as records of ``kind: "diagnostics"`` beside
the cell records, so ``bench report`` can show them without computing anything:

  modality gap  real test images vs their own captions (paired), and generated images vs the
                captions they were rendered from (paired): bench.analysis.gaps.modality_gap on the
                global image feature and the caption's EOT feature.
  domain gap    Fréchet distance, in CLIP space (L2-normalised global features), between the
                generated images and the real test images, next to the same distance between
                real train and real test images (what "no gap" looks like at these sample sizes).
  leakage       for every generated image, its most similar real test image (cosine of global
                features); near duplicates at or above ``threshold`` are counted and the top ones
                listed (a text-to-image model trained on web data may reproduce test images).
One record per dataset for the real images alone (``diagnostics__real``) and one per generator
setup a generated-image method used (``diagnostics__<method>``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.analysis.gaps import frechet_distance, l2_normalise, modality_gap, near_duplicates
from bench.cell.plan import plan_cell, read_record
from bench.cell.session import Session
from bench.io import read_json, sha256_json, write_json
from bench.phases import timed
from bench.provenance import environment
from bench.records import RECORD_VERSION
from bench.registry import construct

MAX_FEATURES = 5000  # rows per set for the Fréchet and modality statistics: bounded time and memory


def _subsample(n: int, limit: int = MAX_FEATURES, seed: int = 0) -> np.ndarray:
    return np.arange(n) if n <= limit else np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


class _Features:
    """The global features diagnostics read: memory-mapped views of the cache [N, D] (fp16), so only the rows a
    statistic subsamples, and the chunks of the near-duplicate search, are ever in memory."""

    def __init__(self, session: Session, backbone):
        self.session, self.backbone = session, backbone
        self._splits: dict[str, np.ndarray] = {}

    def images(self, paths: list[str], desc: str) -> np.ndarray:
        """Global features of generated images (stored by the training pass over them when the sweep planned it)."""
        return self.session.image_features(self.backbone, paths, ["global"], desc, image_set="generated")["global"][0]

    def split(self, name: str) -> np.ndarray:
        if name not in self._splits:
            feats = self.session.split_features(self.backbone, self.session.split(name), ["global"])
            self._splits[name] = feats["global"][0]
        return self._splits[name]

    def captions(self, captions: list[str], desc: str) -> np.ndarray:
        feats = self.session.cache.caption_features(self.backbone, captions, desc=desc)["global"]
        return np.asarray(feats, np.float32)


def real_image_diagnostics(session: Session, features: _Features) -> dict:
    """Modality gap of real test images and their captions (when the split has captions)."""
    test = session.split(session.eval_split)
    pairs = [(i, caps[0]) for i, caps in enumerate(test.captions) if caps]
    out: dict = {"real_images_vs_captions": None}
    if pairs:
        rows = _subsample(len(pairs))
        images = features.split(session.eval_split)[[pairs[r][0] for r in rows]]
        texts = features.captions([pairs[r][1] for r in rows], "test caption features")
        out["real_images_vs_captions"] = modality_gap(images, texts)
    return out


def _up_to_date(path: Path, inputs: str) -> bool:
    return path.is_file() and read_json(path).get("inputs") == inputs


def write_diagnostics(session: Session, cells, threshold: float = 0.95, force: bool = False) -> list[Path]:
    """Write the diagnostics records for a sweep's dataset and the generated-image methods among ``cells``.

    A record is rewritten when what it was computed from changed (``inputs``: backbone, evaluation
    split, leak threshold, and for generated images the generator and the images) or with ``force``."""
    folder = session.work_dir / "records" / session.dataset.name
    backbone = session.backbone()
    identity = {"spec": backbone.cache_identity()["spec"], "weights_sha256": backbone.weights_hash}
    base = {"record_version": RECORD_VERSION, "kind": "diagnostics", "status": "ok", "dataset": session.dataset.name,
            "eval_split": session.eval_split, "backbone": identity, "environment": environment(session.device)}
    features = _Features(session, backbone)
    # the evaluation split's content too (bench.cell.datakey): edited annotations or images recompute it
    real_inputs = sha256_json([identity, session.eval_split, session.data.split(session.eval_split)])[:8]
    real_path = folder / "diagnostics__real.json"
    real = None
    if force or not _up_to_date(real_path, real_inputs):
        real = real_image_diagnostics(session, features)
        write_json(real_path, {**base, "inputs": real_inputs, "generator": None, "modality_gap": real,
                               "domain_gap": None, "leakage": None})
    written = [real_path]
    seen = set()
    for cell in cells:
        plan = plan_cell(session.cfg, cell)
        if plan.method_cls.trains_on != "generated" or cell.setting == "zsl":  # zsl renders another caption set
            continue  # (seen classes only); not described here
        if (read_record(cell.record_path(session.work_dir)) or {}).get("status") != "ok":
            continue  # not run, or failed (e.g. its generator would not load): no generated images to describe
        method = construct(plan.method_cls, plan.kwargs, cell.method)  # only its generation settings are read
        if method.trains_on != "generated" or not getattr(method, "use_generated", True):
            continue  # e.g. T2I-PAL's "w/o T2I" row renders nothing
        from bench.cell.generated import generation_plan

        gen = generation_plan(session, method)
        key = sha256_json([gen["generator"].identity(), gen["paths"]])[:8]
        if key in seen:
            continue
        seen.add(key)
        path = folder / f"diagnostics__{cell.method}.json"
        inputs = sha256_json([key, real_inputs, threshold])[:8]
        if not force and _up_to_date(path, inputs):
            written.append(path)
            continue
        if real is None:
            real = real_image_diagnostics(session, features)
        written.append(_generated_record(session, features, gen, base, real, threshold, inputs, path))
    return written


def _generated_record(session, features: _Features, gen: dict, base: dict, real: dict, threshold: float,
                      inputs: str, path: Path) -> Path:
    test = session.split(session.eval_split)
    generated = features.images(gen["paths"], "generated features")
    test_feats = features.split(session.eval_split)
    train_feats = features.split("train")
    rows = _subsample(len(generated))
    caption_feats = features.captions([gen["captions"][gen["caption_index"][r]] for r in rows], "caption features")
    real_rows, train_rows = _subsample(len(test_feats)), _subsample(len(train_feats))
    with timed("diagnostics: near duplicates of test images"):
        found = near_duplicates(generated, test_feats, threshold=threshold)
    record = {
        **base, "inputs": inputs, "generator": gen["generator"].identity(), "n_generated": len(generated),
        "modality_gap": {**real, "generated_images_vs_captions": modality_gap(generated[rows], caption_feats)},
        "domain_gap": {
            "frechet_generated_vs_real": frechet_distance(l2_normalise(generated[rows]),
                                                          l2_normalise(test_feats[real_rows])),
            "frechet_real_train_vs_real_test": frechet_distance(l2_normalise(train_feats[train_rows]),
                                                                l2_normalise(test_feats[real_rows])),
            "n_generated": int(len(rows)), "n_real": int(len(real_rows)), "features": "L2-normalised global",
        },
        "leakage": {
            "threshold": threshold, "n_generated": int(len(generated)), "n_test": int(len(test_feats)),
            "n_near_duplicates": found.n_near_duplicates, "max_similarity": found.max_similarity,
            "near_duplicates": [{"generated": gen["paths"][g], "test": test.image_paths[t], "cosine": c}
                                for g, t, c in found.top],
        },
    }
    write_json(path, record)
    return path

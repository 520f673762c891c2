"""One cell = (method, dataset, setting, label ratio, seed): build, train, evaluate, record.

Training goes through mmengine's ``Runner`` (its loops, optimiser wrapper, AMP, parameter
schedulers, checkpoint hook and resume, logging, visualizer); bench only supplies the model
(the method wrapped in :class:`CellModel`) and the data (cached features, or images re-encoded
every step in the ``online`` protocol). Evaluation is a plain loop over cached test features.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import platform
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch.utils.data import DataLoader, Dataset

from bench import __version__
from bench.backbone import load_backbone, resolve_spec
from bench.cache import FeatureCache, ImageRows, atomic_write_text, augmentation
from bench.config import cell_config, config_hash, method_class, method_config, to_plain
from bench.data.base import SETTINGS, DataError, Split, apply_partial_labels, check_label_ratio, few_shot_indices
from bench.method import Method, as_scores
from bench.metrics import f1_block, multilabel_metrics
from bench.online import encode_pixels, encode_test_images, image_mode, image_protocol, wants_pixels
from bench.records import save_scores
from bench.registry import DATASETS, build, construct

RECORD_VERSION = 1
_RUNNER_IDS = itertools.count()  # mmengine names its logger/visualizer instances; keep them unique per process
log = logging.getLogger("bench")


class NonFiniteLoss(FloatingPointError):
    """A training loss became NaN or inf."""


@dataclass(frozen=True)
class Cell:
    method: str
    dataset: str
    setting: str
    label_ratio: float | None
    seed: int

    def __post_init__(self):
        if self.setting not in SETTINGS:
            raise ValueError(f"unknown setting {self.setting!r}; valid: {SETTINGS}")
        if self.setting == "partial":
            check_label_ratio(self.label_ratio)

    @property
    def name(self) -> str:
        ratio = f"_r{self.label_ratio:g}" if self.label_ratio is not None else ""
        return f"{self.method}__{self.setting}{ratio}__s{self.seed}"

    def record_path(self, work_dir: Path) -> Path:
        return Path(work_dir) / "records" / self.dataset / f"{self.name}.json"


class Session:
    """What cells of one run share: datasets, loaded backbones, the feature cache."""

    def __init__(self, cfg, work_dir: str | Path, device: str | None = None, progress: bool = True):
        self.cfg = cfg
        self.work_dir = Path(work_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.progress = progress
        runtime = cfg.get("runtime", {}) or {}
        # "test" for results; "val" to tune hyperparameters without touching the test split (toy world:
        # minival2014). Recorded in every record (config.eval_split).
        self.eval_split = runtime.get("eval_split", "test")
        self.cache = FeatureCache(runtime.get("cache_dir") or self.work_dir.parent / "cache", progress=progress)
        self.dataset = build(DATASETS, to_plain(cfg.dataset))
        if self.eval_split != "test" and not self.dataset.has_split(self.eval_split):
            raise DataError(f"{self.dataset.name} has no {self.eval_split!r} split to evaluate on")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cfg.dump(str(self.work_dir / "config.py"))  # the whole run's config, --cfg-options applied
        self._splits: dict[str, Split] = {}
        self._backbones: dict = {}

    def split(self, name: str) -> Split:
        if name not in self._splits:
            self._splits[name] = self.dataset.load(name)
        return self._splits[name]

    def backbone(self, overrides: dict | None = None):
        spec = resolve_spec({**to_plain(self.cfg.backbone), **(overrides or {})})
        if spec not in self._backbones:
            amp = (self.cfg.get("runtime", {}) or {}).get("amp")
            self._backbones[spec] = load_backbone(spec, device=self.device, amp=amp)
        return self._backbones[spec]

    def image_features(self, backbone, paths: list[str], kinds, desc: str, **kw) -> dict[str, np.ndarray]:
        """The cache's features of ``paths``, extracted with the config's ``features`` batch size and workers."""
        feats = self.cfg.get("features", {}) or {}
        return self.cache.image_features(backbone, paths, kinds, batch_size=feats.get("batch_size", 64),
                                         num_workers=feats.get("num_workers", 0), desc=desc, **kw)

    def split_features(self, backbone, split: Split, kinds, **kw) -> dict[str, np.ndarray]:
        return self.image_features(backbone, split.image_paths, kinds, f"{split.dataset}/{split.split} features", **kw)


# ----- data -------------------------------------------------------------------------------------
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

    def __getitem__(self, i: int) -> dict:
        r = int(self.rows[i])
        if self.views is None:
            rows = {role: a[r] for role, a in self.arrays.items()}
        else:
            view = int(np.random.default_rng([self.seed, self.epoch, i]).integers(self.views)) if self.views > 1 else 0
            rows = {role: a[view, r] for role, a in self.arrays.items()}
        # np.array copies out of the read-only memmap (torch warns on non-writable buffers)
        feats = {role: torch.from_numpy(np.array(r, dtype=np.bool_ if r.dtype == np.bool_ else np.float32))
                 for role, r in rows.items()}
        return {"feats": feats, "targets": torch.from_numpy(self.labels[i].astype(np.float32))}


class EpochSampler(DefaultSampler):
    """mmengine's seeded shuffling sampler (order = f(seed, epoch), so resuming mid-run replays the
    same batches), which also tells the dataset the epoch."""

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


class ImageDataset(Dataset):
    """Images with train-time augmentation, for the ``online`` protocol (re-encoded every step)."""

    def __init__(self, paths: list[str], labels: np.ndarray, transform):
        self.rows = ImageRows(paths, np.arange(len(paths)), len(paths), transform, None)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"pixels": self.rows[i], "targets": torch.from_numpy(self.labels[i].astype(np.float32))}


@dataclass
class TrainSet:
    dataset: Dataset
    modality: str  # "image" or "text"
    size: int
    description: dict


class CellModel(BaseModel):
    """The method as an mmengine model: ``forward(feats | pixels, targets, mode)``."""

    def __init__(self, method: Method, modality: str = "image"):
        super().__init__()
        self.method = method
        self.modality = modality

    def forward(self, feats=None, targets=None, pixels=None, mode: str = "tensor"):
        if pixels is not None:  # online protocol: encode the augmented images now (bench/online.py)
            feats = encode_pixels(self.method, pixels)
        feats = dict(feats, modality=self.modality)
        if "text" in feats:  # paired captions (T2I-PAL): texts as images
            feats["text"] = dict(feats["text"], modality="text")
        logits = self.method.logits(feats)
        if mode == "loss":
            loss = self.method.loss(logits, targets)
            if not torch.isfinite(loss):
                raise NonFiniteLoss(f"{self.method.name}: non-finite training loss ({loss.item()})")
            return {"loss": loss}
        if mode == "predict":
            return [(as_scores(logits)["score"].detach().float().cpu(), targets.cpu())]
        return logits


class ProgressHook(Hook):
    """A progress bar over a cell's training iterations, with the running loss (resumes where it left off)."""

    priority = "VERY_LOW"

    def __init__(self, desc: str, enabled: bool = True):
        self.desc, self.enabled, self.bar = desc, enabled, None

    def before_train(self, runner) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=runner.max_iters, initial=runner.iter, desc=self.desc, unit="it",
                        disable=not self.enabled, leave=False)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.bar.update(1)
        if outputs and "loss" in outputs:
            self.bar.set_postfix(loss=f"{float(outputs['loss'].detach()):.4f}", epoch=runner.epoch + 1)

    def after_train(self, runner) -> None:
        self.bar.close()


# ----- the cell ------------------------------------------------------------------------------------
@dataclass
class CellPlan:
    """A cell with its method class and resolved configuration (what the record's hash covers)."""

    cell: Cell
    method_cls: type
    kwargs: dict
    train: dict
    backbone_overrides: dict
    config: dict


@dataclass
class Prepared:
    """A built method with its data: test features, and the training set when the method trains."""

    method: Method
    backbone: object
    test: Split
    test_arrays: dict[str, np.ndarray]
    trainset: TrainSet | None
    seconds: dict


def plan_cell(cfg, cell: Cell) -> CellPlan:
    """The cell's method, its arguments and schedule, and the cell config its record is keyed by."""
    method_cls = method_class(cfg, cell.method)
    if cell.setting not in method_cls.settings:
        raise ValueError(f"method {cell.method} does not support the {cell.setting!r} setting "
                         f"(supports: {', '.join(method_cls.settings)})")
    kwargs, train, backbone_overrides = method_config(cfg, cell.method, method_cls, cell.setting)
    method_type = method_cls.name or cell.method  # a variant's base method (e.g. t2ipal for an ablation row)
    return CellPlan(cell, method_cls, kwargs, train, backbone_overrides,
                    cell_config(cfg, cell.method, method_type, kwargs, train, backbone_overrides))


def record_state(record_path: Path, plan: CellPlan) -> str:
    """"done" (an ok record made with this plan's config: a rerun skips the cell), "stale" (an ok
    record of another config: a rerun recomputes it), "failed" (an error record) or "todo" (none)."""
    if not record_path.is_file():
        return "todo"
    record = json.loads(record_path.read_text())
    if record.get("status") != "ok":
        return "failed"
    return "done" if record.get("config_hash") == config_hash(plan.config) else "stale"


def prepare_cell(session: Session, plan: CellPlan) -> Prepared:
    """Build the method and get its features (computed once into the cache, then read)."""
    from mmengine.runner import set_random_seed

    backbone = session.backbone(plan.backbone_overrides)
    test = session.split(session.eval_split)
    # the method's initial parameters must not depend on what ran before in this process (loading a
    # backbone the first time draws random numbers: open_clip initialises before loading weights)
    set_random_seed(plan.cell.seed)
    method: Method = construct(plan.method_cls, plan.kwargs, f"method {plan.cell.method!r}")
    method.build(backbone, test.classnames)
    method.to(backbone.device)
    t0 = time.perf_counter()
    kinds = sorted(set(method.image_features.values()))
    test_feats = session.split_features(backbone, test, kinds)
    test_arrays = {role: test_feats[kind][0] for role, kind in method.image_features.items()}
    t1 = time.perf_counter()
    trainset = training_data(session, plan.cell, method, backbone, plan.train) if method.trains_on else None
    seconds = {"extract_test": t1 - t0, "prepare_train": time.perf_counter() - t1}
    return Prepared(method, backbone, test, test_arrays, trainset, seconds)


def run_cell(session: Session, cell: Cell, force: bool = False) -> Path:
    """Run one cell and write its record atomically; return the record path.

    A cell whose record was made with the same config is not recomputed unless ``force``; a record
    from another config (e.g. after an edited config file) is recomputed and replaced, with a
    warning. A cell whose training loss turns non-finite writes an error record (``status:
    "failed"``) and re-raises, so a sweep can go on and the report shows it; bad input raises
    before anything is written.
    """
    record_path = cell.record_path(session.work_dir)
    plan = plan_cell(session.cfg, cell)
    if not force:
        state = record_state(record_path, plan)
        if state == "done":
            return record_path
        if state == "stale":
            log.warning("%s: the config changed since its record was written; recomputing", cell.name)
    cell_dir = session.work_dir / "cells" / cell.dataset / cell.name
    cell_dir.mkdir(parents=True, exist_ok=True)
    config_text = json.dumps(plan.config, indent=1, default=str)
    previous = cell_dir / "config.json"
    if force or (previous.is_file() and previous.read_text() != config_text):
        clear_checkpoints(cell_dir)  # never resume training from another config's (or a forced cell's) state
    atomic_write_text(previous, config_text)
    base = {"record_version": RECORD_VERSION, "method": cell.method, "dataset": cell.dataset,
            "setting": cell.setting, "label_ratio": cell.label_ratio, "seed": cell.seed,
            "config_hash": config_hash(plan.config), "config": plan.config,
            "environment": environment(session.device)}
    try:
        record = {"status": "ok", **base, **_run(session, plan, cell_dir)}
    except NonFiniteLoss as exc:
        record = {"status": "failed", **base, "error": f"{type(exc).__name__}: {exc}"}
        atomic_write_text(record_path, json.dumps(record, indent=1, default=str))
        raise
    atomic_write_text(record_path, json.dumps(record, indent=1, default=str))
    clear_checkpoints(cell_dir)  # the record is what counts now; checkpoints were only for resuming
    return record_path


def clear_checkpoints(cell_dir: Path) -> None:
    for path in [*cell_dir.glob("*.pth"), cell_dir / "last_checkpoint"]:
        path.unlink(missing_ok=True)


def latest_checkpoint(cell_dir: Path) -> str | None:
    """The newest epoch checkpoint that loads completely (a kill during ``torch.save`` leaves a
    truncated file, and mmengine's ``last_checkpoint`` pointer is not written atomically)."""
    epochs = sorted(cell_dir.glob("epoch_*.pth"), key=lambda p: int(p.stem.split("_")[1]), reverse=True)
    for path in epochs:
        try:
            torch.load(path, map_location="cpu", weights_only=False)
            return str(path)
        except Exception:  # truncated or corrupt: fall back to the one before
            log.warning("ignoring unreadable checkpoint %s", path)
    return None


def _run(session: Session, plan: CellPlan, cell_dir: Path) -> dict:
    cell, train = plan.cell, plan.train
    if session.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    prepared = prepare_cell(session, plan)
    method, backbone, test, trainset = prepared.method, prepared.backbone, prepared.test, prepared.trainset
    t0 = time.perf_counter()
    if trainset is not None and train.get("epochs", 0) > 0:
        # mmengine's Runner reseeds (randomness=dict(seed)): the same initial state whether or not
        # features were just extracted
        fit(session, cell, method, trainset, train, cell_dir)
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    feats_cfg = to_plain(session.cfg.get("features", {}) or {})
    test_arrays = prepared.test_arrays
    if wants_pixels(method):  # the method trained the image tower: encode the test images now (bench/online.py)
        test_arrays = encode_test_images(method, test.image_paths, feats_cfg.get("eval_batch_size", 256),
                                         feats_cfg.get("num_workers", 0))
    scores = predict(method, test_arrays, batch_size=feats_cfg.get("eval_batch_size", 256))
    threshold = float(method.score_threshold)
    results = {name: multilabel_metrics(s, test.labels, test.classnames, threshold=threshold)
               for name, s in scores.items()}
    eval_seconds = time.perf_counter() - t0
    save_scores(cell.record_path(session.work_dir), scores, test)
    main = results["score"]
    return {
        "mAP": main["mAP"],
        "per_class_AP": main["per_class_AP"],
        "empty_classes": main["empty_classes"],
        "f1": f1_block(main),
        "branches": {name: r["mAP"] for name, r in results.items()},
        "backbone": {"spec": dataclasses.asdict(backbone.spec), "weights_sha256": backbone.weights_hash},
        "image_protocol": image_protocol(method, feats_cfg) if method.trains_on == "images" else None,
        "method_hparams": to_plain(method.hparams()),
        "train_schedule": train,
        "train_data": trainset.description if trainset is not None else None,
        "n_test": len(test),
        "n_trainable_params": sum(p.numel() for p in method.trainable_parameters()),
        "seconds": {**prepared.seconds, "train": train_seconds, "eval": eval_seconds},
        "peak_memory_mb": peak_memory_mb(session.device),
    }


def training_data(session: Session, cell: Cell, method: Method, backbone, train: dict) -> TrainSet:
    """The cell's training set, from what the method trains on and the cell's setting."""
    if method.trains_on == "images":
        return image_training_data(session, cell, method, backbone)
    if method.trains_on == "captions":
        return caption_training_data(session, method, backbone)
    if method.trains_on == "generated":
        from bench.generate import generated_training_data

        return generated_training_data(session, cell, method, backbone)
    raise ValueError(f"{method.name}: unknown trains_on {method.trains_on!r}")


def image_training_data(session: Session, cell: Cell, method: Method, backbone) -> TrainSet:
    """Train-split images with the cell's label budget: partial labels at its ratio, or a few-shot
    subset. Features are always those of the whole split (one cache entry for every ratio, seed and
    shot count); a few-shot cell reads its rows."""
    full = session.split("train")
    rows = np.arange(len(full))
    split = full
    if cell.setting == "partial":
        split = apply_partial_labels(full, cell.label_ratio, cell.seed)
    elif cell.setting == "fewshot":
        shots = (session.cfg.get("sweep", {}) or {}).get("shots", 16)
        rows = few_shot_indices(full.labels, shots, cell.seed)
        split = full.subset(rows)
    known = float((split.labels != 0).mean())
    feats_cfg = to_plain(session.cfg.get("features", {}) or {})
    mode = image_mode(method, feats_cfg)  # "online" for a method that trains the image tower (bench/online.py)
    description = {"split": "train", "n_images": len(split), "known_label_fraction": known, "protocol": mode}
    if mode == "online":
        transform = augmentation(backbone, **(feats_cfg.get("augment") or {}))
        return TrainSet(ImageDataset(split.image_paths, split.labels, transform), "image", len(split), description)
    if mode != "cached":
        raise ValueError(f"features.mode must be 'cached' or 'online', got {mode!r}")
    views = int(feats_cfg.get("views", 1))
    augment = feats_cfg.get("augment") if views > 1 else None
    kinds = sorted(set(method.image_features.values()))
    feats = session.split_features(backbone, full, kinds, views=views, augment=augment)
    arrays = {role: feats[kind] for role, kind in method.image_features.items()}
    description.update(views=views, augment=augment)
    dataset = FeatureDataset(arrays, split.labels, views=views, rows=rows, seed=cell.seed)
    return TrainSet(dataset, "image", len(split), description)


def parsed_captions(session: Session, method: Method) -> tuple[list[str], np.ndarray, dict]:
    """The dataset's training caption corpus, labelled by the caption parser: (captions, labels [M, C]
    in {1, -1}, description). Methods may subsample (``select_captions``) and add captions
    (``extra_captions``, e.g. TaI-DPT's per-class template captions)."""
    from bench.data.captions import CaptionParser

    dataset = session.dataset
    parser = CaptionParser.from_file(dataset.synonyms, session.split(session.eval_split).classnames)
    corpus = dataset.caption_corpus()
    captions, labels = parser.parse_corpus(corpus)
    n_parsed = len(captions)
    if hasattr(method, "select_captions"):
        captions, labels = method.select_captions(captions, labels)
    extra = getattr(method, "extra_captions", None)
    n_extra = 0
    if extra is not None:
        more, more_labels = extra(parser.classnames)
        captions, labels, n_extra = captions + more, np.concatenate([labels, more_labels]), len(more)
    if not captions:
        raise DataError(f"no caption of the {dataset.name} corpus names a class; check the synonym file")
    description = {"corpus": f"{dataset.name} train captions", "n_corpus": len(corpus), "n_parsed": n_parsed,
                   "n_captions": len(captions), "n_extra_captions": n_extra, "synonyms": dataset.synonyms}
    return captions, labels, description


def caption_training_data(session: Session, method: Method, backbone) -> TrainSet:
    """Texts as images: the caption corpus's EOT and token features (TaI-DPT)."""
    captions, labels, description = parsed_captions(session, method)
    feats = session.cache.caption_features(backbone, captions, desc=f"{session.dataset.name} caption features")
    return TrainSet(FeatureDataset(feats, labels), "text", len(captions), description)


def fit(session: Session, cell: Cell, method: Method, trainset: TrainSet, train: dict, cell_dir: Path) -> None:
    """Train the method's parameters with mmengine's Runner; resumes from the cell's last checkpoint."""
    from mmengine.runner import Runner

    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # mmengine resume of our own checkpoints
    epochs = int(train["epochs"])
    resume_from = latest_checkpoint(cell_dir)
    loader = DataLoader(trainset.dataset, batch_size=int(train["batch_size"]),
                        sampler=EpochSampler(trainset.dataset, shuffle=True, seed=cell.seed),
                        num_workers=int(train.get("num_workers", 0)), drop_last=False)
    runtime = session.cfg.get("runtime", {}) or {}
    amp = runtime.get("amp") if session.device.startswith("cuda") else None
    optim_wrapper = dict(type="AmpOptimWrapper" if amp else "OptimWrapper", optimizer=dict(train["optimizer"]))
    if amp:
        optim_wrapper["dtype"] = {"fp16": "float16", "bf16": "bfloat16"}[amp]
    if train.get("paramwise_cfg"):
        optim_wrapper["paramwise_cfg"] = train["paramwise_cfg"]
    if train.get("clip_grad"):
        optim_wrapper["clip_grad"] = train["clip_grad"]
    runner = Runner(
        model=CellModel(method, trainset.modality),
        work_dir=str(cell_dir),
        train_dataloader=loader,
        optim_wrapper=optim_wrapper,
        param_scheduler=lr_schedule(train),
        train_cfg=dict(by_epoch=True, max_epochs=epochs, val_interval=10**9),
        default_hooks=dict(
            # every epoch kept: mmengine deletes the previous checkpoint before writing the next, so a
            # kill in between would leave nothing to resume from; the cell deletes them when it ends
            checkpoint=dict(type="CheckpointHook", interval=1, by_epoch=True, max_keep_ckpts=-1),
            logger=dict(type="LoggerHook", interval=runtime.get("log_interval", 50)),
        ),
        visualizer=dict(type="Visualizer", vis_backends=[dict(type=b) for b in runtime.get("vis_backends", [])])
        if runtime.get("vis_backends") else None,
        custom_hooks=[ProgressHook(f"train {cell.name}", session.progress)],
        randomness=dict(seed=cell.seed),
        log_level=runtime.get("log_level", "WARNING"),
        resume=resume_from is not None,
        load_from=resume_from,
        default_scope="mmengine",
        experiment_name=f"{cell.name}_{next(_RUNNER_IDS)}",  # mmengine appends its timestamp
    )
    runner.train()


def lr_schedule(train: dict) -> list[dict]:
    """Constant warm-up, then cosine annealing with the period of the whole run (Dassl's
    ``ConstantWarmupScheduler`` wrapping ``CosineAnnealingLR(T_max=max_epoch)``, used by CoOp and TaI-DPT)."""
    epochs, warmup = int(train["epochs"]), int(train.get("warmup_epochs", 0))
    schedule = []
    if warmup > 0:
        factor = float(train.get("warmup_lr", 1e-5)) / float(train["optimizer"]["lr"])
        # mmengine's ConstantLR restores the lr when it steps into epoch `end - 1`, so the factor covers
        # epochs [0, warmup) only with end = warmup + 1 (end = warmup would keep it for the whole run)
        schedule.append(dict(type="ConstantLR", factor=factor, begin=0, end=warmup + 1, by_epoch=True))
    if train.get("scheduler", "cosine") == "cosine" and epochs > warmup:
        schedule.append(dict(type="CosineAnnealingLR", T_max=epochs, begin=warmup, end=epochs,
                             by_epoch=True, eta_min=0.0))
    return schedule


@torch.no_grad()
def predict(method: Method, arrays: dict[str, np.ndarray], batch_size: int = 256) -> dict[str, np.ndarray]:
    """Every named score matrix of the method over the rows of ``arrays`` (cached test features)."""
    method.eval()
    n = len(next(iter(arrays.values())))
    device = method.backbone.device
    out: dict[str, list[np.ndarray]] = {}
    for start in range(0, n, batch_size):
        feats = {role: torch.from_numpy(np.asarray(a[start:start + batch_size], dtype=np.float32)).to(device)
                 for role, a in arrays.items()}
        feats["modality"] = "image"
        with method.backbone.autocast():
            scores = as_scores(method.logits(feats))
        for name, s in scores.items():
            out.setdefault(name, []).append(s.float().cpu().numpy())
    method.train()
    return {name: np.concatenate(parts) for name, parts in out.items()}


# ----- provenance --------------------------------------------------------------------------------
def peak_memory_mb(device: str) -> dict:
    out = {"process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda"):
        out["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def git_commit() -> str | None:
    """The bench checkout's commit, with '+dirty' when it has uncommitted changes; None outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("torch", "open_clip_torch", "mmengine", "numpy", "diffusers", "transformers", "peft"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {"bench": __version__, "python": platform.python_version(), "packages": versions,
            "git_commit": git_commit(), "device": device, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if device.startswith("cuda") else None}

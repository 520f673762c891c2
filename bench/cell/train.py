"""The training loop of a cell: the method as an mmengine model, mmengine's ``Runner`` (its loops, optimiser
wrapper, AMP, parameter schedulers, checkpoint hook and resume, logging, visualizer) fed by a seeded sampler,
the learning-rate schedule, checkpoints, and prediction over cached test features.

bench only supplies the model (the method wrapped in :class:`CellModel`) and the data (a
:class:`bench.cell.trainsets.TrainSet`: cached features, or images re-encoded every step in the ``online``
protocol); evaluation is a plain loop (:func:`predict`).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch.utils.data import DataLoader

from bench.cell.checkpoints import BACKEND as CHECKPOINT_BACKEND
from bench.cell.checkpoints import PlainCheckpointHook, latest_checkpoint
from bench.cell.online import encode_pixels
from bench.cell.plan import Cell
from bench.cell.session import Session
from bench.cell.trainsets import Batched, TrainSet, collate_batch
from bench.errors import NonFiniteLoss
from bench.method import Method, as_scores

_RUNNER_IDS = itertools.count()  # mmengine names its logger/visualizer instances; keep them unique per process
log = logging.getLogger("bench")


class EpochSampler(DefaultSampler):
    """mmengine's seeded shuffling sampler (order = f(seed, epoch), so resuming mid-run replays the
    same batches), which also tells the dataset the epoch. ``limit``: only the first ``limit`` indices of each
    epoch's order (``train.steps_per_epoch`` batches: for benchmarks that time steps at full size)."""

    def __init__(self, dataset, shuffle: bool = True, seed: int | None = None, limit: int | None = None):
        super().__init__(dataset, shuffle=shuffle, seed=seed)
        self.limit = limit

    def __iter__(self):
        indices = super().__iter__()
        return indices if self.limit is None else iter(list(indices)[:self.limit])

    def __len__(self) -> int:
        return super().__len__() if self.limit is None else min(self.limit, super().__len__())

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


class CellModel(BaseModel):
    """The method as an mmengine model: ``forward(feats | pixels, targets, mode)``."""

    def __init__(self, method: Method, modality: str = "image"):
        super().__init__()
        self.method = method
        self.modality = modality

    def forward(self, feats=None, targets=None, pixels=None, mode: str = "tensor"):
        if pixels is not None:  # online protocol: encode the augmented images now (bench/cell/online.py)
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


def fit(session: Session, cell: Cell, method: Method, trainset: TrainSet, train: dict, cell_dir: Path) -> None:
    """Train the method's parameters with mmengine's Runner; resumes from the cell's last checkpoint."""
    from mmengine.runner import Runner

    epochs = int(train["epochs"])
    resume_from = latest_checkpoint(cell_dir)
    # datasets of cached features hand over whole batches (Batched): one read per array and batch, not per item
    data = Batched(trainset.dataset) if hasattr(trainset.dataset, "batch") else trainset.dataset
    steps = train.get("steps_per_epoch")  # None: every batch of the epoch
    loader = DataLoader(data, batch_size=int(train["batch_size"]),
                        sampler=EpochSampler(trainset.dataset, shuffle=True, seed=cell.seed,
                                             limit=int(steps) * int(train["batch_size"]) if steps else None),
                        num_workers=int(train.get("num_workers", 0)), drop_last=False, collate_fn=collate_batch)
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
            # written atomically through bench's writer, as plain data (bench/cell/checkpoints.py)
            checkpoint=dict(type="CheckpointHook", interval=1, by_epoch=True, max_keep_ckpts=-1,
                            backend_args=dict(backend=CHECKPOINT_BACKEND)),
            logger=dict(type="LoggerHook", interval=runtime.get("log_interval", 50)),
        ),
        visualizer=dict(type="Visualizer", vis_backends=[dict(type=b) for b in runtime.get("vis_backends", [])])
        if runtime.get("vis_backends") else None,
        custom_hooks=[PlainCheckpointHook(), ProgressHook(f"train {cell.name}", session.progress)],
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

"""Tip-Adapter and Tip-Adapter-F (Zhang et al., ECCV 2022) as multi-label baselines (methods.md sec. 5b).

Reference: gaopengcuhk/Tip-Adapter @d0e2d6f ``main.py``, ``utils.py``, ``configs/*.yaml`` (cited as
``main.py:<line>`` etc.).

Cache model (``utils.py:38-71``): keys = the L2-normalised training image features, averaged over the
augmented views first (the reference averages ``augment_epoch`` = 10 random-crop/flip passes,
``utils.py:46-61``; bench averages the ``features.views`` cached views, 1 = the plain transform);
values = the labels. Forward for a normalised image feature x (``main.py:39-42``)::

    clip_logits  = 100 * x W_c^T                        W_c: normalised class text features
    affinity     = x K^T                                cosine to every cache key
    cache_logits = exp(-beta * (1 - affinity)) V         V: [N_cache, C] values
    logits       = clip_logits + alpha * cache_logits

The ``100`` is the reference's literal (``main.py:32``: CLIP's logit scale for OpenAI weights), kept
for every backbone so that the alpha grid means what it means there; text features are zero-shot
CLIP's (``methods/zsclip.py``, template "a photo of a {}.", ``utils.py:18-35``). Each record also
holds the ``clip`` and ``cache`` branches alone.

alpha, beta: the reference's grid ``search_hp`` (``utils.py:99-129``): beta over ``search_step[0]``
values i * (search_scale[0] - 0.1) / search_step[0] + 0.1, alpha likewise over ``search_step[1]``,
beta-major, the first strict best kept. **Differences, on purpose**: the search maximises mAP over
the known labels of a *validation set* that never includes test images (``bench/cell/fitdata.py``: the
dataset's val split with the cell's label budget, or a 20% holdout of the training images); the
reference maximises top-1 accuracy, on its val split in ``main.py:47,132`` but on the *test* split in
``main_imagenet.py:43,110``. The chosen alpha, beta and their val mAP are in the record (``fit``),
flagged ``at_grid_edge`` when the best sits on the grid's border.

Multi-label (the reference is single-label, one-hot values ``utils.py:62``): the values are the
multi-hot rows of the *known positives* -- an unknown (0) entry enters as 0, like a known negative,
so the cache only ever adds evidence for the classes an image is known to show (as a one-hot row gives
0 to every other class). Images with no known positive have an all-zero value row, contribute
exactly nothing, and are left out of the cache (``fit.cache_entries`` counts what is kept). Known
negatives still count in the search's mAP and in Tip-Adapter-F's loss.

Tip-Adapter-F (``main.py:66-141``): the keys become trainable (``main.py:68-70``: a bias-free linear
layer initialised with them; never renormalised), trained with alpha, beta at ``init_alpha``,
``init_beta`` (``main.py:75``), AdamW lr 1e-3 eps 1e-4 (``main.py:72``; torch's default weight decay
0.01), batch 256 shuffled (``main.py:181``), cosine annealing over every iteration of 20 epochs
(``main.py:73,106``), on the normalised training features (``main.py:87-89``: one view per image and
epoch, as the reference draws one augmentation). The epoch kept is the best on the validation set at
the initial alpha, beta (the reference keeps the best on the *test* split, ``main.py:111-126``); then
alpha, beta are searched as above with the fine-tuned keys (``main.py:132``). Loss: the reference's
cross-entropy (``main.py:96``) is single-label; bench uses the ranking loss of its CoOp (TaI-DPT
``trainers/utils.py:85-93``, margin 1 on these logits; unknown labels enter no pair), the multi-label
loss that like cross-entropy compares classes within an image (``methods/coop.py`` says why not ASL).
This short full-batch loop on cached features runs inside ``fit_features``, not through the runner's
mmengine loop: the search must follow the training, and the reference's per-iteration cosine is not
the runner's per-epoch schedule; it takes seconds and has no checkpoint to resume.

Measured on the toy world (seed 1, partial 10 / 50 / 90%, val split of 1,000 images with the same label
ratio; test mAP 54.01 / 54.53 / 54.93 for Tip-Adapter, 52.73 / 54.73 / 54.93 for -F, zero-shot 49.67):
the partial-label cache is the whole training set (892 / 3,059 / 3,893 images with a known positive),
not a few shots, and fine-tuning it overfits -- the training loss keeps falling while the val mAP
peaks after epoch 7 / 1 / never (``fit.best_epoch`` 6 / 0 / -1; -1 keeps the untouched cache). At 10%
labels the chosen alpha is the grid's largest (2.855, ``at_grid_edge``): sparse values need a larger
weight than the reference's grid, tuned for one-hot few-shot caches, offers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.method import LabelledFeatures, Method
from bench.methods._parts.losses import ranking_loss
from bench.methods._parts.val_map import mean_average_precision
from bench.methods.zsclip import class_text_features
from bench.registry import METHODS

AFFINITY_ELEMENTS = 1 << 26  # image-to-key cosines computed at once (256 MB in fp32): memory, never numbers
SEARCH_ELEMENTS = 1 << 26  # cache logits of the search's betas held at once (256 MB in fp32): memory, never numbers


def search_grid(scale: float, steps: int) -> list[float]:
    """The reference's candidate values: i * (scale - 0.1) / steps + 0.1 for i < steps (``utils.py:103-104``)."""
    return [i * (scale - 0.1) / steps + 0.1 for i in range(int(steps))]


@METHODS.register_module(name="tip_adapter")
class TipAdapter(Method):
    """Training-free Tip-Adapter: a key-value cache of the labelled training features (module docstring)."""

    name = "tip_adapter"
    trains_on = "images"
    settings = ("partial", "fewshot")
    # the cache values V [N_cache, C] are the training labels (utils.py:62): an unseen class has no column
    unseen_note = "its cache values are the training labels, one column per class: unseen classes have none"
    fits_features = True
    image_features = {"global": "global"}  # encode_image (utils.py:52, 82)
    default_train = dict(epochs=0)  # no runner training: the cache is built (and -F tuned) in fit_features

    def __init__(self, templates="a photo of a {}.", clip_scale: float = 100.0, init_alpha: float = 1.17,
                 init_beta: float = 1.0, search: bool = True, search_scale=(7.0, 3.0), search_step=(200, 20)):
        super().__init__()
        self.templates = templates  # datasets/caltech101.py:7 (ImageNet: a 7-template ensemble)
        self.clip_scale = float(clip_scale)  # main.py:32 100.
        self.init_alpha = float(init_alpha)  # configs/imagenet.yaml:21
        self.init_beta = float(init_beta)  # configs/imagenet.yaml:20
        self.search = bool(search)  # configs/imagenet.yaml:14 search_hp
        self.search_scale = [float(v) for v in search_scale]  # configs/imagenet.yaml:17 (beta, alpha)
        self.search_step = [int(v) for v in search_step]  # configs/imagenet.yaml:18 (beta, alpha)
        self.alpha, self.beta = self.init_alpha, self.init_beta

    def build(self, backbone, classnames):
        super().build(backbone, classnames)
        self.register_buffer("text_features", class_text_features(backbone, classnames, self.templates))  # [C, D]
        self.register_buffer("cache_values", None)

    # ----- the cache ----------------------------------------------------------------------------
    def fit_features(self, train: LabelledFeatures, val: LabelledFeatures) -> dict:
        """Build the cache from the training features, then search alpha, beta on ``val``."""
        entries = self.build_cache(train)
        return {"cache_entries": entries, **self.search_alpha_beta(val)}

    def build_cache(self, train: LabelledFeatures) -> int:
        """Keys and values from the images with a known positive (module docstring); returns their count."""
        device = self.text_features.device
        views = torch.from_numpy(train.feats["global"]).to(device)  # [V, N, D] raw encode_image features
        keys = F.normalize(views.mean(0), dim=-1)  # utils.py:59-60: mean over augmented passes, then normalise
        values = torch.from_numpy(train.labels == 1).to(device=device, dtype=torch.float32)  # [N, C] known positives
        kept = values.sum(1) > 0  # an all-zero value row adds nothing to any logit
        self.set_keys(keys[kept])
        self.cache_values = values[kept]
        return int(kept.sum())

    def set_keys(self, keys: torch.Tensor) -> None:
        """Store the cache keys [N_cache, D]: a buffer here; Tip-Adapter-F makes them a parameter."""
        self.register_buffer("cache_keys", keys)

    # ----- forward ------------------------------------------------------------------------------
    def branch_logits(self, image: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(clip_logits, cache_logits) [B, C] for normalised image features [B, D] (main.py:39-40, 32)."""
        if getattr(self, "cache_keys", None) is None:
            raise RuntimeError(f"{self.name}: fit_features() was not called (no cache)")
        with torch.autocast(image.device.type, enabled=False):  # fp32: the cache sums thousands of terms
            image = image.float()
            clip_logits = self.clip_scale * image @ self.text_features.T
            affinity = image @ self.cache_keys.T  # [B, N_cache]
        return clip_logits, self.cache_logits(affinity, beta)

    def cache_logits(self, affinity: torch.Tensor, beta: float) -> torch.Tensor:
        """[B, C] from the cosines [B, N_cache] to the keys (main.py:40): the search reuses one affinity per beta."""
        with torch.autocast(affinity.device.type, enabled=False):
            return torch.exp(-beta * (1.0 - affinity)) @ self.cache_values  # (-1) * (beta - beta * affinity)

    def logits(self, feats):
        image = F.normalize(feats["global"].float(), dim=-1)
        clip_logits, cache_logits = self.branch_logits(image, self.beta)
        return {"score": clip_logits + self.alpha * cache_logits, "clip": clip_logits, "cache": cache_logits}

    def cache_logits_by_beta(self, image: torch.Tensor, betas: list[float]) -> list[torch.Tensor]:
        """:meth:`cache_logits` [N, C] of normalised image features [N, D] for each of ``betas``; the cosines to
        the keys are computed ``AFFINITY_ELEMENTS`` at a time (a COCO-sized cache against a COCO-sized
        validation set is about 1e9 cosines: 4 GB at once), each chunk once for every beta."""
        step = max(1, AFFINITY_ELEMENTS // max(1, len(self.cache_keys)))
        parts: list[list[torch.Tensor]] = [[] for _ in betas]
        for start in range(0, len(image), step):
            with torch.autocast(image.device.type, enabled=False):
                affinity = image[start:start + step].float() @ self.cache_keys.T  # [rows, N_cache]
            for k, beta in enumerate(betas):
                parts[k].append(self.cache_logits(affinity, beta))
        return [torch.cat(p) if len(p) > 1 else p[0] for p in parts]

    def cache_logits_each_beta(self, image: torch.Tensor, betas: list[float]):
        """(beta, :meth:`cache_logits` [N, C]) for each of ``betas`` in order, computed for as many betas at once
        as ``SEARCH_ELEMENTS`` holds (the reference grid's 200 betas x a 16k-image COCO validation set x 80
        classes would be 1 GB at once); the cosines are computed once per group."""
        group = max(1, SEARCH_ELEMENTS // max(1, len(image) * self.cache_values.shape[1]))
        for start in range(0, len(betas), group):
            yield from zip(betas[start:start + group], self.cache_logits_by_beta(image, betas[start:start + group]),
                           strict=True)

    # ----- the search -----------------------------------------------------------------------------
    @torch.no_grad()
    def search_alpha_beta(self, val: LabelledFeatures) -> dict:
        """Set alpha, beta to the reference grid's best validation mAP (utils.py:99-129; module docstring)."""
        image = F.normalize(torch.from_numpy(val.feats["global"][0]).to(self.text_features.device), dim=-1)
        labels = torch.from_numpy(val.labels).to(image.device)
        with torch.autocast(image.device.type, enabled=False):
            clip_logits = self.clip_scale * image.float() @ self.text_features.T
        (cache_logits,) = self.cache_logits_by_beta(image, [self.init_beta])
        out = {"val_mAP_clip": float(mean_average_precision(clip_logits, labels)),  # main.py:32-34
               "val_mAP_init": float(mean_average_precision(clip_logits + self.init_alpha * cache_logits, labels))}
        self.alpha, self.beta = self.init_alpha, self.init_beta
        best = out["val_mAP_init"]
        if self.search:
            betas, alphas = (search_grid(s, n) for s, n in zip(self.search_scale, self.search_step))
            alpha_col = torch.tensor(alphas, dtype=clip_logits.dtype, device=image.device)[:, None, None]
            best = -math.inf
            for beta, cache_logits in self.cache_logits_each_beta(image, betas):
                maps = mean_average_precision(clip_logits + alpha_col * cache_logits, labels)  # [len(alphas)]
                i = int(torch.argmax(maps))  # the first maximum: the reference's strict '>' (utils.py:121)
                if maps[i] > best:
                    best, self.alpha, self.beta = float(maps[i]), alphas[i], beta
            out["at_grid_edge"] = self.alpha in (alphas[0], alphas[-1]) or self.beta in (betas[0], betas[-1])
        return {**out, "alpha": self.alpha, "beta": self.beta, "val_mAP": best}


@METHODS.register_module(name="tip_adapter_f")
class TipAdapterF(TipAdapter):
    """Tip-Adapter-F: the cache keys fine-tuned with the ranking loss, then alpha/beta searched (module docstring)."""

    name = "tip_adapter_f"

    def __init__(self, epochs: int = 20, batch_size: int = 256, lr: float = 1e-3, eps: float = 1e-4,
                 weight_decay: float = 0.01, ranking_margin: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.epochs = int(epochs)  # configs/imagenet.yaml:31 train_epoch
        self.batch_size = int(batch_size)  # main.py:181 batch_size=256
        self.lr = float(lr)  # configs/imagenet.yaml:29
        self.eps = float(eps)  # main.py:72 AdamW(eps=1e-4)
        self.weight_decay = float(weight_decay)  # main.py:72 leaves torch's AdamW default, 0.01
        self.ranking_margin = float(ranking_margin)  # TaI-DPT Caption_distill_double.py:474 margin 1 (as bench's CoOp)

    def set_keys(self, keys: torch.Tensor) -> None:
        self.cache_keys = nn.Parameter(keys.clone())  # main.py:69-70: the adapter's weight, trainable

    def fit_features(self, train: LabelledFeatures, val: LabelledFeatures) -> dict:
        """Build the cache, fine-tune its keys (best epoch on val), then search alpha, beta on val."""
        entries = self.build_cache(train)
        history = self.fine_tune(train, val)
        return {"cache_entries": entries, **history, **self.search_alpha_beta(val)}

    def fine_tune(self, train: LabelledFeatures, val: LabelledFeatures) -> dict:
        """The reference's loop (main.py:72-126) with the ranking loss; keeps the best epoch on ``val``."""
        device = self.cache_keys.device
        views = F.normalize(torch.from_numpy(train.feats["global"]).to(device), dim=-1)  # [V, N, D] (main.py:89)
        targets = torch.from_numpy(train.labels).to(device=device, dtype=torch.float32)
        val_image = F.normalize(torch.from_numpy(val.feats["global"][0]).to(device), dim=-1)
        val_labels = torch.from_numpy(val.labels).to(device)
        n_views, n = views.shape[:2]
        steps = math.ceil(n / self.batch_size)
        optimizer = torch.optim.AdamW([self.cache_keys], lr=self.lr, eps=self.eps, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.epochs * steps)  # main.py:73
        self.alpha, self.beta = self.init_alpha, self.init_beta  # main.py:75
        best_map, best_epoch, best_keys = self.val_map(val_image, val_labels), -1, self.cache_keys.detach().clone()
        losses, val_maps = [], []
        for epoch in range(self.epochs):
            # seeded by the runner (bench/cell/fitdata.py)
            order, view = torch.randperm(n), torch.randint(n_views, (n,))
            epoch_loss = 0.0
            for start in range(0, n, self.batch_size):
                batch = order[start:start + self.batch_size].to(device)
                logits = self.logits({"global": views[view[batch.cpu()].to(device), batch]})["score"]
                loss = ranking_loss(logits, targets[batch], self.ranking_margin)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()  # per iteration (main.py:106)
                epoch_loss += float(loss.detach()) * len(batch) / n
            losses.append(epoch_loss)
            val_maps.append(self.val_map(val_image, val_labels))
            if val_maps[-1] > best_map:  # main.py:121 keeps the best epoch (on test there; on val here)
                best_map, best_epoch, best_keys = val_maps[-1], epoch, self.cache_keys.detach().clone()
        self.cache_keys.data.copy_(best_keys)  # main.py:126; epoch -1 = the untrained cache was best
        return {"epoch_losses": losses, "epoch_val_mAP": val_maps, "best_epoch": best_epoch}

    @torch.no_grad()
    def val_map(self, image: torch.Tensor, labels: torch.Tensor) -> float:
        step = max(1, AFFINITY_ELEMENTS // len(self.cache_keys))  # bounded [rows, N_cache] cosines
        scores = [self.logits({"global": image[s:s + step]})["score"] for s in range(0, len(image), step)]
        return float(mean_average_precision(torch.cat(scores) if len(scores) > 1 else scores[0], labels))

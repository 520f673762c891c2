"""CLIP-Adapter as a multi-label baseline (Gao et al., IJCV 2023; methods.md sec. 5b).

Reference: gaopengcuhk/CLIP-Adapter @08d07f8 ``clip_adapter.py`` (cited as ``clip_adapter.py:<line>``; the
repository's only code file, a CoOp/Dassl trainer).

What it learns: a bottleneck MLP on the global image feature x (``methods/_parts/adapters.py``),
    A(x) = MLP(x),  MLP = Linear(D, D/4, no bias) -> ReLU -> Linear(D/4, D, no bias) -> ReLU
(``clip_adapter.py:55-67``, ``Adapter(1024, 4)`` at line 97), mixed with the frozen feature by the residual
ratio alpha:  x' = alpha * A(x) + (1 - alpha) * x,  alpha = 0.2 (``clip_adapter.py:102-105``). CLIP is
frozen (``clip_adapter.py:133-136``); only the adapter is optimised (line 144).

Forward: t_c = normalised ``encode_text`` of a hand-crafted prompt, frozen ("a photo of a {}." -- the
reference's template for ImageNet and most datasets, ``clip_adapter.py:18-34, 79-86``);
    logit[b, c] = s * cos(x'_b, t_c)   (``clip_adapter.py:107-113``).

Loss -- the reference is single-label: softmax cross-entropy over classes (``clip_adapter.py:158``) at CLIP's
scale s = 100. Bench trains every single-label reference like its CoOp baseline: TaI-DPT's ranking loss
(``methods/_parts/losses.py``; per image, sum over known positive i / known negative j of max(0, m - s_i +
s_j)) on s = 4 (``logit_scale=None`` restores CLIP's scale), so unknown labels enter no pair; ``methods/coop.py``
explains why not ASL/BCE on a bias-free cosine score. Recorded in every record (``method_hparams``).

Setting ``zsl`` (seen/unseen classes, ``bench.cell.zsl``): the adapter acts on image features only and the text
classifier is frozen, so nothing learned is per class: :meth:`CLIPAdapter.rebuild` computes the hand-crafted
prompts' text features of the unseen (then all) classes and keeps the trained adapter.

Schedule (``configs/_base_/methods/clip_adapter.py``): the repository ships no optimiser config; its README
("Get Started") runs the file with CoOp's commands, so CoOp's ``rn50_ep50.yaml`` applies (SGD lr 0.002, batch 32,
50 epochs, cosine, 1 constant warm-up epoch at 1e-5). Image features come from the feature cache (the reference
re-encodes augmented views every step: ``features.mode=online`` or ``features.views``), last epoch evaluated.
"""

from __future__ import annotations

import torch.nn.functional as F

from bench.method import Method
from bench.methods._parts.adapters import ResidualAdapter
from bench.methods._parts.losses import ranking_loss
from bench.methods.zsclip import class_text_features
from bench.registry import METHODS


@METHODS.register_module(name="clip_adapter")
class CLIPAdapter(Method):
    """Residual bottleneck adapter on the global image feature, frozen hand-crafted text classifier."""

    name = "clip_adapter"
    trains_on = "images"
    settings = ("partial", "fewshot", "zsl")
    supports_unseen = True
    unseen_note = "the adapter is on image features; the frozen text classifier is rebuilt for any class names"
    image_features = {"global": "global"}  # clip_model.visual(image): attention pool with positional embedding
    # CoOp configs/trainers/CoOp/rn50_ep50.yaml (the reference runs through CoOp's commands); Dassl momentum / wd
    default_train = dict(epochs=50, batch_size=32,
                         optimizer=dict(type="SGD", lr=2e-3, momentum=0.9, weight_decay=5e-4),
                         scheduler="cosine", warmup_epochs=1, warmup_lr=1e-5)

    def __init__(self, alpha: float = 0.2, reduction: int = 4, templates="a photo of a {}.",
                 logit_scale: float | None = 4.0, ranking_margin: float = 1.0):
        super().__init__()
        self.alpha = float(alpha)  # clip_adapter.py:104 ratio = 0.2
        self.reduction = int(reduction)  # clip_adapter.py:56, 97 Adapter(1024, 4)
        self.templates = templates  # clip_adapter.py:18-34 CUSTOM_TEMPLATES ("a photo of a {}." for ImageNet)
        self.logit_scale = None if logit_scale is None else float(logit_scale)  # bench: 4 (CoOp's); None: CLIP's
        self.ranking_margin = float(ranking_margin)  # TaI-DPT Caption_distill_double.py:474 margin_ = 1

    # ----- parameters ---------------------------------------------------------------------------
    def build(self, backbone, classnames):
        super().build(backbone, classnames)
        self.adapter = ResidualAdapter(backbone.embed_dim, self.alpha, self.reduction)
        # frozen classifier: normalised text features of the hand-crafted prompts (clip_adapter.py:107, 110)
        self.register_buffer("text_features", class_text_features(backbone, classnames, self.templates))
        self.scale = backbone.logit_scale if self.logit_scale is None else self.logit_scale

    def rebuild(self, classnames):
        """The frozen text classifier of other classes (the zsl setting), as ``build`` makes it; the adapter is kept."""
        self.classnames = list(classnames)
        self.text_features = class_text_features(self.backbone, self.classnames, self.templates).to(
            self.text_features.device)

    # ----- forward ------------------------------------------------------------------------------
    def logits(self, feats):
        image = F.normalize(self.adapter(feats["global"].float()), dim=-1)  # clip_adapter.py:101-109
        return self.scale * image @ self.text_features.float().T  # [B, C] (clip_adapter.py:112-113)

    def loss(self, logits, targets):
        """TaI-DPT's ranking loss on the scaled cosines; unknown labels (0) enter no pair."""
        return ranking_loss(logits.float(), targets, self.ranking_margin)

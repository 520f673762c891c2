"""DualCoOp: positive and negative prompts over image regions (Sun, Hu, Saenko, NeurIPS 2022; methods.md sec. 3).

Reference: sunxm2357/DualCoOp @49e71d7 (cited as ``<file>:<line>``): ``models/dualcoop.py``,
``clip/model.py`` (``AttentionConv``), ``utils/asymmetric_loss.py``, ``utils/trainers.py``, ``opts.py``,
``utils/build_cfg.py``, ``configs/models/rn101_ep50.yaml``, README.

What it learns: a positive and a negative context per class (``--csc``, used for partial labels),
2 x [C, 16, d_txt], both N(0, 0.02), drawn positive first (``dualcoop.py:91-100``; n_ctx 16:
``build_cfg.py:22-23``), or initialised from the word embeddings of given phrases
(``dualcoop.py:65-87``). Prompts are ``[SOT] ctx {name} . [EOT]`` (``dualcoop.py:114-115, 177-193``); the
text tower runs once on all 2C prompts ordered [negatives, positives] (``dualcoop.py:139, 195``), and the
features are L2-normalised (``dualcoop.py:228``). CLIP is frozen, attention pool included
(``FINETUNE_BACKBONE`` / ``FINETUNE_ATTN`` off, ``build_cfg.py:33-34``; ``dualcoop.py:284-294``).

Image side: the ``dense`` feature kind (``bench/features/backbone.py``), which is DualCoOp's ``AttentionConv``
(``clip/model.py:117-128, 150-151``): layer4 locations with the mean token prepended, plus the
attention pool's positional embedding (bicubically resized when the grid is not 7x7), then v_proj and
c_proj at every position -> F [B, 1+HW, D], normalised per position (``dualcoop.py:229``). So the global
mean token is one of the regions.

Class-specific region feature aggregation, exactly (``dualcoop.py:231-242``; methods.md pitfall 8):
    S[b, k, p] = 20 * cos(F[b, p], T[k])           k over the 2C prompts (conv1d with 1x1 kernels)
    W[b, c, p] = softmax over p of S[b, C + c, p]  from the POSITIVE prompts only ...
    l[b, k]    = 5 * sum_p W[b, k mod C, p] * S[b, k, p]   ... reused for the negative prompts
so l_{pos|neg, c} = 100 * sum_p softmax_p(20 cos(f_p, t_pos,c)) * cos(f_p, t_{pos|neg},c). The reference
reshapes l to [B, 2, C] (index 0 negative, 1 positive) and predicts softmax over that pair, index 1
(``trainers.py:149``, ``validations.py:36``), which equals sigmoid(l_pos - l_neg). ``logits`` returns that
difference as ``score`` (one logit per class; mAP is rank-based, so it equals the reference's on the
probabilities without float32 ties at saturation), plus ``positive`` (l_pos alone: how far the positive
prompts rank on their own) and ``negative`` (-l_neg: the negative prompts alone, sign flipped so higher
means "present").

Loss (``utils/asymmetric_loss.py:5-60`` via ``trainers.py:103, 134``; methods.md pitfall 9): ASL on the
softmax (= sigmoid of the difference, ``methods/_parts/losses.py``) over the **known** labels only
(unknown entries dropped, ``asymmetric_loss.py:32-34``), gamma_neg 2 (``opts.py:57`` overrides the class
default 4), gamma_pos 1, clip 0.05 on the negative probability, eps 1e-6 (class default; the shared
function's is 1e-8), focusing weights without gradient, a **sum** (not a mean), times ``loss_w``
(``trainers.py:134``; README: 0.03 for COCO at 50% labels, "larger loss_w for smaller pp").

Schedule (``configs/_base_/methods/dualcoop.py``): ``rn101_ep50.yaml`` (SGD lr 0.002, batch 32, 50
epochs, cosine, one constant warm-up epoch at 1e-5) with Dassl's momentum 0.9 / weight decay 5e-4;
README: lr 0.001 for VOC2007.

Zero-shot protocol (setting ``zsl``; ``train_zsl.py``, README "Zero-Shot MLR"; the config's ``per_setting.zsl``):
generic contexts (README: "csc does not work for zero-shot MLR"), ``--n_ctx_pos 64 --n_ctx_neg 64``,
``--loss_w 0.01``, lr 0.002 (COCO) / 0.001 (NUS-WIDE), RN50 at 224 px (``configs/models/rn50_ep50.yaml``). The
reference builds the prompt learner for all class names and selects the training classes' prompts with
``cls_id`` (``dualcoop.py:143-205``, ``trainers.py:116-132``); bench builds it for the seen classes only and
:meth:`DualCoOp.rebuild` re-prompts the unseen / all classes after training -- the same text features, since
a generic prompt depends only on the context and its own class name. With many seen classes the reference
draws ``--num_train_cls`` (default 100, ``opts.py:18``) of them per batch for the loss
(``trainers.py:117-121``, NUS-WIDE's 925): ``num_train_cls`` here (None: every seen class).

Deliberate differences (in the shared-protocol row; the ``dualcoop_ref`` variant reproduces the reference's
backbone and transforms): the backbone is the dataset's (the reference uses RN101 at 448 px for partial
labels); training images come from the feature cache
(``features.mode``; the reference re-encodes Resize(448) + Cutout + RandAugment views every step,
``dataloaders/coco_detection.py:57-64``); the model is the last epoch (the reference keeps the best epoch
on the test split); partial-label masks are bench's seeded ones, and one ``loss_w`` serves every ratio of
a sweep unless overridden per run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.method import Method
from bench.methods._parts.losses import asymmetric_loss
from bench.methods._parts.prompt import PromptLearner, encode_prompts
from bench.registry import METHODS


@METHODS.register_module(name="dualcoop")
class DualCoOp(Method):
    """DualCoOp (see module docstring). Scores: "score" (l_pos - l_neg), "positive", "negative" (-l_neg)."""

    name = "dualcoop"
    trains_on = "images"
    score_threshold = 0.0  # the score is a logit: probability > 0.5 (DualCoOp validate) <=> logit > 0
    settings = ("partial", "fewshot", "zsl")
    supports_unseen = True
    unseen_note = "generic contexts only (csc=False, its zero-shot protocol): class-specific ones have no unseen rows"
    image_features = {"dense": "dense"}  # [mean token, locations] + positional embedding, v/c-projected
    # configs/models/rn101_ep50.yaml OPTIM + DATALOADER; momentum / weight decay: Dassl defaults (0.9, 5e-4)
    default_train = dict(epochs=50, batch_size=32,
                         optimizer=dict(type="SGD", lr=2e-3, momentum=0.9, weight_decay=5e-4),
                         scheduler="cosine", warmup_epochs=1, warmup_lr=1e-5)

    def __init__(self, n_ctx_pos: int = 16, n_ctx_neg: int = 16, csc: bool = True, ctx_init_pos: str | None = None,
                 ctx_init_neg: str | None = None, init_std: float = 0.02, spatial_scale: float = 20.0,
                 aggregate_scale: float = 5.0, loss_w: float = 1.0, gamma_neg: float = 2.0, gamma_pos: float = 1.0,
                 clip: float = 0.05, eps: float = 1e-6, num_train_cls: int | None = None):
        super().__init__()
        self.n_ctx_pos = int(n_ctx_pos)  # build_cfg.py:22 N_CTX_POS 16 (--n_ctx_pos)
        self.n_ctx_neg = int(n_ctx_neg)  # build_cfg.py:23 N_CTX_NEG 16 (--n_ctx_neg)
        self.csc = bool(csc)  # --csc for partial labels (README); build_cfg.py:24 default False
        self.ctx_init_pos = ctx_init_pos  # --positive_prompt (dualcoop.py:60, 65-79)
        self.ctx_init_neg = ctx_init_neg  # --negative_prompt (dualcoop.py:61, 65-79)
        self.init_std = float(init_std)  # dualcoop.py:99-100
        self.spatial_scale = float(spatial_scale)  # dualcoop.py:232: 20 * conv1d(...), inside the softmax
        self.aggregate_scale = float(aggregate_scale)  # dualcoop.py:237: 5 * (output * w).sum(-1)
        self.loss_w = float(loss_w)  # opts.py:49 --loss_w (default 1; README example 0.03)
        self.gamma_neg = float(gamma_neg)  # opts.py:57 / build_cfg.py:27
        self.gamma_pos = float(gamma_pos)  # opts.py:60 / build_cfg.py:28
        self.clip = float(clip)  # asymmetric_loss.py:6
        self.eps = float(eps)  # asymmetric_loss.py:6
        self.num_train_cls = num_train_cls  # opts.py:18 --num_train_cls (zsl training; trainers.py:117-121)
        self._batch_classes = None  # the classes drawn for this training step (num_train_cls)

    # ----- parameters ---------------------------------------------------------------------------
    def build(self, backbone, classnames):
        super().build(backbone, classnames)
        common = dict(csc=self.csc, class_token_position="end", init_std=self.init_std)  # end only (dualcoop.py:177)
        # drawn in the reference's order: positive first (dualcoop.py:99-100)
        self.positive_prompts = PromptLearner(backbone, classnames, n_ctx=self.n_ctx_pos, ctx_init=self.ctx_init_pos,
                                              **common)
        self.negative_prompts = PromptLearner(backbone, classnames, n_ctx=self.n_ctx_neg, ctx_init=self.ctx_init_neg,
                                              **common)
        self.n_ctx_pos, self.n_ctx_neg = self.positive_prompts.n_ctx, self.negative_prompts.n_ctx  # set by ctx_init

    def unseen_blocker(self):
        return "class-specific contexts (csc=True) have no rows for unseen classes" if self.csc else None

    def rebuild(self, classnames):
        """Prompt other classes with the learned generic contexts (the zsl setting, ``dualcoop.py:143-205``)."""
        self.classnames = list(classnames)
        self.positive_prompts.set_classnames(self.classnames)
        self.negative_prompts.set_classnames(self.classnames)

    @property
    def ctx_pos(self) -> torch.nn.Parameter:
        return self.positive_prompts.ctx

    @property
    def ctx_neg(self) -> torch.nn.Parameter:
        return self.negative_prompts.ctx

    def text_features(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """[2C, D] normalised text features, negatives then positives, in one text-tower pass (dualcoop.py:195, 228);
        ``rows``: only those classes (dualcoop.py:143-200)."""
        return encode_prompts(self.backbone, self.negative_prompts, self.positive_prompts, rows=rows)

    # ----- forward ------------------------------------------------------------------------------
    def logits(self, feats):
        self._batch_classes = None
        n_all = self.positive_prompts.n_cls
        if self.training and self.num_train_cls and n_all > self.num_train_cls:  # trainers.py:117-119
            self._batch_classes = torch.randperm(n_all)[: self.num_train_cls].to(self.positive_prompts.ids.device)
        text = self.text_features(self._batch_classes)  # [2C, D] (C: this step's classes)
        n_cls = text.shape[0] // 2
        regions = F.normalize(feats["dense"].float(), dim=-1)  # [B, P, D], P = 1 + HW (mean token first)
        sims = self.spatial_scale * torch.einsum("bpd,kd->bkp", regions, text)  # [B, 2C, P] (dualcoop.py:232)
        weights = sims[:, n_cls:].softmax(dim=-1)  # [B, C, P] over positions, positive prompts (dualcoop.py:234-235)
        weights = torch.cat([weights, weights], dim=1)  # [B, 2C, P]: reused for the negatives (dualcoop.py:236)
        aggregated = self.aggregate_scale * (sims * weights).sum(dim=-1)  # [B, 2C] (dualcoop.py:237)
        negative, positive = aggregated[:, :n_cls], aggregated[:, n_cls:]  # [B, 2, C] split (dualcoop.py:242)
        return {"positive": positive, "negative": -negative, "score": positive - negative}

    def loss(self, logits, targets):
        """``loss_w`` x ASL summed over the known entries (asymmetric_loss.py:16-60, trainers.py:134)."""
        if self._batch_classes is not None:  # the classes drawn for this step only (trainers.py:132)
            targets = targets[:, self._batch_classes]
        return self.loss_w * asymmetric_loss(logits["score"].float(), targets, gamma_neg=self.gamma_neg,
                                             gamma_pos=self.gamma_pos, clip=self.clip, eps=self.eps)

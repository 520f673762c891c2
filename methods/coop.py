"""CoOp as a multi-label baseline (Zhou et al., IJCV 2022; methods.md sec. 2).

Reference: KaiyangZhou/CoOp @ff61507 ``trainers/coop.py`` (cited as ``coop.py:<line>``; the same file is
copied into TaI-DPT as ``trainers/coop.py``), configs ``configs/trainers/CoOp/*.yaml``.

What it learns: the context vectors of one prompt per class, ``[SOT] ctx_1 .. ctx_n {name} . [EOT]``
(``methods/_parts/prompt.py``): generic [n_ctx, d_txt] or class-specific [C, n_ctx, d_txt] (``csc``),
drawn from N(0, 0.02) or initialised from the word embeddings of ``ctx_init`` (``coop.py:72-91``), class
token at the end, middle or front (``coop.py:126-177``). CLIP is frozen (``coop.py:236-239``).

Forward: t_c = normalised text feature of class c's prompt, x = normalised global image feature
(open_clip ``encode_image``: the attention pool *with* positional embedding, ``coop.py:196, 202-203``),
    logit[b, c] = s * cos(x_b, t_c)
(``coop.py:205-206``, where CoOp's s is CLIP's exp(logit_scale) = 100; bench's default is TaI-DPT's s = 4,
see below; ``logit_scale=None`` restores CLIP's).

Loss -- the multi-label part CoOp itself does not have (its loss is single-label cross-entropy,
``coop.py:273``). Neither reference repository ships the CoOp multi-label baseline its paper reports:
DualCoOp's only single-prompt path is ``--single_prompt pos`` -> ``AsymmetricLoss2`` (ASL on the sigmoid of
the one logit; ``utils/trainers.py:135-136``, ``utils/asymmetric_loss.py:64-110``), but its released model
never produces a single logit; TaI-DPT's ``trainers/coop.py`` is the unmodified single-label file (not even
imported by ``train_caption.py``), and TaI-DPT issue #12, asking how the paper's few-shot CoOp was
trained, is unanswered. So bench chooses, and says so in every record (``objective``, ``logit_scale``):

* ``objective="ranking"`` (default), ``logit_scale=4``: TaI-DPT's recipe for exactly this prompt shape.
  TaI-DPT's global branch *is* a CoOp prompt (generic 16-token context, class token at the end, global
  image feature), trained with the ranking loss -- per image, the sum over (known positive i, known
  negative j) of max(0, 1 - s_i + s_j), averaged over the batch (``trainers/utils.py:85-93``) -- on
  logits 4 * cos (fixed scale, ``Caption_distill_double.py:320, 474``); methods.md sec. 2 records the
  ranking loss for the TaI-DPT paper's few-shot CoOp comparisons (not checked against the
  paper). Unknown labels enter no pair.
* ``objective="asl"``: DualCoOp's ASL on sigmoid(logit) over the known labels (gamma_neg 2, gamma_pos 1,
  clip 0.05, eps 1e-6, a sum, times ``loss_w``; ``opts.py:57-60``, ``asymmetric_loss.py:65``) -- the
  ``--single_prompt pos`` ablation. Not the default because on a single prompt it is ill-posed: a
  sigmoid of s * cos has no bias and CLIP's image-text cosines are all positive, so every class starts
  "present". At CLIP's scale 100 the logits sit at +15..+30, where the sigmoid's gradient vanishes;
  at scale 4 a negative stops costing only below cos -0.74 (sigmoid < 0.05, the clip), which CLIP
  features do not reach, so the negative term never vanishes, dominates, and drags all cosines down.
  Measured on the toy world with a briefly pretrained toy CLIP (zero-shot 37.4 mAP; random-init CoOp
  28.7), the toy schedule, label ratio 0.5: ranking 39.9, ASL at scale 4 23.2, ASL at the CLIP scale (14 for
  this model) 21.0 -- ASL ends below its starting point, as TaI-DPT issue #12 reports for a BCE-trained
  few-shot CoOp. DualCoOp's negative prompt exists to supply exactly that missing per-class offset.

The ranking loss compares classes *within* an image, so at small label ratios fewer images have a known
positive and a known negative (toy as above: 41.2 / 39.9 / 39.5 mAP at ratios 0.1 / 0.5 / 0.9, all above
zero-shot; the same loss at the CLIP scale: 38.0 at 0.5).

Schedule (``configs/_base_/methods/coop.py``): CoOp's ``rn50_ep50.yaml`` (SGD lr 0.002, batch 32,
50 epochs, cosine, 1 constant warm-up epoch at 1e-5; momentum 0.9 and weight decay 5e-4 are Dassl's
defaults), which is also DualCoOp's ``rn101_ep50.yaml``.

Setting ``zsl`` (seen/unseen classes, ``bench.cell.zsl``): a generic context is trained on the seen classes and
:meth:`CoOp.rebuild` prompts the unseen ones with it; class-specific contexts (``csc=True``) are skipped.

Deliberate differences from the references, beyond the loss and scale: images come from the feature
cache (``features.mode``; the references re-encode random-resized-crop + flip views every step), and
the model is the last epoch (DualCoOp and TaI-DPT keep the best epoch on the test split).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from bench.errors import UsageError
from bench.method import Method
from bench.methods._parts.losses import asymmetric_loss, ranking_loss
from bench.methods._parts.prompt import PromptLearner, encode_prompts
from bench.registry import METHODS

OBJECTIVES = ("asl", "ranking")
log = logging.getLogger("bench")


@METHODS.register_module(name="coop")
class CoOp(Method):
    """CoOp prompts on the global image feature, trained for multi-label recognition (see module docstring)."""

    name = "coop"
    trains_on = "images"
    settings = ("partial", "fewshot", "zsl")
    supports_unseen = True
    unseen_note = "generic context only (csc=False); class-specific contexts have none for unseen classes"
    image_features = {"global": "global"}  # encode_image, positional embedding included (coop.py:196)
    # CoOp configs/trainers/CoOp/rn50_ep50.yaml OPTIM; momentum / weight decay: Dassl config/defaults.py:152-153
    default_train = dict(epochs=50, batch_size=32,
                         optimizer=dict(type="SGD", lr=2e-3, momentum=0.9, weight_decay=5e-4),
                         scheduler="cosine", warmup_epochs=1, warmup_lr=1e-5)

    def __init__(self, n_ctx: int = 16, ctx_init: str | None = None, csc: bool = False,
                 class_token_position: str = "end", init_std: float = 0.02, logit_scale: float | None = 4.0,
                 objective: str = "ranking", loss_w: float = 1.0, gamma_neg: float = 2.0, gamma_pos: float = 1.0,
                 clip: float = 0.05, eps: float = 1e-6, ranking_margin: float = 1.0):
        super().__init__()
        if objective not in OBJECTIVES:
            raise UsageError(f"coop.objective must be one of {OBJECTIVES}, got {objective!r}")
        self.n_ctx = int(n_ctx)  # CoOp scripts/coop/main.sh NCTX (16 in the paper's main results)
        self.ctx_init = ctx_init  # None: random (coop.py:84-91); "a photo of a": *_ctxv1.yaml CTX_INIT
        if ctx_init and csc:
            # CoOp coop.py:72-80: a ctx_init gives one generic context, whatever CSC says (CSC only shapes the random
            # init, coop.py:82-88); bench follows it and records csc=False (DualCoOp, dualcoop.py:80-87, would copy it
            # per class instead)
            log.warning("coop: ctx_init=%r with csc=True builds one generic context initialised from it, as CoOp "
                        "does; the record says csc=False", ctx_init)
            csc = False
        self.csc = bool(csc)  # CoOp default generic context (main.sh CSC False)
        self.class_token_position = class_token_position  # coop.py:116, "end" by default
        self.init_std = float(init_std)  # coop.py:90
        self.logit_scale = None if logit_scale is None else float(logit_scale)  # TaI-DPT CDD.py:320; None: CLIP's
        self.objective = objective  # "ranking" (TaI-DPT trainers/utils.py:85-93) or "asl" (DualCoOp)
        self.loss_w = float(loss_w)  # DualCoOp opts.py:49 (default 1)
        self.gamma_neg = float(gamma_neg)  # DualCoOp opts.py:57 (overrides the class default 4)
        self.gamma_pos = float(gamma_pos)  # DualCoOp opts.py:60
        self.clip = float(clip)  # DualCoOp asymmetric_loss.py:65
        self.eps = float(eps)  # DualCoOp asymmetric_loss.py:65 (1e-6; the shared function's default is 1e-8)
        self.ranking_margin = float(ranking_margin)  # TaI-DPT Caption_distill_double.py:474 (margin_ = 1)

    # ----- parameters ---------------------------------------------------------------------------
    def build(self, backbone, classnames):
        super().build(backbone, classnames)
        self.prompts = PromptLearner(backbone, classnames, n_ctx=self.n_ctx, ctx_init=self.ctx_init, csc=self.csc,
                                     class_token_position=self.class_token_position, init_std=self.init_std)
        self.n_ctx = self.prompts.n_ctx  # a ctx_init sets the context length (coop.py:75)
        self.scale = backbone.logit_scale if self.logit_scale is None else self.logit_scale

    def unseen_blocker(self):
        return "class-specific contexts (csc=True) have no rows for unseen classes" if self.csc else None

    def rebuild(self, classnames):
        """Prompt other classes with the learned generic context (the zsl setting); the frozen name tokens
        are built as for training (``coop.py:98-114``)."""
        self.classnames = list(classnames)
        self.prompts.set_classnames(self.classnames)

    def text_features(self) -> torch.Tensor:
        """[C, D] normalised text features of the class prompts (coop.py:198-203)."""
        return encode_prompts(self.backbone, self.prompts)

    # ----- forward ------------------------------------------------------------------------------
    def logits(self, feats):
        text = self.text_features()  # [C, D]
        image = F.normalize(feats["global"].float(), dim=-1)  # [B, D]
        return self.scale * image @ text.T  # [B, C] (coop.py:205-206)

    def loss(self, logits, targets):
        """``loss_w`` x the ranking loss (default) or ASL (sum over known entries); unknown labels (0) are ignored."""
        logits = logits.float()  # fp32 under AMP too (the sigmoid and log of ASL)
        if self.objective == "ranking":
            return self.loss_w * ranking_loss(logits, targets, self.ranking_margin)
        return self.loss_w * asymmetric_loss(logits, targets, gamma_neg=self.gamma_neg, gamma_pos=self.gamma_pos,
                                             clip=self.clip, eps=self.eps)

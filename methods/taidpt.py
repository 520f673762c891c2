"""TaI-DPT: texts as images with double-grained prompt tuning (Guo et al., CVPR 2023; methods.md sec. 4).

Reference: guozix/TaI-DPT @1333eca, trainer ``trainers/Caption_distill_double.py`` (cited below as
``CDD.py:<line>``), data ``datasets/coco2014_distill.py`` / ``voc2007_distill.py`` /
``nuswide_distill.py`` / ``data_helpers.py``, configs ``configs/trainers/Caption_distill_double/*.yaml``.

What it learns: two generic context tensors [n_ctx, d_txt], N(0, 0.02), n_ctx = 16 (``CDD.py:104-121``;
``train_caption.py:86-90``: N_CTX 16, CSC False, class token at the end): ``ctx`` drives the global
prompts ``[SOT] ctx {name} . [EOT]``, ``ctx_double`` the local ones (``CDD.py:175-192``; the code calls
the second set "neg", but it is not a negative prompt). The three scalars the reference also creates
(temperature, spatial_T, ranking_scale, ``CDD.py:123-128``) are never used with its configs
(IF_LEARN_SCALE / IF_LEARN_spatial_SCALE False), so they are not created here. CLIP is frozen.

Forward, the same for captions (training) and images (test), with t^g / t^l the normalised text
features of the two prompt sets:
  g_c    = 4 * cos(global, t^g_c)                                 (``CDD.py:319-321, 349-351``)
  S[p,c] = cos(dense_p, t^l_c), + (-10000) at caption padding       (``CDD.py:322, 346-354``)
  a      = softmax over positions p of (tau * S)                    (``CDD.py:324-325, 356-357``)
  l_c    = sum_p a[p,c] * 4 * S[p,c]                                (``CDD.py:326, 358``)
The logit scale is a fixed 4, not CLIP's 100. tau = 50 over caption tokens in training
(``spatial_SCALE_text``) and 40 over image locations at test (``spatial_SCALE_image``; 4 for NUS-WIDE,
``rn50_nuswide.yaml:31``).

Texts as images (training): the frozen text tower's ln_final output of every token, projected
(``CDD.py:65-67, 330-333``; ``Backbone.encode_text_tokens``): the EOT token's vector is the global
"image" feature, all token vectors (SOT and EOT included) are the dense ones; only padding is masked.
Test images: ``global_nopos`` (attention pool without positional embedding, ``if_pos=False``,
``CDD.py:306``) and ``dense_nopos`` (v_proj then c_proj on the HW locations, no positional embedding,
no mean token, ``CDD.py:296-304``) -- methods.md pitfall 1.

Loss: the ranking loss with margin 1 on each branch, summed (``CDD.py:473-474``, LOSSFUNC
"double_ranking"; ``trainers/utils.py:85-93``), applied to the x4 logits.

Score: "TaI" is the global branch alone ("mAP score default"); TaI-DPT is
``GL_merge_rate * g + (1 - GL_merge_rate) * l`` with GL_merge_rate 0.5 (``train_caption.py:91``; Dassl
``evaluation/evaluator.py`` MLClassification ``default_merge_aux``). ``logits`` returns
{"global": g, "local": l, "score": merged}, so every record has all three.

Training captions: the runner parses the dataset's caption corpus with the synonym lists
(``bench.data.captions``) and appends :meth:`TaIDPT.extra_captions`: for every class, 9 copies of
"a photo of a {name}." and one caption per CLIP ImageNet template (80), each with a one-hot label
(``coco2014_distill.py:184-195``, ``voc2007_distill.py:156-167``, ``nuswide_distill.py:187-198``;
``data_helpers.py:12-95`` -- the same 80 templates, in the same order, as open_clip's
``OPENAI_IMAGENET_TEMPLATES``).

Setting ``zsl`` (seen/unseen classes, ``bench.cell.zsl``; not in TaI-DPT's paper, run for comparison with
DualCoOp's protocol): the corpus is parsed with the seen and unseen classes' synonyms, every caption naming
an unseen class is dropped, the rest are labelled with the seen classes, template captions are made for
the seen classes only; the generic contexts then prompt the unseen / all classes (:meth:`TaIDPT.rebuild`).

Deliberate differences (also in the records, through the hyperparameters and ``train_data``):
- Caption corpus: COCO/VOC train on captions_train2014 of our train split. TaI-DPT reads
  captions_train2017 (``coco2014_distill.py:97``), whose images include most of val2014 = the COCO test
  split: leakage. NUS-WIDE: TaI-DPT keeps each caption only under its rarest class, at most 1,000 per
  class (``nuswide_distill.py:156-179``); :meth:`TaIDPT.select_captions` implements it
  (``max_captions_per_class``) for a runner that calls it.
- Caption -> label: surface forms + inflect plurals instead of NLTK lemmatisation (see
  ``bench/data/captions.py``), with our own synonym lists.
- Model selection: the last epoch. TaI-DPT keeps the best epoch on "val", which is the test set
  (VOC) or a slice of it (every 10th COCO / 20th NUS test image; ``voc2007_distill.py:179``,
  ``coco2014_distill.py:197``, ``nuswide_distill.py:223``).
- Runner-owned details: caption features are cached once in fp16 (the reference re-encodes them in fp32
  every step; the text tower is frozen and captions are not augmented, so only the precision
  differs); the last partial batch is kept (Dassl ``data_manager.py:49`` drops it). The schedule
  matches Dassl's: constant warm-up, then cosine with T_max = all epochs
  (``dassl/optim/lr_scheduler.py:130-137``; bench.cell.train.lr_schedule).
- Prompt class names: the dataset's by default. TaI-DPT prompts COCO with the first synonym of each
  list ("motor bike", "aeroplane", ``data_helpers.py:251``); ``prompt_names="coco"`` does the same
  with our synonym file. (VOC prompts use the VOC names, ``voc2007_distill.py:24``; NUS names are the
  concept names.)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bench.data.base import NEGATIVE, POSITIVE
from bench.method import Method
from bench.methods._parts.losses import ranking_loss
from bench.methods._parts.names import prompt_names as resolve_prompt_names
from bench.methods._parts.prompt import PromptLearner, encode_prompts
from bench.methods.zsclip import template_list
from bench.registry import METHODS

PADDING_PENALTY = -10000.0  # added to a padding token's cosine before the temperature (CDD.py:347)


def rarest_class_subset(labels: np.ndarray, max_per_class: int) -> np.ndarray:
    """Rows kept by TaI-DPT's NUS-WIDE caption limit (``nuswide_distill.py:156-179``).

    Classes are ranked by how many captions name them (rarest first, stable); each caption is
    assigned to the rarest class it names; every class keeps its first ``max_per_class`` captions
    in corpus order. Returns the kept row indices, grouped class by class as the reference
    builds its list (the order does not matter: the loader shuffles).
    """
    positive = labels == POSITIVE  # [M, C]
    rank = np.argsort(positive.sum(0), kind="stable")  # class indices, rarest first
    position = np.empty_like(rank)
    position[rank] = np.arange(len(rank))  # class -> its place in the rarity order
    keyed = np.where(positive, position[None, :], len(rank))  # [M, C]
    owner = keyed.argmin(1)  # every row names at least one class (the parser keeps no empty caption)
    kept = [np.flatnonzero(owner == c)[:max_per_class] for c in range(labels.shape[1])]
    return np.concatenate(kept) if kept else np.zeros(0, np.int64)


@METHODS.register_module(name="taidpt")
class TaIDPT(Method):
    """TaI-DPT (see module docstring). Scores: "global" (TaI), "local", "score" (TaI-DPT)."""

    name = "taidpt"
    trains_on = "captions"
    settings = ("zero-shot", "zsl")
    supports_unseen = True  # generic contexts (CSC False, train_caption.py:86-90)
    unseen_note = "generic contexts: trained on captions labelled with seen classes, re-prompted for any class"
    image_features = {"global": "global_nopos", "dense": "dense_nopos"}  # CDD.py:296-306, pitfall 1
    # rn50_{coco2014,voc2007}.yaml OPTIM + Dassl defaults (momentum 0.9, wd 5e-4: dassl/config/defaults.py:152-153)
    default_train = dict(epochs=20, batch_size=512,
                         optimizer=dict(type="SGD", lr=1e-4, momentum=0.9, weight_decay=5e-4),
                         scheduler="cosine", warmup_epochs=1, warmup_lr=1e-5)

    def __init__(self, n_ctx: int = 16, init_std: float = 0.02, class_token_position: str = "end",
                 logit_scale: float = 4.0, spatial_scale_text: float = 50.0, spatial_scale_image: float = 40.0,
                 gl_merge_rate: float = 0.5, ranking_margin: float = 1.0, template_captions: bool = True,
                 default_prompt: str = "a photo of a {}.", default_prompt_copies: int = 9,
                 prompt_names: str | list[str] | None = None, max_captions_per_class: int | None = None):
        super().__init__()
        self.n_ctx = int(n_ctx)  # CDD.py:79, train_caption.py:86
        self.init_std = float(init_std)  # CDD.py:105, 113
        self.class_token_position = class_token_position  # train_caption.py:90 (scripts/main.sh passes "end")
        self.logit_scale = float(logit_scale)  # CDD.py:320, 350: fixed 4.0
        self.spatial_scale_text = float(spatial_scale_text)  # rn50_*.yaml spatial_SCALE_text 50
        self.spatial_scale_image = float(spatial_scale_image)  # rn50_{coco2014,voc2007}.yaml 40, rn50_nuswide.yaml 4
        self.gl_merge_rate = float(gl_merge_rate)  # train_caption.py:91 GL_merge_rate 0.5
        self.ranking_margin = float(ranking_margin)  # CDD.py:474 margin_ = 1, scale_ = 1.0
        self.template_captions = bool(template_captions)  # coco2014_distill.py:184-195
        self.default_prompt = default_prompt  # data_helpers.py:12 prompt_template
        self.default_prompt_copies = int(default_prompt_copies)  # default_prompt_num 10, range(10 - 1) = 9 copies
        self.prompt_names = prompt_names
        self.max_captions_per_class = max_captions_per_class  # nuswide_distill.py:172 max_sample_per_cls 1000
        self._captions_selected = False

    # ----- parameters ---------------------------------------------------------------------------
    def prompt_classnames(self, classnames: list[str]) -> list[str]:
        """The names written into prompts and template captions (dataset names, or first synonyms)."""
        return resolve_prompt_names(self.prompt_names, classnames)

    def build(self, backbone, classnames):
        super().build(backbone, classnames)
        names = self.prompt_classnames(classnames)
        learner = dict(n_ctx=self.n_ctx, class_token_position=self.class_token_position, init_std=self.init_std)
        # drawn in the reference's order: ctx first, then ctx_double (CDD.py:101-113)
        self.global_prompts = PromptLearner(backbone, names, **learner)  # .ctx = the reference's ctx
        self.local_prompts = PromptLearner(backbone, names, **learner)  # .ctx = the reference's ctx_double

    def rebuild(self, classnames):
        """Prompt other classes with the learned global and local contexts (the zsl setting)."""
        self.classnames = list(classnames)
        names = self.prompt_classnames(self.classnames)
        self.global_prompts.set_classnames(names)
        self.local_prompts.set_classnames(names)

    @property
    def ctx(self) -> torch.nn.Parameter:
        return self.global_prompts.ctx

    @property
    def ctx_double(self) -> torch.nn.Parameter:
        return self.local_prompts.ctx

    def text_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised text features of the global and the local prompts, [C, D] each (CDD.py:338-344)."""
        n_cls = self.global_prompts.n_cls
        text = encode_prompts(self.backbone, self.global_prompts, self.local_prompts)  # [2C, D]
        return text[:n_cls], text[n_cls:]

    # ----- forward ------------------------------------------------------------------------------
    def image_inputs(self, feats) -> tuple[torch.Tensor, torch.Tensor]:
        """The global [B, D] and dense [B, P, D] features, normalised (T2I-PAL adapts image features here)."""
        return F.normalize(feats["global"].float(), dim=-1), F.normalize(feats["dense"].float(), dim=-1)

    def spatial_weights(self, sims: torch.Tensor, feats) -> tuple[torch.Tensor, torch.Tensor]:
        """(weights [B, P, C] summing to 1 over positions, the cosines with caption padding penalised)."""
        if feats.get("modality", "image") == "text":
            mask = feats.get("dense_mask")  # [B, P] False at padding
            if mask is not None:
                sims = sims + (~mask.bool()).to(sims.dtype)[:, :, None] * PADDING_PENALTY
            spatial_scale = self.spatial_scale_text
        else:
            spatial_scale = self.spatial_scale_image
        return torch.softmax(spatial_scale * sims, dim=1), sims  # over positions

    def branches(self, feats, text=None) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """({"global", "local", "score"} logits [B, C], spatial weights [B, P, C], normalised dense features).

        ``text``: :meth:`text_features` when the caller already has them (one text-tower pass per step)."""
        text_global, text_local = self.text_features() if text is None else text  # [C, D], [C, D]
        image_global, image_dense = self.image_inputs(feats)  # [B, D], [B, P, D]
        global_logits = self.logit_scale * (image_global @ text_global.T).float()  # [B, C]
        sims = (image_dense @ text_local.T).float()  # [B, P, C] cosines; fp32 so -10000 * tau stays finite
        weights, sims = self.spatial_weights(sims, feats)
        local_logits = (self.logit_scale * sims * weights).sum(dim=1)  # [B, C]
        merged = self.gl_merge_rate * global_logits + (1.0 - self.gl_merge_rate) * local_logits
        return {"global": global_logits, "local": local_logits, "score": merged}, weights, image_dense

    def logits(self, feats):
        return self.branches(feats)[0]

    def loss(self, logits, targets):
        """Ranking loss (margin 1) on the global and on the local logits, summed (CDD.py:473-474)."""
        return (ranking_loss(logits["global"], targets, self.ranking_margin)
                + ranking_loss(logits["local"], targets, self.ranking_margin))

    # ----- training captions --------------------------------------------------------------------
    def select_captions(self, captions: list[str], labels: np.ndarray) -> tuple[list[str], np.ndarray]:
        """TaI-DPT's NUS-WIDE limit on parsed corpus captions, when ``max_captions_per_class`` is set.

        For a runner that calls it between parsing the corpus and :meth:`extra_captions`.
        """
        self._captions_selected = True
        if not self.max_captions_per_class:
            return captions, labels
        rows = rarest_class_subset(labels, int(self.max_captions_per_class))
        return [captions[i] for i in rows], labels[rows]

    def caption_templates(self) -> list[str]:
        """The per-class template captions' templates, in order: ``default_prompt_copies`` x the default
        prompt, then CLIP's 80 ImageNet templates (``coco2014_distill.py:184-195``)."""
        return [self.default_prompt] * self.default_prompt_copies + template_list("imagenet80")

    def extra_captions(self, classnames: list[str]) -> tuple[list[str], np.ndarray]:
        """Per class: ``default_prompt_copies`` x "a photo of a {name}." and one caption per ImageNet
        template, each labelled one-hot in {1, -1} (coco2014_distill.py:184-195). Empty when
        ``template_captions`` is False."""
        if self.max_captions_per_class and not self._captions_selected:
            raise RuntimeError("taidpt.max_captions_per_class is set, but the runner did not call "
                               "TaIDPT.select_captions on the parsed corpus; unset it or update the runner")
        n_cls = len(classnames)
        if not self.template_captions:
            return [], np.zeros((0, n_cls), np.int8)
        templates = self.caption_templates()
        captions, rows = [], []
        for c, name in enumerate(self.prompt_classnames(classnames)):
            row = np.full(n_cls, NEGATIVE, np.int8)
            row[c] = POSITIVE
            captions += [t.format(name) for t in templates]
            rows += [row] * len(templates)
        return captions, np.stack(rows)

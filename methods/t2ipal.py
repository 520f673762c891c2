"""T2I-PAL: text-to-image generation for prompt and adapter learning (Feng et al., arXiv 2506.10575,
IEEE TPAMI 2025; methods.md sec. 5).

The paper has no public code and leaves its equations unpublished. What it states: captions from
public corpora are filtered with TaI-DPT's class-noun parser, a text-to-image model renders them,
and CLIP (frozen) learns from the generated images; TaI-DPT's double-grained prompts remain;
class-wise heatmaps and learnable prototypes aggregate local features; prompt tuning is combined
with adapter learning, with a ratio alpha for how much the adapter overrides CLIP; results are
reported zero-shot, few-shot and with partial labels. Everything else below is our choice
(methods.md's proposal), documented here and exposed in the config:

Branches, for image features x^g [B, D] and x^l [B, P, D] (after the adapter):
  adapter      A(x) = alpha * MLP(x) + (1 - alpha) * x, MLP = D -> D/4 -> D with ReLUs, no biases
               (CLIP-Adapter, Gao et al. 2021, which the paper's reviewers name as the antecedent);
               alpha = 0.2. Applied to global and local image features, never to text-as-image
               features. ``adapter="lora"``: a rank-r LoRA (peft) on an identity linear map,
               x + (alpha_lora / r) * B A x; ``adapter=None``: no adapter.
  global       g_c = s * cos(x^g, t^g_c) with TaI-DPT's global prompts (scale s = 4).
  heatmap      H[p, c] = softmax over positions p of tau * cos(x^l_p, t^l_c) (TaI-DPT's local prompts);
               every column sums to 1. ``heatmap=False``: H uniform (mean pooling), the ablation.
  local        l_c = s * sum_p H[p, c] * cos(x^l_p, t^l_c) (TaI-DPT's local branch).
  prototypes   r_c = norm(sum_p H[p, c] * x^l_p), q_c = s * cos(r_c, P_c); P [C, D] learnable,
               initialised from the frozen text features of "a photo of a {c}.". ``prototypes=False``
               drops the branch.
  score        z = r * g + (1 - r) * l + lambda * q. ``tune_weights=True`` (default): r and lambda are
               chosen after training on validation images, never test images (the dataset's val split
               with the cell's label budget, else a seeded 20% hold-out of the cell's training images, not
               trained on; bench.cell.validation), from ``weight_grid``; the record
               keeps the grid's validation mAPs and the choice. ``tune_weights=False``: the fixed
               ``gl_merge_rate`` and ``proto_weight`` (0.5, 0.5).
Loss: TaI-DPT's ranking loss (margin 1) on g, l and q of every training image, plus (``use_captions``)
on g and l of every caption as text-as-image features (TaI-DPT), summed; each term is averaged over
the batch rows that have that input (bench.cell.generated mixes rows with and without an image).
Data (bench.cell.generated): the runner parses the caption corpus exactly as for TaI-DPT (same synonym
lists, template captions); ``max_captions`` keeps one seeded subset of them, the same for every
ablation row. ``images_per_caption`` images are rendered per caption with ``generator`` (cached on
disk, resumable); ``render_templates="photo"`` renders the corpus captions and only the photographic
template captions ("a photo of ...", "a blurry photo of ...", "itap of ..."), not "a sketch of",
"a tattoo of", "origami", ... (they stay training captions): the generated images stand in for the
photographs of the test set, and rendering sketches and tattoos would add exactly the synthetic-to-real
style gap the method suffers from, while as text they still do what they do for TaI-DPT.
``use_generated=False`` is the "w/o T2I" row: the same captions, nothing rendered.
Generated images get ``features.views`` augmented views like real training images.
Settings: zero-shot trains on the generated images and captions alone. Few-shot and partial labels
(the paper reports both but does not say how real images enter): the cell's labelled real train
images, with their known labels only (unknown = 0 is in no ranking pair), are added as extra training
rows of the same model -- the same prompts, adapter and prototypes, the same losses on g, l and q --
alongside the generated images and their captions, each row weighted alike.
Only what was trained is used at test: when no image at all reaches training (the "w/o T2I" row in the
zero-shot setting), the adapter and the prototype branch never receive a gradient, so they are removed
(:meth:`T2IPAL.drop_image_parts`) and the record says adapter=None, prototypes=False.
Setting ``zsl`` (``bench.cell.zsl``): images are generated from TaI-DPT's seen-class captions (captions naming an
unseen class are dropped); at evaluation the prompts are re-prompted for the unseen / all classes, the
adapter is class-agnostic, and a class never trained keeps its prototype's initial text feature
(:meth:`T2IPAL.rebuild`, our choice).
Test: real images with ``global_nopos``/``dense_nopos`` features as TaI-DPT (tau = 40 on images, also
for generated images in training: they are images; NUS-WIDE: the dataset config gives T2I-PAL
TaI-DPT's NUS-WIDE values).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import UsageError
from bench.methods._parts.adapters import ResidualAdapter
from bench.methods._parts.losses import ranking_loss
from bench.methods.taidpt import TaIDPT
from bench.methods.zsclip import class_text_features
from bench.registry import METHODS


class LoRAAdapter(nn.Module):
    """x -> x + (lora_alpha / r) * B(A(x)) through peft: LoRA injected into a frozen identity map.

    peft supplies the low-rank layer (init: A Kaiming, B zero, so training starts at the identity).
    """

    def __init__(self, dim: int, rank: int = 8, lora_alpha: float = 16.0):
        super().__init__()
        from peft import LoraConfig, inject_adapter_in_model

        self.identity = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            self.identity.weight.copy_(torch.eye(dim))
        inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=lora_alpha, lora_dropout=0.0,
                                           target_modules=["identity"]), self)  # freezes the base weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.identity(x)


PHOTO_MARKERS = ("photo", "itap ")  # a template caption is photographic when it contains one of these
DEFAULT_WEIGHT_GRID = dict(gl_merge_rate=[0.0, 0.25, 0.5, 0.75, 1.0], proto_weight=[0.0, 0.25, 0.5, 1.0])


def is_photographic(template: str) -> bool:
    """Whether a caption template describes a photograph ("a blurry photo of a {}.", "itap of a {}.")."""
    return any(marker in template for marker in PHOTO_MARKERS)


def fuse_branches(branches: dict, gl_merge_rate: float, proto_weight: float):
    """The final score r * g + (1 - r) * l (+ lambda * q when there is a prototype branch); torch or numpy."""
    score = gl_merge_rate * branches["global"] + (1.0 - gl_merge_rate) * branches["local"]
    if "prototype" in branches:
        score = score + proto_weight * branches["prototype"]
    return score


def _rows_loss(scores: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor | None, margin: float):
    """Ranking loss averaged over the rows selected by ``rows`` (all when None); 0 when none is selected."""
    if rows is None:
        return ranking_loss(scores, targets, margin)
    rows = rows.bool()
    if not bool(rows.any()):
        return scores.sum() * 0.0
    return ranking_loss(scores[rows], targets[rows], margin)


@METHODS.register_module(name="t2ipal")
class T2IPAL(TaIDPT):
    """T2I-PAL (see module docstring). Scores: "global", "local", "prototype", "score"."""

    name = "t2ipal"
    trains_on = "generated"
    settings = ("zero-shot", "fewshot", "partial", "zsl")
    supports_unseen = True
    unseen_note = ("generic contexts and adapter; a class never trained keeps its prototype's initial value "
                   "(the text feature of 'a photo of a {c}.')")
    # methods.md sec. 5 proposal: SGD, 20 epochs, batch 256 images; prompts at TaI-DPT's lr, adapter and
    # prototypes 10x (lr_mult via mmengine paramwise_cfg).
    default_train = dict(epochs=20, batch_size=256,
                         optimizer=dict(type="SGD", lr=1e-4, momentum=0.9, weight_decay=5e-4),
                         scheduler="cosine", warmup_epochs=1, warmup_lr=1e-5,
                         paramwise_cfg=dict(custom_keys={"adapter": dict(lr_mult=10.0),
                                                         "prototypes": dict(lr_mult=10.0)}))

    def __init__(self, generator: dict | None = None, images_per_caption: int = 1, max_captions: int | None = None,
                 generation_seed: int = 0, use_generated: bool = True, use_captions: bool = True,
                 render_templates: str = "photo", adapter: str | None = "mlp", adapter_alpha: float = 0.2,
                 lora_rank: int = 8, heatmap: bool = True, prototypes: bool = True, proto_weight: float = 0.5,
                 prototype_prompt: str = "a photo of a {}.", tune_weights: bool = True,
                 weight_grid: dict | None = None, exclude_near_duplicates: float | None = None, **taidpt_kwargs):
        super().__init__(**taidpt_kwargs)  # n_ctx, logit_scale, temperatures, template captions, ...
        if adapter not in (None, "mlp", "lora"):
            raise UsageError(f"adapter must be None, 'mlp' or 'lora', got {adapter!r}")
        if render_templates not in ("photo", "all", "none"):
            raise UsageError(f"render_templates must be 'photo', 'all' or 'none', got {render_templates!r}")
        self.generator = {"type": "toy", **(generator or {})}  # a generator config: GENERATORS type + kwargs
        self.images_per_caption = int(images_per_caption)
        self.max_captions = max_captions
        self.generation_seed = int(generation_seed)
        self.use_generated = bool(use_generated)
        self.use_captions = bool(use_captions)
        self.render_templates = render_templates
        self.adapter = adapter
        self.adapter_alpha = float(adapter_alpha)
        self.lora_rank = int(lora_rank)
        self.heatmap = bool(heatmap)
        self.prototypes = bool(prototypes)
        self.proto_weight = float(proto_weight)
        self.prototype_prompt = prototype_prompt
        self.tune_weights = bool(tune_weights)
        self.weight_grid = dict(DEFAULT_WEIGHT_GRID if weight_grid is None else weight_grid)
        self.exclude_near_duplicates = exclude_near_duplicates  # cosine: drop generated near-copies of test images
        self.tuned: dict | None = None  # the weights chosen on validation images (set_tuned)

    # ----- parameters ---------------------------------------------------------------------------
    def build(self, backbone, classnames):
        super().build(backbone, classnames)  # TaI-DPT's global and local prompts
        dim = backbone.embed_dim
        if self.adapter == "mlp":
            self.image_adapter = ResidualAdapter(dim, self.adapter_alpha)
        elif self.adapter == "lora":
            self.image_adapter = LoRAAdapter(dim, rank=self.lora_rank)
        else:
            self.image_adapter = nn.Identity()
        if self.prototypes:
            names = self.prompt_classnames(classnames)
            self.class_prototypes = nn.Parameter(class_text_features(backbone, names, self.prototype_prompt).clone())

    def rebuild(self, classnames):
        """The zsl setting: TaI-DPT's prompts re-prompted for ``classnames`` (contexts and adapter are
        class-agnostic); the prototypes of classes trained on keep their learned rows, the others start (and
        stay) at their initial value, the frozen text feature of ``prototype_prompt`` -- our choice: the paper
        says nothing about unseen classes."""
        learned = dict(zip(self.classnames, self.class_prototypes.detach())) if self.prototypes else {}
        super().rebuild(classnames)
        if self.prototypes:
            names = self.prompt_classnames(self.classnames)
            initial = class_text_features(self.backbone, names, self.prototype_prompt).to(self.class_prototypes.device)
            rows = [learned.get(c, initial[i]) for i, c in enumerate(self.classnames)]
            self.class_prototypes = nn.Parameter(torch.stack(rows).clone(), requires_grad=False)

    def drop_image_parts(self) -> None:
        """Remove the adapter and the prototype branch (for training sets without any image: they would
        never receive a gradient, and test scores must use only what was trained)."""
        self.adapter, self.prototypes = None, False
        self.image_adapter = nn.Identity()
        if hasattr(self, "class_prototypes"):
            del self.class_prototypes

    def renders(self, template: str) -> bool:
        """Whether captions made from this template are rendered as images (``render_templates``)."""
        return self.render_templates == "all" or (self.render_templates == "photo" and is_photographic(template))

    def rendered_mask(self, captions: list[str], classnames: list[str]) -> np.ndarray:
        """Bool [M]: which training captions are rendered. Nothing without ``use_generated``; else every
        caption except the template captions whose template :meth:`renders` refuses."""
        if not self.use_generated:
            return np.zeros(len(captions), dtype=bool)
        names = self.prompt_classnames(classnames)
        skipped = {t.format(n) for t in self.caption_templates() if not self.renders(t) for n in names}
        return np.array([c not in skipped for c in captions], dtype=bool)

    # ----- forward ------------------------------------------------------------------------------
    def image_inputs(self, feats):
        """TaI-DPT's normalised features, with the adapter applied first to image features (not captions)."""
        if feats.get("modality", "image") == "text":
            return super().image_inputs(feats)
        return super().image_inputs({"global": self.image_adapter(feats["global"].float()),
                                     "dense": self.image_adapter(feats["dense"].float())})

    def spatial_weights(self, sims, feats):
        """The class-wise heatmaps H [B, P, C] (columns sum to 1); uniform pooling when ``heatmap=False``."""
        if self.heatmap:
            return super().spatial_weights(sims, feats)
        mask = feats.get("dense_mask") if feats.get("modality", "image") == "text" else None
        valid = torch.ones_like(sims[..., :1]) if mask is None else mask.to(sims.dtype)[:, :, None]
        return (valid / valid.sum(dim=1, keepdim=True)).expand_as(sims), sims

    def score_weights(self) -> tuple[float, float]:
        """(r, lambda) of the final score: the validation choice once made, else the configured values."""
        tuned = self.tuned or {}
        return tuned.get("gl_merge_rate", self.gl_merge_rate), tuned.get("proto_weight", self.proto_weight)

    def logits(self, feats):
        text = self.text_features()  # once for the images and their captions
        out, heat, dense = self.branches(feats, text)  # TaI-DPT's global / local / merged, heatmaps, normalised x^l
        if self.prototypes and feats.get("modality", "image") == "image":
            regions = F.normalize(torch.einsum("bpc,bpd->bcd", heat, dense), dim=-1)  # [B, C, D]
            protos = F.normalize(self.class_prototypes, dim=-1)  # [C, D]
            out["prototype"] = self.logit_scale * (regions * protos[None]).sum(-1)  # [B, C]
        out["score"] = fuse_branches(out, *self.score_weights())
        if "text" in feats:  # each image's caption, as TaI-DPT's texts-as-images (training only)
            out["text"] = self.branches(feats["text"], text)[0]
        for key in ("image_rows", "text_rows"):  # which rows carry an image / a caption (mixed training sets)
            if key in feats:
                out[key] = feats[key]
        return out

    def loss(self, logits, targets):
        """Ranking loss (margin 1) on every branch of the images, plus on the captions' g and l; each term
        averaged over the rows that have that input."""
        image_rows = logits.get("image_rows")
        branches = [b for b in ("global", "local", "prototype") if b in logits]
        loss = sum(_rows_loss(logits[b], targets, image_rows, self.ranking_margin) for b in branches)
        if self.use_captions and "text" in logits:
            text, text_rows = logits["text"], logits.get("text_rows")
            loss = loss + sum(_rows_loss(text[b], targets, text_rows, self.ranking_margin) for b in ("global", "local"))
        return loss

    # ----- weights chosen on validation images (bench.cell.validation) ------------------------------
    def tuning_grid(self) -> list[dict]:
        """Candidate (gl_merge_rate, proto_weight) pairs; empty when ``tune_weights`` is off. The configured
        pair comes first, so it wins ties."""
        if not self.tune_weights:
            return []
        weights = self.weight_grid.get("proto_weight", [self.proto_weight]) if self.prototypes else [0.0]
        grid = [dict(gl_merge_rate=float(r), proto_weight=float(w))
                for r in self.weight_grid.get("gl_merge_rate", [self.gl_merge_rate]) for w in weights]
        first = dict(gl_merge_rate=self.gl_merge_rate, proto_weight=self.proto_weight if self.prototypes else 0.0)
        return [first] + [g for g in grid if g != first]

    def combine(self, branches: dict, values: dict):
        """The final score from branch scores (numpy or torch) for one candidate of :meth:`tuning_grid`."""
        return fuse_branches(branches, values["gl_merge_rate"], values["proto_weight"])

    def set_tuned(self, values: dict) -> None:
        self.tuned = dict(values)

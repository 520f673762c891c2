"""T2I-PAL: text-to-image generation for prompt and adapter learning (Feng et al., arXiv 2506.10575,
IEEE TPAMI 2025; methods.md sec. 5).

The paper has no public code and leaves its equations unpublished. What it states: captions from
public corpora are filtered with TaI-DPT's class-noun parser, a text-to-image model renders them,
and CLIP (frozen) learns from the generated images; TaI-DPT's double-grained prompts remain;
class-wise heatmaps and learnable prototypes aggregate local features; prompt tuning is combined
with adapter learning, with a ratio alpha for how much the adapter overrides CLIP. Everything else
below is our choice (methods.md's proposal), documented here and exposed in the config:

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
  score        z = gl_merge_rate * g + (1 - gl_merge_rate) * l + proto_weight * q (0.5, 0.5, 0.5).
Loss: TaI-DPT's ranking loss (margin 1) on g, l and q for the generated images, plus (``use_captions``)
on g and l for each image's caption as text-as-image features (TaI-DPT), summed.
Data: the runner parses the caption corpus exactly as for TaI-DPT (same synonym lists, template
captions), renders ``images_per_caption`` images per caption with ``generator`` (cached on disk,
resumable), and caches their frozen features. ``use_generated=False`` trains on captions alone (the
"w/o T2I" ablation: TaI-DPT plus this method's prototypes/adapter, which see no images then).
Setting ``zsl`` (``bench.zsl``): images are generated from TaI-DPT's seen-class captions (captions naming an
unseen class are dropped); at evaluation the prompts are re-prompted for the unseen / all classes, the
adapter is class-agnostic, and a class never trained keeps its prototype's initial text feature
(:meth:`T2IPAL.rebuild`, our choice).
Test: real images with ``global_nopos``/``dense_nopos`` features as TaI-DPT (tau = 40 on images, also
for generated images in training: they are images).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.registry import METHODS
from methods._parts.adapters import ResidualAdapter
from methods._parts.losses import ranking_loss
from methods.taidpt import TaIDPT
from methods.zsclip import class_text_features


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


@METHODS.register_module(name="t2ipal")
class T2IPAL(TaIDPT):
    """T2I-PAL (see module docstring). Scores: "global", "local", "prototype", "score"."""

    name = "t2ipal"
    trains_on = "generated"
    settings = ("zero-shot", "zsl")
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
                 adapter: str | None = "mlp", adapter_alpha: float = 0.2, lora_rank: int = 8,
                 heatmap: bool = True, prototypes: bool = True, proto_weight: float = 0.5,
                 prototype_prompt: str = "a photo of a {}.", **taidpt_kwargs):
        super().__init__(**taidpt_kwargs)  # n_ctx, logit_scale, temperatures, template captions, ...
        if adapter not in (None, "mlp", "lora"):
            raise ValueError(f"adapter must be None, 'mlp' or 'lora', got {adapter!r}")
        self.generator = {"type": "toy", **(generator or {})}  # a generator config: GENERATORS type + kwargs
        self.images_per_caption = int(images_per_caption)
        self.max_captions = max_captions
        self.generation_seed = int(generation_seed)
        self.use_generated = bool(use_generated)
        self.use_captions = bool(use_captions)
        self.adapter = adapter
        self.adapter_alpha = float(adapter_alpha)
        self.lora_rank = int(lora_rank)
        self.heatmap = bool(heatmap)
        self.prototypes = bool(prototypes)
        self.proto_weight = float(proto_weight)
        self.prototype_prompt = prototype_prompt
        self.trains_on = "generated" if self.use_generated else "captions"  # the "w/o T2I" ablation

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

    def logits(self, feats):
        text = self.text_features()  # once for the images and their captions
        out, heat, dense = self.branches(feats, text)  # TaI-DPT's global / local / merged, heatmaps, normalised x^l
        if self.prototypes and feats.get("modality", "image") == "image":
            regions = F.normalize(torch.einsum("bpc,bpd->bcd", heat, dense), dim=-1)  # [B, C, D]
            protos = F.normalize(self.class_prototypes, dim=-1)  # [C, D]
            out["prototype"] = self.logit_scale * (regions * protos[None]).sum(-1)  # [B, C]
            out["score"] = out["score"] + self.proto_weight * out["prototype"]
        if "text" in feats:  # each generated image's caption, as TaI-DPT's texts-as-images (training only)
            out["text"] = self.branches(feats["text"], text)[0]
        return out

    def loss(self, logits, targets):
        """Ranking loss (margin 1) on every branch of the images, plus on the captions' g and l."""
        branches = [b for b in ("global", "local", "prototype") if b in logits]
        loss = sum(ranking_loss(logits[b], targets, self.ranking_margin) for b in branches)
        if self.use_captions and "text" in logits:
            text = logits["text"]
            loss = loss + sum(ranking_loss(text[b], targets, self.ranking_margin) for b in ("global", "local"))
        return loss

"""CLIP-LoRA as a multi-label baseline (Zanella & Ben Ayed, CVPRW 2024; methods.md sec. 5b).

Reference: MaxZanella/CLIP-LoRA @358f0d7 ``lora.py``, ``main.py``, ``run_utils.py``, ``loralib/`` (cited by file:line).

What it learns: low-rank updates W + (alpha / sqrt(r)) B A of the attention projections of both CLIP
towers; everything else is frozen (``lora.py:63, 72``; ``loralib/utils.py:47-50, 107-134``). Reference defaults
(``run_utils.py:32-37``): every block (``--position all``), both encoders (``--encoder both``), the query, key and
value projections (``--params q k v``), r = 2, alpha = 1, dropout 0.25 on the LoRA branch's input; scaling
alpha / sqrt(r) (``loralib/layers.py:42``), A Kaiming-uniform and B zero (``layers.py:63-68``).
Mapped onto open_clip (``methods/_parts/lora.py``): the ``attn`` (nn.MultiheadAttention) of
``transformer.resblocks.{i}`` (text) and ``visual.transformer.resblocks.{i}`` (ViT image tower) is replaced by an
equivalent attention with separate q/k/v/out linear layers, as the reference's ``PlainMultiheadAttentionLoRA``
does (``loralib/layers.py:340-423``), and peft puts a ``Linear`` LoRA (``use_rslora`` = alpha / sqrt(r)) on the
chosen ones. Not peft's MultiheadAttention LoRA: that one shares one A between q, k and v, always adds an
out-projection LoRA, and ignores dropout; and a LoRA on ``attn.out_proj`` itself is silently bypassed
(stack.md sec. 4). The reference's ``position`` presets are 12-layer index lists (``loralib/utils.py:10-44``);
bench takes ``layers="all"`` or explicit block indices.

ResNet image towers (RN50, the toy CLIP): the reference only adapts ``visual.transformer`` (``loralib/utils.py:
122-133``; its ViT-only index table has no RN entry), and a ModifiedResNet's one attention, the attention pool,
is read as raw weights by open_clip and bench alike, so a LoRA there would be bypassed. On an RN backbone
bench therefore adapts the text tower only: ``encoder`` is recorded as "text" (``method_hparams``), and the image
features come from the feature cache (exact: the image tower is frozen).

Image-tower LoRA (ViT backbones, ``encoder`` "both" or "vision") changes the image features at every step, so
the method sets ``online_images``: the runner re-encodes the augmented training images every step and the test
images after training through this method's ``encode_pixels``, whatever ``features.mode`` says, and the record's
``image_protocol`` says ``online`` with the reason. The cost shows in ``seconds`` and the cost table.

Forward: t_c = normalised LoRA text feature of "a photo of a {c}." (``lora.py:94-101``, the dataset's first
template), x = normalised (LoRA) global image feature (``lora.py:103-110``), logit = s * cos(x, t_c).
Loss: the reference is single-label cross-entropy at CLIP's scale 100 (``main.py:22``, ``lora.py:112-113``);
bench trains it like its CoOp: TaI-DPT's ranking loss on s = 4 over the known labels (``methods/coop.py`` says
why; ``logit_scale=None`` restores CLIP's scale).
Schedule (``configs/_base_/methods/clip_lora.py``): AdamW lr 2e-4, weight decay 0.01, betas (0.9, 0.999),
batch 32 (``lora.py:75``, ``run_utils.py:28-30``), cosine. The reference counts 500 x shots iterations with a
per-iteration cosine to 1e-6 (``lora.py:73-76``); bench trains whole epochs with the per-epoch cosine to 0 of
every bench method, the epoch count in the config chosen per dataset to see about as many samples.

Setting ``zsl`` (seen/unseen classes, ``bench.cell.zsl``): the LoRA weights are not per class, so
:meth:`CLIPLoRA.rebuild` prompts the unseen (then all) classes and their text features are recomputed through the
LoRA'd text tower; with an adapted image tower the test images are encoded through it as in the other settings.

The LoRA parameters live in a private copy of the frozen CLIP model (the shared backbone stays untouched for
other cells and the feature cache); the same Parameter objects are registered in ``self.lora`` so they are
the method's trainable parameters and its checkpoints hold them and nothing else of CLIP.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import UsageError
from bench.features.backbone import Backbone
from bench.method import Method
from bench.methods._parts.lora import inject_lora, split_attention
from bench.methods._parts.losses import ranking_loss
from bench.registry import METHODS

ENCODERS = ("text", "vision", "both")


@METHODS.register_module(name="clip_lora")
class CLIPLoRA(Method):
    """LoRA on the attention projections of CLIP's towers (see module docstring)."""

    name = "clip_lora"
    trains_on = "images"
    settings = ("partial", "fewshot", "zsl")
    supports_unseen = True
    unseen_note = "LoRA on the towers is class-agnostic: any class prompt goes through the LoRA'd text tower"
    image_features = {"global": "global"}  # cached path (frozen image tower); online: encode_pixels
    # lora.py:75 AdamW(weight_decay=1e-2, betas=(0.9, 0.999), lr=args.lr); run_utils.py:28-30 lr 2e-4, batch 32
    default_train = dict(epochs=3, batch_size=32,
                         optimizer=dict(type="AdamW", lr=2e-4, weight_decay=1e-2, betas=(0.9, 0.999)),
                         scheduler="cosine", warmup_epochs=0, warmup_lr=1e-5)

    def __init__(self, encoder: str = "both", layers="all", params=("q", "k", "v"), rank: int = 2,
                 lora_alpha: float = 1.0, dropout: float = 0.25, template: str = "a photo of a {}.",
                 logit_scale: float | None = 4.0, ranking_margin: float = 1.0):
        super().__init__()
        if encoder not in ENCODERS:
            raise UsageError(f"clip_lora.encoder must be one of {ENCODERS}, got {encoder!r}")
        self.encoder = encoder  # run_utils.py:33 default "both"; set to the towers actually adapted in build()
        self.layers = layers if layers == "all" else [int(i) for i in layers]  # run_utils.py:32 position "all"
        self.params = list(params)  # run_utils.py:34 ['q', 'k', 'v']
        self.rank = int(rank)  # run_utils.py:35
        self.lora_alpha = float(lora_alpha)  # run_utils.py:36
        self.dropout = float(dropout)  # run_utils.py:37
        self.template = template  # lora.py:94-95 dataset.template[0] ("a photo of a {}." for most datasets)
        self.logit_scale = None if logit_scale is None else float(logit_scale)  # bench: 4; None: CLIP's (main.py:22)
        self.ranking_margin = float(ranking_margin)  # TaI-DPT Caption_distill_double.py:474 margin_ = 1
        self.online_images = False

    # ----- parameters ---------------------------------------------------------------------------
    def build(self, backbone, classnames):
        super().build(backbone, classnames)
        if backbone.is_resnet:
            if self.encoder == "vision":
                raise UsageError("clip_lora.encoder='vision' needs a ViT image tower; on a ResNet CLIP only the "
                                 "text tower has attention LoRA can reach (see methods/clip_lora.py)")
            self.encoder = "text"
        model = copy.deepcopy(backbone.model)  # private copy: the shared backbone never sees the LoRA
        towers = {"transformer": self.encoder in ("text", "both"), "visual.transformer": self.encoder != "text"}
        blocks = {}
        for prefix, adapted in towers.items():
            if adapted:
                transformer = model.transformer if prefix == "transformer" else model.visual.transformer
                blocks[prefix] = split_attention(transformer, self.layers)
        lora = inject_lora(model, blocks, self.params, self.rank, self.lora_alpha, self.dropout)
        clip = Backbone(model, backbone.tokenizer, backbone.preprocess, backbone.spec, device=backbone.device)
        clip.amp_dtype = backbone.amp_dtype
        self.__dict__["lora_clip"] = clip  # not a submodule: its frozen weights stay out of checkpoints
        self.lora = nn.ParameterDict({name.replace(".", "__"): p for name, p in lora.items()})
        for p in self.lora.values():
            p.requires_grad_(True)
        self.__dict__["_lora_layers"] = [m for m in model.modules() if hasattr(m, "lora_A")]
        self.online_images = self.encoder != "text"
        self.online_reason = "clip_lora adapts the image tower: images re-encoded every step and at test time"
        self._set_prompts(classnames)
        self.scale = backbone.logit_scale if self.logit_scale is None else self.logit_scale

    def _set_prompts(self, classnames: list[str]) -> None:
        """Token embeddings and ids of the class prompts (lora.py:94-96); the token embedding is not adapted, so
        the shared backbone's is the LoRA copy's."""
        ids = self.backbone.tokenize([self.template.format(name.replace("_", " ")) for name in classnames])
        with torch.no_grad():
            self.register_buffer("prompt_embeddings", self.backbone.token_embedding(ids).float(), persistent=False)
        self.register_buffer("prompt_ids", ids, persistent=False)

    def rebuild(self, classnames):
        """Prompt other classes (the zsl setting): their text features then go through the LoRA'd text tower
        (:meth:`text_features`); every LoRA parameter is kept."""
        self.classnames = list(classnames)
        self._set_prompts(self.classnames)

    def train(self, mode: bool = True):
        """Also switches the LoRA layers (their dropout) of the private CLIP copy, which is not a submodule."""
        super().train(mode)
        for layer in getattr(self, "_lora_layers", []):
            layer.train(mode)
        return self

    # ----- forward ------------------------------------------------------------------------------
    def text_features(self) -> torch.Tensor:
        """[C, D] normalised class-prompt features through the LoRA text tower (lora.py:97-101)."""
        text = self.lora_clip.encode_embedded(self.prompt_embeddings, self.prompt_ids)
        return F.normalize(text.float(), dim=-1)

    def encode_pixels(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of preprocessed images through the LoRA image tower, with gradients (lora.py:103-105)."""
        with self.lora_clip.autocast():
            return {"global": self.lora_clip.model.encode_image(pixels.to(self.lora_clip.device)).float()}

    def logits(self, feats):
        image = F.normalize(feats["global"].float(), dim=-1)  # lora.py:110
        return self.scale * image @ self.text_features().T  # [B, C] (lora.py:112)

    def loss(self, logits, targets):
        """TaI-DPT's ranking loss on the scaled cosines; unknown labels (0) enter no pair."""
        return ranking_loss(logits.float(), targets, self.ranking_margin)

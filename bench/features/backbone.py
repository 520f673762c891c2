"""The frozen CLIP backbone, through open_clip: global and dense image features, and text paths.

Three steps, kept apart (STYLE: resolve name -> build -> load weights):
  :func:`bench.features.spec.resolve_spec` turns a config dict into a :class:`BackboneSpec`,
  :func:`load_backbone` builds the open_clip model and loads its weights,
  :class:`Backbone` exposes what the methods need.

Image feature kinds (all in the joint embedding space, unnormalised):
  ``global``       open_clip ``encode_image`` (ResNet: attention pool *with* positional embedding).
  ``global_nopos`` ResNet attention pool without the positional embedding (TaI-DPT ``if_pos=False``).
  ``dense``        ResNet: value + output projections of the attention pool at every location, applied
                   to [mean token, locations] *with* the (resized) positional embedding, as DualCoOp
                   ``AttentionConv`` does -> [B, 1+HW, D].  ViT: [pooled, ln_post(patch tokens) @ proj].
  ``dense_nopos``  ResNet: the same projections on the HW locations only, no positional embedding
                   (TaI-DPT) -> [B, HW, D].  ViT: ln_post(patch tokens) @ proj (a ViT has no
                   position-free path; the positional embedding enters at its input).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import UsageError
from bench.features.quickgelu import decide_quick_gelu, is_torchscript_archive, text_activation
from bench.features.spec import BackboneError, BackboneSpec, is_local_path, resolve_path
from bench.features.weights import load_torchscript_weights, refused_globals

IMAGE_FEATURE_KINDS = ("global", "global_nopos", "dense", "dense_nopos")
log = logging.getLogger("bench")


def load_backbone(spec: BackboneSpec, device: str | torch.device = "cpu", amp: str | None = None) -> Backbone:
    """Build the open_clip model of ``spec``, load its weights, freeze it and wrap it."""
    import open_clip  # slow import (torchvision, timm); only where a model is built

    pretrained, model_config = resolve_path(spec.pretrained), resolve_path(spec.model_config)
    if model_config:
        cfg_path = Path(model_config)
        if not cfg_path.exists():
            raise BackboneError(f"model config not found: {cfg_path}")
        open_clip.add_model_config(cfg_path)
    if not spec.model.startswith(("hf-hub:", "local-dir:")) and spec.model not in open_clip.list_models():
        raise BackboneError(f"unknown open_clip model {spec.model!r}; valid names: {', '.join(open_clip.list_models())}"
                            " (or give backbone.model_config, a json model config)")
    if pretrained and is_local_path(pretrained) and not Path(pretrained).is_file():
        raise BackboneError(f"checkpoint not found: {pretrained}")
    is_file = bool(pretrained) and is_local_path(pretrained)
    quick_gelu, why = decide_quick_gelu(open_clip, spec.model, pretrained, spec.quick_gelu, is_file)
    kwargs = {}
    if quick_gelu is not None:
        kwargs["force_quick_gelu" if quick_gelu else "quick_gelu"] = quick_gelu  # False: overrides a -quickgelu config
    # user-given weights load with weights_only=True (open_clip's default: a state dict holds tensors only); an
    # OpenAI TorchScript archive is read by torch.jit.load (trusted files only: README "Real weights")
    scripted = is_file and is_torchscript_archive(pretrained)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.model, pretrained=None if scripted else pretrained, device=device, weights_only=True, **kwargs)
        if scripted:
            load_torchscript_weights(open_clip, model, pretrained)
    except pickle.UnpicklingError as exc:  # weights_only refused a global: the file holds more than tensors
        raise BackboneError(
            f"checkpoint {spec.pretrained} holds Python objects besides tensors "
            f"({refused_globals(exc) or str(exc).strip().splitlines()[0][:200]}); "
            "bench never unpickles those (they could run code). Save the weights as a state dict "
            "(torch.save(model.state_dict(), path) or a .safetensors file), or pass OpenAI's TorchScript .pt "
            "release as it is") from exc
    except RuntimeError as exc:
        text = str(exc)
        if "state_dict" in text or "size mismatch" in text:
            first = next((ln.strip() for ln in text.splitlines() if "size mismatch" in ln or "Missing" in ln),
                         text.splitlines()[0])
            raise BackboneError(f"checkpoint {spec.pretrained} does not fit model {spec.model}: {first}") from exc
        raise _weights_unavailable(spec, exc) from exc
    except (OSError, ValueError) as exc:  # hub unreachable, unknown tag, unknown model name
        raise _weights_unavailable(spec, exc) from exc
    if spec.image_size or spec.resize_mode or spec.interpolation:
        from bench.features.augment import eval_transform

        preprocess = eval_transform(model, spec)
    built = text_activation(model)
    spec = dataclasses.replace(spec, quick_gelu=built == "QuickGELU" if built else quick_gelu)
    log.info("%s: %s activation (%s)", spec.describe(), built or "no text-tower", why)
    return Backbone(model, open_clip.get_tokenizer(spec.model), preprocess, spec, device=device, amp=amp)


def _weights_unavailable(spec: BackboneSpec, exc: Exception) -> BackboneError:
    return BackboneError(
        f"cannot load CLIP weights {spec.describe()} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
        f"Without internet, download the checkpoint elsewhere and pass its path: "
        f"--cfg-options backbone.model={spec.model} backbone.pretrained=/path/to/checkpoint.pt "
        f"(an open_clip .pt/.bin/.safetensors state dict)"
    )


def state_dict_sha256(model: nn.Module) -> str:
    """A hash of every weight's bytes: the backbone's identity for cache keys, whatever its source."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class Backbone(nn.Module):
    """A frozen open_clip CLIP model with the feature paths PEFT methods need."""

    def __init__(self, model: nn.Module, tokenizer, preprocess, spec: BackboneSpec,
                 device: str | torch.device = "cpu", amp: str | None = None):
        super().__init__()
        if not hasattr(model, "token_embedding") or not hasattr(model, "text_projection"):
            raise BackboneError(
                f"{spec.model}: only CLIP-style text towers (token_embedding + transformer + text_projection) "
                "are supported; this model has a custom text tower")
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.spec = spec
        self.device = torch.device(device)
        self.amp_dtype = {None: None, "fp16": torch.float16, "bf16": torch.bfloat16}[amp]
        self.is_resnet = hasattr(model.visual, "attnpool")
        if self.is_resnet:  # NHWC: oneDNN convolutions ~1.5x faster on CPU (toy CLIP); values equal up to rounding
            model.visual.to(memory_format=torch.channels_last)
        self._weights_hash: str | None = None

    # ----- identity -------------------------------------------------------------------------
    @property
    def weights_hash(self) -> str:
        if self._weights_hash is None:
            self._weights_hash = state_dict_sha256(self.model)
        return self._weights_hash

    def preprocess_description(self) -> str:
        return repr(self.preprocess)

    def cache_identity(self) -> dict:
        """Everything about the backbone that changes feature bytes."""
        return {"spec": dataclasses.asdict(self.spec), "weights_sha256": self.weights_hash,
                "preprocess": self.preprocess_description()}

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[-1]) if isinstance(self.model.text_projection, torch.Tensor) \
            else int(self.model.text_projection.out_features)

    @property
    def context_length(self) -> int:
        return int(self.model.positional_embedding.shape[0])

    def autocast(self):
        enabled = self.amp_dtype is not None and self.device.type == "cuda"
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=enabled)

    # ----- image side -----------------------------------------------------------------------
    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor, kinds=("global",)) -> dict[str, torch.Tensor]:
        """Image features of the requested kinds (see module docstring), fp32, on this device."""
        unknown = set(kinds) - set(IMAGE_FEATURE_KINDS)
        if unknown:
            raise UsageError(f"unknown image feature kind(s) {sorted(unknown)}; valid: {IMAGE_FEATURE_KINDS}")
        pixels = pixels.to(self.device, non_blocking=True)
        with self.autocast():
            feats = self._resnet_features(pixels, kinds) if self.is_resnet else self._vit_features(pixels, kinds)
        return {k: v.float() for k, v in feats.items()}

    def _resnet_features(self, pixels, kinds):
        visual = self.model.visual
        x = visual.stem(pixels.to(visual.conv1.weight.dtype).contiguous(memory_format=torch.channels_last))
        x = visual.layer4(visual.layer3(visual.layer2(visual.layer1(x))))  # [B, C, h, w]
        pool = visual.attnpool
        tokens = x.flatten(2).permute(0, 2, 1)  # [B, HW, C]
        with_mean = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)  # [B, 1+HW, C]
        pos = resized_positional_embedding(pool.positional_embedding, x.shape[-2:]).to(x.dtype)
        out = {}
        if "global" in kinds:
            out["global"] = attention_pool(pool, with_mean + pos)
        if "global_nopos" in kinds:
            out["global_nopos"] = attention_pool(pool, with_mean)
        if "dense" in kinds:
            out["dense"] = pool.c_proj(pool.v_proj(with_mean + pos))
        if "dense_nopos" in kinds:
            out["dense_nopos"] = pool.c_proj(pool.v_proj(tokens))
        return out

    def _vit_features(self, pixels, kinds):
        visual = self.model.visual
        previous = visual.output_tokens
        visual.output_tokens = True
        try:
            pooled, tokens = visual(pixels)  # tokens: ln_post'd patch tokens, not projected
        finally:
            visual.output_tokens = previous
        local = tokens @ visual.proj if visual.proj is not None else tokens
        out = {"global": pooled, "global_nopos": pooled, "dense_nopos": local}
        out["dense"] = torch.cat([pooled[:, None], local], dim=1)
        return {k: out[k] for k in kinds}

    # ----- text side ------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(list(texts)).to(self.device)

    def token_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        """[N, L] token ids -> [N, L, width] input embeddings (where CoOp splices its context)."""
        return self.model.token_embedding(ids.to(self.device))

    def encode_embedded(self, embeds: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The text tower on given input embeddings; the sentence feature at each EOT (= argmax id).

        This is open_clip ``CLIP.encode_text`` with the embedding lookup taken out, so learnable
        context vectors can replace rows of ``embeds`` (CoOp, methods.md sec. 0). [N, D], unnormalised.
        """
        eot = ids.to(embeds.device).argmax(-1)
        hidden = self._text_hidden(embeds, int(eot.max()) + 1)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), eot]
        return self._project_text(pooled)

    def encode_text(self, texts_or_ids) -> torch.Tensor:
        """[N, D] unnormalised sentence features of plain prompts."""
        ids = texts_or_ids if isinstance(texts_or_ids, torch.Tensor) else self.tokenize(texts_or_ids)
        with torch.no_grad(), self.autocast():
            return self.encode_embedded(self.token_embedding(ids), ids).float()

    def encode_text_tokens(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Texts as images (TaI-DPT): the EOT feature [N, D] and every token's feature [N, L, D].

        Every position goes through ln_final and the text projection, SOT and EOT included
        (TaI-DPT ``Caption_distill_double.py``); padding positions are for the caller to mask.
        """
        ids = ids.to(self.device)
        with torch.no_grad(), self.autocast():
            hidden = self._text_hidden(self.token_embedding(ids), ids.shape[1])
            tokens = self._project_text(hidden)
        eot = tokens[torch.arange(ids.shape[0], device=ids.device), ids.argmax(-1)]
        return eot.float(), tokens.float()

    def _text_hidden(self, embeds: torch.Tensor, length: int) -> torch.Tensor:
        """The text transformer on the first ``length`` positions: with causal attention, positions
        before the last EOT never see the padding after it, so cutting there changes nothing and
        saves most of the work for short prompts (77 -> ~20 tokens)."""
        model = self.model
        cast = model.transformer.get_cast_dtype()
        x = embeds[:, :length].to(cast) + model.positional_embedding[:length].to(cast)
        mask = model.attn_mask[:length, :length] if model.attn_mask is not None else None
        x = model.transformer(x, attn_mask=mask)
        return model.ln_final(x)

    def _project_text(self, x: torch.Tensor) -> torch.Tensor:
        proj = self.model.text_projection
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp())


def resized_positional_embedding(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The attention pool's [1+S*S, C] positional embedding resized bicubically to [1+h*w, C].

    DualCoOp ``clip/model.py`` ``AttentionConv``: the first row (mean token) is kept, the spatial
    rows are interpolated when the input resolution differs from pretraining.
    """
    h, w = int(grid[0]), int(grid[1])
    if pos.shape[0] == h * w + 1:
        return pos
    side = int(round((pos.shape[0] - 1) ** 0.5))
    spatial = pos[1:].T.reshape(1, -1, side, side)
    spatial = F.interpolate(spatial.float(), size=(h, w), mode="bicubic", align_corners=False)
    return torch.cat([pos[:1], spatial.reshape(-1, h * w).T.to(pos.dtype)], dim=0)


def attention_pool(pool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """open_clip ``AttentionPool2d.forward`` on prepared tokens [B, 1+HW, C]: the mean token's output.

    Written out because open_clip's forward adds its fixed-size positional embedding itself; here
    the caller decides (resized, or none for TaI-DPT).
    """
    x = x.permute(1, 0, 2)  # (1+HW) B C
    out, _ = F.multi_head_attention_forward(
        query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1], num_heads=pool.num_heads,
        q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None, in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight, out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True, training=False, need_weights=False)
    return out[0]

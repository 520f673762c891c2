"""A stand-in for a CLIP backbone with a real architecture's output shapes, for measuring the harness alone.

``backbone.model="standin:RN50"`` (or ``standin:RN101``, ``standin:ViT-B-16``; ``backbone.image_size`` as
for the real model, e.g. 448 for DualCoOp's RN101) gives image features of the real shapes -- global
[B, D] and dense [B, 1 + HW, D] with D and the grid of that architecture at that resolution -- from a
cheap fixed function of the pixels (each grid cell's mean colour through a fixed random projection, plus
a fixed random positional term), so extraction runs at the speed of reading and resizing images and the
feature cache, training sets, evaluation and report are exercised at full size without the encoder's cost
(``benchmarks/bench_scale.py``). The text tower is a real CLIP text transformer, one layer of width 64,
projecting to D: prompts, context vectors and caption features have the real code paths and embedding
size, at a small cost per prompt. The real encoders' costs per image and per prompt are measured apart
(``benchmarks/bench_features.py --model``, ``bench run --dry-run --calibrate``).

NOT CLIP: no pretrained weights, so every number it gives means nothing. Records name the backbone
``standin:<arch>`` and the report marks them (``bench.report.model.is_standin``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.features.backbone import IMAGE_FEATURE_KINDS, Backbone
from bench.features.spec import BackboneError, BackboneSpec

PREFIX = "standin:"
ARCHITECTURES = {  # embedding size, image side per grid cell, default input side (open_clip's configs)
    "RN50": {"embed_dim": 1024, "stride": 32, "image_size": 224},
    "RN101": {"embed_dim": 512, "stride": 32, "image_size": 224},
    "ViT-B-16": {"embed_dim": 512, "stride": 16, "image_size": 224},
}
TEXT_CFG = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}


def is_standin(model_name: str) -> bool:
    return str(model_name).startswith(PREFIX)


def load_standin(spec: BackboneSpec, device: str | torch.device = "cpu", amp: str | None = None) -> StandinBackbone:
    """The stand-in of ``spec.model`` (``standin:<arch>``) at ``spec.image_size`` (default: the architecture's)."""
    import open_clip
    from open_clip.model import CLIP

    arch = spec.model[len(PREFIX):]
    if arch not in ARCHITECTURES:
        raise BackboneError(f"unknown stand-in architecture {arch!r} in backbone.model={spec.model!r}; valid: "
                            + ", ".join(PREFIX + name for name in ARCHITECTURES))
    if spec.pretrained:
        raise BackboneError(f"backbone.model={spec.model!r} is a stand-in with fixed random weights; drop "
                            f"backbone.pretrained={spec.pretrained!r}")
    shape = ARCHITECTURES[arch]
    size = int(spec.image_size or shape["image_size"])
    if size % shape["stride"]:
        raise BackboneError(f"backbone.image_size={size} is not a multiple of {arch}'s stride {shape['stride']}")
    torch.manual_seed(0)  # fixed weights: the same features in every process (the cache keys on their hash)
    vision = {"image_size": size, "layers": [1, 1, 1, 1], "width": 8, "head_width": 32}  # built, never run
    model = CLIP(embed_dim=shape["embed_dim"], vision_cfg=vision, text_cfg=TEXT_CFG)
    preprocess = open_clip.image_transform(size, is_train=False, resize_mode=spec.resize_mode or "shortest",
                                           interpolation=spec.interpolation or "bicubic")
    model.to(device)
    backbone = StandinBackbone(model, open_clip.get_tokenizer("RN50"), preprocess, spec, device=device, amp=amp)
    backbone.stride = shape["stride"]
    return backbone


class StandinBackbone(Backbone):
    """:class:`Backbone` whose image features come from each grid cell's mean colour (see the module docstring)."""

    stride = 32

    def __init__(self, model, tokenizer, preprocess, spec, device="cpu", amp=None):
        super().__init__(model, tokenizer, preprocess, spec, device=device, amp=amp)
        dim = self.embed_dim
        generator = torch.Generator().manual_seed(1)
        # buffers of the model, so the weights hash (the feature cache's key) covers them
        model.register_buffer("standin_colour", torch.randn(3, dim, generator=generator).to(self.device))
        model.register_buffer("standin_position", 0.1 * torch.randn(64 * 64, dim, generator=generator).to(self.device))

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor, kinds=("global",)) -> dict[str, torch.Tensor]:
        unknown = set(kinds) - set(IMAGE_FEATURE_KINDS)
        if unknown:
            raise ValueError(f"unknown image feature kind(s) {sorted(unknown)}; valid: {IMAGE_FEATURE_KINDS}")
        pixels = pixels.to(self.device, non_blocking=True).float()
        grid = (pixels.shape[-2] // self.stride, pixels.shape[-1] // self.stride)
        cells = F.adaptive_avg_pool2d(pixels, grid).flatten(2).transpose(1, 2)  # [B, HW, 3]
        tokens = cells @ self.model.standin_colour  # [B, HW, D]: dense_nopos
        placed = tokens + self.model.standin_position[:tokens.shape[1]]
        mean = placed.mean(dim=1, keepdim=True)
        out = {"global": mean[:, 0], "global_nopos": tokens.mean(dim=1), "dense_nopos": tokens,
               "dense": torch.cat([mean, placed], dim=1)}
        return {k: out[k] for k in kinds}

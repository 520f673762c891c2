"""Methods that adapt the image tower (CLIP-LoRA on a ViT): pixels instead of cached features.

A method with ``online_images`` true (set by its ``build``, with an ``online_reason``) changes the
image features as it trains, so cached features would be wrong: the runner feeds it augmented images
every training step (the ``online`` protocol, whatever ``features.mode`` says) and encodes the test
images after training, both through the method's own ``encode_pixels(pixels) -> {role: [B, D]}``
(with gradients in training). Every other method keeps the config's protocol; in the ``online``
protocol its images go through the frozen backbone without gradients.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from bench.cache import ImageRows
from bench.method import Method, as_scores


def wants_pixels(method: Method) -> bool:
    """Whether the method encodes images itself (it trains the image tower)."""
    return bool(getattr(method, "online_images", False))


def image_mode(method: Method, feats_cfg: dict) -> str:
    """The training images' protocol: "online" for a method that trains the image tower, else the config's."""
    return "online" if wants_pixels(method) else feats_cfg.get("mode", "cached")


def image_protocol(method: Method, feats_cfg: dict) -> dict:
    """The record's ``image_protocol``: mode and views, and why when the method forced ``online``."""
    if wants_pixels(method):
        return {"mode": "online", "views": 1, "config_mode": feats_cfg.get("mode", "cached"),
                "reason": getattr(method, "online_reason", "the method trains the image tower")}
    return {"mode": feats_cfg.get("mode", "cached"), "views": feats_cfg.get("views", 1)}


def encode_pixels(method: Method, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    """A training batch's image features by role: the method's own encoder (with gradients) when it has
    ``online_images``, else the frozen backbone's feature kinds (no gradients)."""
    if wants_pixels(method):
        return method.encode_pixels(pixels)
    kinds = method.image_features
    encoded = method.backbone.encode_images(pixels, tuple(set(kinds.values())))
    return {role: encoded[kind] for role, kind in kinds.items()}


@torch.no_grad()
def predict_pixels(method: Method, paths: list[str], batch_size: int = 256,
                   num_workers: int = 0) -> dict[str, np.ndarray]:
    """Every named score matrix of the method over test images, encoded now by ``method.encode_pixels``
    with the backbone's test transform (the cached-feature counterpart is ``bench.runner.predict``)."""
    rows = ImageRows(paths, np.arange(len(paths)), len(paths), method.backbone.preprocess, None)
    loader = DataLoader(rows, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    method.eval()
    out: dict[str, list[np.ndarray]] = {}
    for pixels in loader:
        feats = dict(method.encode_pixels(pixels), modality="image")
        with method.backbone.autocast():
            scores = as_scores(method.logits(feats))
        for name, s in scores.items():
            out.setdefault(name, []).append(s.float().cpu().numpy())
    method.train()
    return {name: np.concatenate(parts) for name, parts in out.items()}

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

from bench.features.augment import ImageRows
from bench.method import Method


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
    mode, views = feats_cfg.get("mode", "cached"), feats_cfg.get("views", 1)
    used = mode == "online" or views > 1  # one plain cached view is not augmented
    return {"mode": mode, "views": views, "augment": feats_cfg.get("augment") if used else None}


def encode_pixels(method: Method, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    """A training batch's image features by role: the method's own encoder (with gradients) when it has
    ``online_images``, else the frozen backbone's feature kinds (no gradients)."""
    if wants_pixels(method):
        return method.encode_pixels(pixels)
    kinds = method.image_features
    encoded = method.backbone.encode_images(pixels, tuple(set(kinds.values())))
    return {role: encoded[kind] for role, kind in kinds.items()}


@torch.no_grad()
def encode_test_images(method: Method, paths: list[str], batch_size: int = 256,
                       num_workers: int = 0, where: str = "") -> dict[str, np.ndarray]:
    """Features by role of test images, encoded now by ``method.encode_pixels`` with the backbone's test
    transform: what ``bench.cell.runner.predict`` then scores in place of cached test features. ``where`` (the
    split) is named in the error for a missing or corrupt image."""
    rows = ImageRows(paths, np.arange(len(paths)), len(paths), method.backbone.preprocess, None, where=where)
    loader = DataLoader(rows, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    method.eval()
    out: dict[str, list[np.ndarray]] = {}
    for pixels in loader:
        for role, feats in method.encode_pixels(pixels).items():
            out.setdefault(role, []).append(feats.float().cpu().numpy())
    method.train()
    return {role: np.concatenate(parts) for role, parts in out.items()}

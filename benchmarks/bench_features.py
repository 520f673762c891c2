"""Cached features vs re-encoding, measured side by side in one run with the same model.

    python benchmarks/bench_features.py [--images 512] [--threads 2] [--device cpu]
    python benchmarks/bench_features.py --model RN50 --images 128            # a real architecture, random weights
    python benchmarks/bench_features.py --model RN101 --image-size 448 --images 64
    python benchmarks/bench_features.py --model ViT-B-16 --pretrained /path/ViT-B-16.pt

Prints:
  1. time per training epoch of CoOp (prompt learning: the text tower runs every step) reading cached
     features vs re-encoding every image (decode + augment + image tower) each step, and the ratio;
  2. zero-shot CLIP evaluation throughput (images/s) over cached features, and with a cold cache
     (extraction included), against the image encoder's raw forward throughput (pre-made tensors,
     no decoding): the ratios say how close evaluation runs to the encoder's own speed.
The model is the toy world's tiny CLIP (bench/toy/model), with its shipped weights when present, or
``--model``: any open_clip architecture (``--image-size`` for another input resolution, ``--pretrained``
for a checkpoint; random weights by default, offline: the times do not depend on the weights). The
images are the toy world's when generated, else synthetic images in the COCO layout. Timings are
wall clock on whatever machine runs it; only the ratios are meant to be compared across machines.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

CLASSES = ["ball", "box", "star", "tree", "house", "car", "fish", "flower"]  # also bench_memory.py's


def load_model(device: str, model: str | None = None, image_size: int | None = None, pretrained: str | None = None):
    """The toy CLIP as the toy dataset config declares it (configs/_base_/datasets/toy.py), with random
    weights when the shipped checkpoint is absent; or the open_clip architecture ``model`` (random weights
    unless ``pretrained``), at ``image_size`` when given."""
    from bench.config import CONFIG_DIR, load_config, to_plain
    from bench.features.backbone import load_backbone
    from bench.features.spec import resolve_path, resolve_spec

    if model is not None:
        return load_backbone(resolve_spec({"model": model, "pretrained": pretrained, "image_size": image_size}),
                             device=device)
    spec = to_plain(load_config(str(CONFIG_DIR / "_base_" / "datasets" / "toy.py")).backbone)
    if not Path(resolve_path(spec["pretrained"])).is_file():
        spec["pretrained"] = None
    if image_size:
        spec["image_size"] = image_size
    return load_backbone(resolve_spec(spec), device=device)


def image_paths(n: int, folder: Path) -> list[str]:
    """n images: the toy world's train split when it is on disk (data/toy), else synthetic ones."""
    toy = Path("data/toy/train2014")
    if toy.is_dir() and len(list(toy.glob("*.png"))) >= n:
        return sorted(str(p) for p in toy.glob("*.png"))[:n]
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:06d}.png"
        Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def timed(fn) -> tuple[float, object]:
    """(seconds ``fn()`` took, what it returned)."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def coop_epoch(method, batches, optimizer) -> None:
    for feats, targets in batches():
        loss = method.loss(method.logits(feats), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", help="an open_clip architecture (RN50, RN101, ViT-B-16, ...; default: the toy CLIP)")
    parser.add_argument("--image-size", type=int, help="input resolution (default: the model's own)")
    parser.add_argument("--pretrained", help="open_clip tag or checkpoint file (default: random weights)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from PIL import Image
    from torch.utils.data import DataLoader

    from bench.features.augment import ImageRows, augmentation
    from bench.features.cache import FeatureCache
    from bench.methods.coop import CoOp
    from bench.methods.zsclip import ZSCLIP

    backbone = load_model(args.device, args.model, args.image_size, args.pretrained)
    rng = np.random.default_rng(0)
    labels = torch.tensor(np.where(rng.random((args.images, len(CLASSES))) < 0.3, 1.0, -1.0), dtype=torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        paths = image_paths(args.images, Path(tmp) / "images")
        cache = FeatureCache(Path(tmp) / "cache", progress=False)

        # --- zero-shot evaluation vs the raw encoder ---
        raw_batch = min(64, args.images)
        pixels = torch.stack([backbone.preprocess(Image.open(p).convert("RGB"))
                              for p in paths[:raw_batch]]).to(args.device)
        passes = max(1, args.images // raw_batch)
        raw_s, _ = timed(lambda: [backbone.encode_images(pixels, ("global",)) for _ in range(passes)])
        raw_ips = passes * raw_batch / raw_s
        cold_s, cold = timed(lambda: cache.image_features(backbone, paths, ["global"], batch_size=64))
        zs = ZSCLIP()
        zs.build(backbone, CLASSES)
        feats = cold["global"][0]
        warm_s, _ = timed(
            lambda: zs.logits({"global": torch.from_numpy(np.asarray(feats, np.float32)).to(args.device)}))

        # --- one CoOp epoch: cached features vs re-encoding ---
        torch.manual_seed(0)
        coop = CoOp()
        coop.build(backbone, CLASSES)
        coop.to(backbone.device)
        optimizer = torch.optim.SGD(coop.trainable_parameters(), lr=2e-3, momentum=0.9)
        order = torch.randperm(args.images)

        def cached_batches():
            for start in range(0, args.images, args.batch):
                picked = np.sort(order[start:start + args.batch].numpy())
                x = torch.from_numpy(np.asarray(feats[picked], np.float32)).to(args.device)
                yield {"global": x, "modality": "image"}, labels[picked].to(args.device)

        rows = ImageRows(paths, np.arange(len(paths)), len(paths), None, augmentation(backbone))
        loader = DataLoader(rows, batch_size=args.batch, sampler=order.tolist(), num_workers=0)

        def encoded_batches():
            for i, images in enumerate(loader):
                idx = order[i * args.batch:(i + 1) * args.batch]
                x = backbone.encode_images(images, ("global",))["global"]
                yield {"global": x, "modality": "image"}, labels[idx].to(args.device)

        coop_epoch(coop, lambda: [next(cached_batches())], optimizer)  # warm-up step (one-time allocations), untimed
        cached_epoch_s, _ = timed(lambda: coop_epoch(coop, cached_batches, optimizer))
        encoded_epoch_s, _ = timed(lambda: coop_epoch(coop, encoded_batches, optimizer))

    size = backbone.spec.image_size or backbone.model.visual.image_size
    print(f"model {backbone.spec.describe()} at {size} px, device {args.device}, torch threads "
          f"{torch.get_num_threads()}, {args.images} images "
          f"({'toy world' if paths[0].startswith('data/toy') else 'synthetic'}), batch {args.batch}")
    print("| measurement | value |\n|---|---|")
    print(f"| CoOp epoch, cached features | {cached_epoch_s:.2f} s |")
    print(f"| CoOp epoch, re-encoding images | {encoded_epoch_s:.2f} s |")
    print(f"| **speed-up of cached over re-encoding** | **{encoded_epoch_s / cached_epoch_s:.1f}x** |")
    print(f"| image encoder raw forward | {raw_ips:.0f} img/s |")
    print(f"| zero-shot eval, cold cache (decode + encode + store) | {args.images / cold_s:.0f} img/s "
          f"({args.images / cold_s / raw_ips:.2f}x raw) |")
    print(f"| zero-shot eval, warm cache (scores only) | {args.images / warm_s:.0f} img/s "
          f"({args.images / warm_s / raw_ips:.0f}x raw) |")


if __name__ == "__main__":
    main()

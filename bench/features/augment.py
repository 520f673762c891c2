"""Image transforms: the test transform of a backbone spec, and train-time augmentation.

The test transform is open_clip's eval transform at the spec's ``image_size``, ``resize_mode``
('shortest' = resize + centre crop, 'squash' = resize to a square) and ``interpolation``.
Train-time augmentation (``features.augment``) serves cached views and the ``online`` protocol.

The shared default is a random-resized crop + horizontal flip (scale (0.5, 1)). The options
reproduce the references' own train transforms:
  CoOp (Dassl ``transforms.py`` ``random_resized_crop`` + ``random_flip``, scale (0.08, 1), bicubic:
      ``configs/trainers/CoOp/rn50_ep50.yaml``): ``scale=(0.08, 1.0)``.
  DualCoOp (``dataloaders/coco_detection.py:56-63``, ``pascal_voc.py:42-49``): Resize((448, 448)) -- a
      squash, torchvision's default bilinear -- then ``CutoutPIL(cutout_factor=0.5)`` then RandAugment,
      no flip: ``crop="squash", cutout=0.5, randaugment=True, flip=False``. DualCoOp's RandAugment is the
      ``randaugment`` 1.0.2 package (``randaugment.py:460-493``: two of 15 PIL ops, each applied with
      probability 0.5 at a random magnitude 1..9); bench uses torchvision's ``RandAugment`` (two ops,
      magnitude 9, always applied) -- the same family, not the same draws. Recorded with the augment dict.
Random draws come from torch's generator, so seeded views are reproducible: :class:`ImageRows`, the dataset of
(view, image) rows that feature extraction and the online protocol read, seeds each row's draw.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from bench.data.base import DataError
from bench.errors import UsageError

CROPS = ("random_resized", "squash")


def preprocess_config(model, spec) -> dict:
    """The model's open_clip preprocessing config with the spec's size, resize mode and interpolation."""
    from open_clip.transform import PreprocessCfg

    base = dataclasses.asdict(PreprocessCfg())
    base.update(getattr(model.visual, "preprocess_cfg", {}) or {})
    for key, value in (("size", spec.image_size), ("resize_mode", spec.resize_mode),
                       ("interpolation", spec.interpolation)):
        if value:
            base[key] = value
    return base


def eval_transform(model, spec):
    """open_clip's eval transform at the spec's size / resize mode ('squash': no centre crop) / interpolation."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    cfg = preprocess_config(model, spec)
    if cfg["resize_mode"] not in ("shortest", "longest", "squash"):
        raise UsageError(f"backbone.resize_mode must be 'shortest', 'longest' or 'squash', got {cfg['resize_mode']!r}")
    if cfg["interpolation"] not in ("bicubic", "bilinear", "nearest"):
        raise UsageError(f"backbone.interpolation must be 'bicubic', 'bilinear' or 'nearest', "
                         f"got {cfg['interpolation']!r}")
    return image_transform_v2(PreprocessCfg(**cfg), is_train=False)


class CutoutPIL:
    """Paint one random-coloured square of side ``factor`` x the image side at a random centre
    (DualCoOp ``dataloaders/helper.py:8-30``: the box spans centre +- side // 2, clipped to the
    image; its colour is uniform in 0..255 per channel). The reference names the width ``h``; on the
    square images it gets after its Resize((448, 448)) that makes no difference."""

    def __init__(self, cutout_factor: float = 0.5):
        self.cutout_factor = float(cutout_factor)

    def __call__(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        cut_w, cut_h = int(self.cutout_factor * width + 0.5), int(self.cutout_factor * height + 0.5)
        x_c, y_c = int(torch.randint(width, ())), int(torch.randint(height, ()))
        x1, x2 = max(0, x_c - cut_w // 2), min(width, x_c + cut_w // 2)
        y1, y2 = max(0, y_c - cut_h // 2), min(height, y_c + cut_h // 2)
        fill = tuple(int(v) for v in torch.randint(0, 256, (3,)))
        image = image.copy()
        ImageDraw.Draw(image).rectangle([x1, y1, x2, y2], fill=fill)
        return image

    def __repr__(self) -> str:
        return f"CutoutPIL(cutout_factor={self.cutout_factor})"


def augmentation(backbone, scale: tuple | list = (0.5, 1.0), flip: bool = True, crop: str = "random_resized",
                 cutout: float | None = None, randaugment: bool = False):
    """The train transform for ``backbone`` (its input size, interpolation and normalisation).

    crop: "random_resized" (RandomResizedCrop with ``scale``) or "squash" (resize to a square, no crop).
    cutout: CutoutPIL's factor (None: none); randaugment: torchvision RandAugment after the cutout;
    flip: random horizontal flip. Every setting enters the feature-cache key (the augment dict).
    """
    from torchvision import transforms as T

    if crop not in CROPS:
        raise UsageError(f"features.augment.crop must be one of {CROPS}, got {crop!r}")
    cfg = preprocess_config(backbone.model, backbone.spec)
    size = cfg["size"][0] if isinstance(cfg["size"], (tuple, list)) else cfg["size"]
    interpolation = T.InterpolationMode(cfg["interpolation"])
    if crop == "squash":
        steps = [T.Resize((size, size), interpolation=interpolation)]
    else:
        steps = [T.RandomResizedCrop(size, scale=tuple(scale), interpolation=interpolation)]
    if cutout:
        steps.append(CutoutPIL(cutout))
    if randaugment:
        steps.append(T.RandAugment())
    if flip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(cfg["mean"], cfg["std"])]
    return T.Compose(steps)


class ImageRows(Dataset):
    """Row r of a [views x images] grid (view-major): the image, transformed for that view.

    Augmented views are random but reproducible: the RNG is seeded from (view, image index).
    ``where`` (e.g. ``coco2014/test``) names the split in the error for a missing or corrupt image.
    """

    def __init__(self, paths: list[str], rows: np.ndarray, n_images: int, transform, augment, where: str = ""):
        self.paths, self.rows, self.n_images = paths, rows, n_images
        self.transform, self.augment = transform, augment
        self.where = f" (in {where})" if where else ""

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        view, index = divmod(int(self.rows[i]), self.n_images)
        path = self.paths[index]
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except FileNotFoundError:
            raise DataError(f"missing image: {path}{self.where}") from None
        except Exception as exc:  # PIL raises several types for truncated/corrupt files
            if os.path.isfile(path) and os.path.getsize(path) == 0:
                raise DataError(f"empty image file (0 bytes): {path}{self.where}; replace it or drop it "
                                "from the annotations") from None
            raise DataError(f"corrupt image {path}{self.where}: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        if self.augment is None:
            return self.transform(image)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(view * 1_000_003 + index)
            return self.augment(image)

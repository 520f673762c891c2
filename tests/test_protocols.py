"""Each reference's own protocol, one variant away: per-variant backbone, test transform and train augmentation."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from bench.cli import main
from bench.config import load_config, method_config, method_features, method_protocol
from bench.features.augment import CutoutPIL, augmentation
from bench.features.backbone import load_backbone
from bench.features.spec import resolve_spec
from bench.methods.dualcoop import DualCoOp
from bench.methods.taidpt import TaIDPT


def test_reference_variants_in_the_shipped_configs():
    cfg = load_config("voc2007")
    assert method_protocol(cfg, "dualcoop") == "shared" and method_features(cfg, "dualcoop")["mode"] == "cached"
    assert method_protocol(cfg, "dualcoop_ref") == "reference"
    feats = method_features(cfg, "dualcoop_ref")
    assert feats["mode"] == "online"
    assert feats["augment"] == {"crop": "squash", "cutout": 0.5, "randaugment": True, "flip": False}
    kwargs, train, backbone = method_config(cfg, "dualcoop_ref", DualCoOp, "partial")
    assert backbone == {"model": "RN101", "image_size": 448, "resize_mode": "squash", "interpolation": "bilinear"}
    assert train["optimizer"]["lr"] == 1e-3 and kwargs["loss_w"] == 0.03  # VOC2007's DualCoOp values, inherited
    assert "features" not in kwargs and "protocol" not in kwargs
    coop = method_features(cfg, "coop_ref")
    assert coop["mode"] == "online"
    assert coop["augment"] == {"crop": "random_resized", "scale": [0.08, 1.0], "flip": True}
    assert method_protocol(load_config("coco"), "taidpt_ref") == "reference"
    assert method_config(load_config("coco"), "taidpt_ref", TaIDPT, "zero-shot")[0]["prompt_names"] == "coco"


def test_squash_bilinear_test_transform(tiny_rn_cfg, tmp_path):
    """DualCoOp's test transform: Resize((s, s)) bilinear, no centre crop (coco_detection.py:58-62)."""
    backbone = load_backbone(resolve_spec({**tiny_rn_cfg, "image_size": 96, "resize_mode": "squash",
                                           "interpolation": "bilinear"}))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 130, 3), dtype=np.uint8))
    expected = T.Compose([T.Resize((96, 96), interpolation=T.InterpolationMode.BILINEAR), T.ToTensor(),
                          T.Normalize((0.48145466, 0.4578275, 0.40821073),
                                      (0.26862954, 0.26130258, 0.27577711))])(image)
    assert torch.equal(backbone.preprocess(image), expected)
    # the shared default still crops: another tensor
    shared = load_backbone(resolve_spec({**tiny_rn_cfg, "image_size": 96}))
    assert shared.preprocess(image).shape == (3, 96, 96) and not torch.equal(shared.preprocess(image), expected)
    train = augmentation(backbone, crop="squash", cutout=0.5, randaugment=True, flip=False)
    names = [type(t).__name__ for t in train.transforms]
    assert names == ["Resize", "CutoutPIL", "RandAugment", "ToTensor", "Normalize"]
    assert train.transforms[0].size == (96, 96) and train.transforms[0].interpolation == T.InterpolationMode.BILINEAR
    with pytest.raises(ValueError, match="features.augment.crop must be one of"):
        augmentation(backbone, crop="centre")


def test_cutout_paints_one_square_of_half_the_side():
    image = Image.new("RGB", (100, 100), (0, 0, 0))
    torch.manual_seed(3)
    out = np.asarray(CutoutPIL(0.5)(image))
    torch.manual_seed(3)
    x_c, y_c = int(torch.randint(100, ())), int(torch.randint(100, ()))
    painted = np.argwhere(out.any(-1))
    # the box spans centre +- 25, clipped to the image, corners included (PIL rectangle)
    assert painted[:, 1].min() == max(0, x_c - 25) and painted[:, 1].max() == min(99, x_c + 25)
    assert painted[:, 0].min() == max(0, y_c - 25) and painted[:, 0].max() == min(99, y_c + 25)
    assert len({tuple(v) for v in out[out.any(-1)]}) == 1  # one colour
    assert not np.asarray(image).any()  # the input is not modified


def test_reference_variant_record_says_its_protocol(tmp_path, tiny_config, capsys):
    tiny_config.write_text(tiny_config.read_text() + (
        "dualcoop_tinyref = dict(type='dualcoop', protocol='reference', n_ctx_pos=2, n_ctx_neg=2,\n"
        "    backbone=dict(image_size=96, resize_mode='squash', interpolation='bilinear'),\n"
        "    features=dict(mode='online', augment=dict(crop='squash', cutout=0.5, randaugment=True, flip=False)),\n"
        "    train=dict(epochs=1, batch_size=4, warmup_epochs=0))\n"
        "dualcoop = dict(n_ctx_pos=2, n_ctx_neg=2, train=dict(epochs=1, batch_size=4, warmup_epochs=0))\n"))
    work = tmp_path / "w"
    assert main(["run", "--methods", "dualcoop_tinyref,dualcoop", "--dataset", str(tiny_config), "--settings",
                 "partial", "--work-dir", str(work), "--quiet"]) == 0
    ref = json.loads(next(work.glob("**/records/**/dualcoop_tinyref__*.json")).read_text())
    shared = json.loads(next(work.glob("**/records/**/dualcoop__*.json")).read_text())
    assert ref["protocol"] == "reference" and shared["protocol"] == "shared"
    assert ref["config"]["protocol"] == "reference" and "protocol" not in shared["config"]
    assert ref["image_protocol"] == {"mode": "online", "views": 1, "augment": {
        "crop": "squash", "cutout": 0.5, "randaugment": True, "flip": False}}
    assert shared["image_protocol"]["mode"] == "cached"
    spec = ref["backbone"]["spec"]
    assert (spec["image_size"], spec["resize_mode"], spec["interpolation"]) == (96, "squash", "bilinear")
    assert shared["backbone"]["spec"]["image_size"] is None
    capsys.readouterr()
    assert main(["report", "--work-dir", str(work), "--out", str(tmp_path / "rep"), "--format", "md",
                 "--n-boot", "0"]) == 0
    table = (tmp_path / "rep" / "results.md").read_text()
    assert "reference, online K=1" in table and "cached K=1" in table

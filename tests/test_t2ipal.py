"""T2I-PAL: heatmaps, prototypes, adapters, trainable parameters, and an end-to-end run with generation."""

import json

import numpy as np
import torch
import torch.nn.functional as F

from methods.t2ipal import T2IPAL

CLASSES = ["red", "green", "blue", "yellow"]


def _feats(b=3, p=5, d=32, seed=0, modality="image"):
    g = torch.Generator().manual_seed(seed)
    feats = {"global": torch.randn(b, d, generator=g), "dense": torch.randn(b, p, d, generator=g), "modality": modality}
    if modality == "text":
        valid = [p, p - 2, 2]  # tokens per caption; the rest is padding
        feats["dense_mask"] = torch.tensor([[j < n for j in range(p)] for n in valid])
    return feats


def _method(tiny_rn, **kw):
    torch.manual_seed(0)
    method = T2IPAL(**kw)
    method.build(tiny_rn, CLASSES)
    return method


def test_heatmaps_shape_and_normalisation(tiny_rn):
    method = _method(tiny_rn)
    out, heat, dense = method.branches(_feats())
    assert heat.shape == (3, 5, 4) and dense.shape == (3, 5, 32)
    torch.testing.assert_close(heat.sum(dim=1), torch.ones(3, 4))
    # text features: padding positions get no weight
    out, heat, _ = method.branches(_feats(modality="text"))
    assert heat[1, 3:].abs().max() < 1e-30 and heat[2, 2:].abs().max() < 1e-30
    torch.testing.assert_close(heat.sum(dim=1), torch.ones(3, 4))
    # the ablation: uniform pooling over (valid) positions
    flat = _method(tiny_rn, heatmap=False)
    _, heat, _ = flat.branches(_feats(modality="text"))
    torch.testing.assert_close(heat[2, :2], torch.full((2, 4), 0.5))
    torch.testing.assert_close(heat[0], torch.full((5, 4), 0.2))


def test_prototype_branch_against_direct_computation(tiny_rn):
    method = _method(tiny_rn, adapter=None)
    feats = _feats()
    out = method.logits(feats)
    with torch.no_grad():
        _, text_local = method.text_features()
        for b in range(3):
            for c in range(4):
                x = F.normalize(feats["dense"][b], dim=-1)  # [P, D]
                cos = x @ text_local[c]
                h = torch.softmax(40.0 * cos, dim=0)
                region = F.normalize((h[:, None] * x).sum(0), dim=0)
                expected = 4.0 * region @ F.normalize(method.class_prototypes[c], dim=0)
                torch.testing.assert_close(out["prototype"][b, c], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["score"], 0.5 * out["global"] + 0.5 * out["local"] + 0.5 * out["prototype"])
    # prototypes start at the frozen text features of "a photo of a {c}."
    init = F.normalize(tiny_rn.encode_text([f"a photo of a {c}." for c in CLASSES]), dim=-1)
    torch.testing.assert_close(method.class_prototypes.detach(), init)


def test_trainable_parameters_are_exactly_prompts_adapter_prototypes(tiny_rn):
    names = {n for n, p in _method(tiny_rn).named_parameters() if p.requires_grad}
    assert names == {"global_prompts.ctx", "local_prompts.ctx", "image_adapter.mlp.0.weight",
                     "image_adapter.mlp.2.weight", "class_prototypes"}
    lora = _method(tiny_rn, adapter="lora", lora_rank=2, prototypes=False)
    names = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert names == {"global_prompts.ctx", "local_prompts.ctx", "image_adapter.identity.lora_A.default.weight",
                     "image_adapter.identity.lora_B.default.weight"}
    x = torch.randn(2, 32)
    torch.testing.assert_close(lora.image_adapter(x), x)  # LoRA starts at the identity (B = 0)
    mlp = _method(tiny_rn)
    expected = 0.2 * torch.relu(torch.relu(x @ mlp.image_adapter.mlp[0].weight.T) @ mlp.image_adapter.mlp[2].weight.T)
    torch.testing.assert_close(mlp.image_adapter(x), expected + 0.8 * x)


def test_adapter_touches_images_not_captions(tiny_rn):
    method = _method(tiny_rn)
    with torch.no_grad():
        method.image_adapter.mlp[2].weight.mul_(50)  # make the adapter matter
    text = _feats(modality="text")
    reference = _method(tiny_rn, adapter=None)
    torch.testing.assert_close(method.logits(text)["global"], reference.logits(text)["global"])
    image = _feats()
    assert not torch.allclose(method.logits(image)["global"], reference.logits(image)["global"])


def test_training_lowers_the_loss(tiny_rn):
    method = _method(tiny_rn)
    feats = _feats(b=8, seed=3)
    feats["text"] = _feats(seed=4, modality="text")
    feats["text"] = {k: (v.repeat(3, *[1] * (v.dim() - 1))[:8] if torch.is_tensor(v) else v)
                     for k, v in feats["text"].items()}
    targets = torch.tensor(np.where(np.random.default_rng(0).random((8, 4)) < 0.4, 1.0, -1.0), dtype=torch.float32)
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = method.loss(method.logits(feats), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in tiny_rn.model.parameters())


def test_end_to_end_with_generation_and_a_variant(tmp_path, tiny_config, tiny_coco, monkeypatch):
    from bench.backbone import Backbone
    from bench.cli import main
    from bench.data.coco import COCO2014

    encoded = []
    original = Backbone.encode_images

    def counting(self, pixels, kinds=("global",)):
        encoded.append(len(pixels))
        return original(self, pixels, kinds)

    monkeypatch.setattr(Backbone, "encode_images", counting)

    synonyms = tmp_path / "colours.json"
    synonyms.write_text(json.dumps({"classes": [{"name": c, "synonyms": [c]} for c in CLASSES]}))
    work = tmp_path / "w"
    common = ["t2ipal.train.epochs=1", "t2ipal.train.batch_size=64", "t2ipal.template_captions=False",
              "t2ipal.generator.size=64", f"dataset.synonyms={synonyms}",
              "t2ipal_flat.type=t2ipal", "t2ipal_flat.heatmap=False", "t2ipal_flat.images_per_caption=2"]
    assert main(["run", "--methods", "t2ipal,t2ipal_flat", "--dataset", str(tiny_config), "--work-dir", str(work),
                 "--quiet", "--cfg-options", *common]) == 0
    records = {p.stem: json.loads(p.read_text()) for p in work.glob("**/records/**/*.json")
               if not p.name.startswith("diagnostics__")}  # cell records only
    full, flat = records["t2ipal__zero-shot__s1"], records["t2ipal_flat__zero-shot__s1"]
    assert full["status"] == flat["status"] == "ok" and np.isfinite(full["mAP"])
    assert full["train_data"]["n_generated"] == 12 and flat["train_data"]["n_generated"] == 24
    assert full["train_data"]["n_newly_generated"] == 12 and flat["train_data"]["n_newly_generated"] == 12  # reused 12
    assert full["train_data"]["generator"]["generator"] == "toy"
    assert flat["config"]["method"]["type"] == "t2ipal" and flat["method_hparams"]["heatmap"] is False
    assert set(full["branches"]) == {"global", "local", "prototype", "score"}
    assert full["method_hparams"]["logit_scale"] == 4.0  # TaI-DPT's arguments are recorded too
    assert len(list((work / "cache" / "generated" / "images").glob("*/*.png"))) == 24
    # one encoder pass per image for the whole run: the test images once (every kind the methods and the
    # diagnostics read), the x1 set once, only the 12 new images of the x2 set (which contains it), and
    # the train images once (the diagnostics' real-vs-real reference)
    data = COCO2014(str(tiny_coco[0]))
    assert sum(encoded) == len(data.load("test")) + 12 + 12 + len(data.load("train"))
    timings = json.loads((work / "tiny" / "timings.json").read_text())
    assert {"dataset", "cells", "fusion", "diagnostics", "summary"} <= set(timings)
    assert timings["total_after_imports"] >= timings["cells"] + timings["diagnostics"]

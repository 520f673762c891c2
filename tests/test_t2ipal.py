"""T2I-PAL: heatmaps, prototypes, adapters, trainable parameters, and an end-to-end run with generation."""

import json

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score

from bench.methods.t2ipal import T2IPAL

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
    from bench.cli import main
    from bench.data.coco import COCO2014
    from bench.features.backbone import Backbone

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
                 "--settings", "zero-shot", "--quiet", "--cfg-options", *common]) == 0
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


def _hand_ranking(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """TaI-DPT's ranking loss by loops: per row, the sum over (positive i, negative j) of max(0, 1 - s_i + s_j);
    the mean over rows."""
    rows = []
    for s, t in zip(scores, targets):
        pos, neg = [i for i in range(len(t)) if t[i] > 0], [j for j in range(len(t)) if t[j] < 0]
        rows.append(sum((torch.clamp(1 - s[i] + s[j], min=0) for i in pos for j in neg), torch.tensor(0.0)))
    return torch.stack(rows).mean()


def _mixed_batch():
    """4 rows: two generated images with their captions, a caption alone (zero image), a real image with
    partial labels (no caption: zero caption features with one valid token)."""
    feats = _feats(b=4, p=5, seed=11)
    feats["global"][2], feats["dense"][2] = 0.0, 0.0
    text = _feats(b=4, p=6, seed=12, modality="text")
    g = torch.Generator().manual_seed(13)
    text = {"global": torch.randn(4, 32, generator=g), "dense": torch.randn(4, 6, 32, generator=g),
            "dense_mask": torch.tensor([[True] * 6, [True] * 4 + [False] * 2, [True] * 3 + [False] * 3,
                                        [True] + [False] * 5]), "modality": "text"}
    text["global"][3], text["dense"][3] = 0.0, 0.0
    feats.update(text=text, image_rows=torch.tensor([True, True, False, True]),
                 text_rows=torch.tensor([True, True, True, False]))
    targets = torch.tensor([[1, -1, -1, 1], [-1, 1, -1, -1], [1, -1, 1, -1], [1, 0, -1, 0]], dtype=torch.float32)
    return feats, targets


def test_loss_with_labelled_real_images_caption_rows_and_unknown_labels(tiny_rn):
    method = _method(tiny_rn)
    feats, targets = _mixed_batch()
    out = method.logits(feats)
    loss = method.loss(out, targets)
    image, text = [0, 1, 3], [0, 1, 2]  # rows with an image / with a caption
    expected = sum(_hand_ranking(out[b][image], targets[image]) for b in ("global", "local", "prototype"))
    expected = expected + sum(_hand_ranking(out["text"][b][text], targets[text]) for b in ("global", "local"))
    torch.testing.assert_close(loss, expected)
    # the real image's unknown classes (1 and 3) are in no pair: its term is hinge(s_0 - s_2) alone
    row = out["global"][3]
    torch.testing.assert_close(_hand_ranking(out["global"][[3]], targets[[3]]), torch.clamp(1 - row[0] + row[2], min=0))
    # real images alone train the same prompts, adapter and prototypes; the caption terms are then empty
    real_only = dict(feats, image_rows=torch.tensor([True] * 4), text_rows=torch.tensor([False] * 4))
    real_only["global"], real_only["dense"] = _feats(b=4, p=5, seed=14)["global"], _feats(b=4, p=5, seed=14)["dense"]
    method.loss(method.logits(real_only), targets).backward()
    grads = {n: p.grad for n, p in method.named_parameters() if p.requires_grad}
    assert set(grads) == {"global_prompts.ctx", "local_prompts.ctx", "image_adapter.mlp.0.weight",
                          "image_adapter.mlp.2.weight", "class_prototypes"}
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads.values())
    assert all(p.grad is None for p in tiny_rn.model.parameters())


def test_flat_heatmap_on_a_blank_caption_row_keeps_gradients_finite(tiny_rn):
    method = _method(tiny_rn, heatmap=False)
    feats, targets = _mixed_batch()
    method.loss(method.logits(feats), targets).backward()
    assert all(torch.isfinite(p.grad).all() for p in method.parameters() if p.requires_grad)


def test_image_parts_are_dropped_when_no_image_trains(tiny_rn):
    method = _method(tiny_rn)
    method.drop_image_parts()
    assert {n for n, p in method.named_parameters() if p.requires_grad} == {"global_prompts.ctx", "local_prompts.ctx"}
    feats = _feats()
    out = method.logits(feats)
    assert "prototype" not in out
    torch.testing.assert_close(out["score"], 0.5 * out["global"] + 0.5 * out["local"])
    reference = _method(tiny_rn, adapter=None, prototypes=False)
    torch.testing.assert_close(out["global"], reference.logits(feats)["global"])  # no adapter either
    assert method.hparams()["adapter"] is None and method.hparams()["prototypes"] is False


def test_which_captions_are_rendered(tiny_rn):
    method = _method(tiny_rn)
    captions, _ = method.extra_captions(CLASSES)
    captions = captions + ["a red ball next to a green one"]  # a corpus caption
    mask = method.rendered_mask(captions, CLASSES)
    rendered = {c for c, m in zip(captions, mask) if m}
    assert {"a photo of a red.", "a blurry photo of the blue.", "itap of my green.",
            "a red ball next to a green one"} <= rendered
    refused = {"a sketch of a red.", "a tattoo of the blue.", "the origami green.", "a yellow in a video game."}
    assert not refused & rendered
    # per class: 9 copies of the default prompt + 46 of the 80 ImageNet templates (34 are not photographs)
    assert int(mask[:-1].sum()) == len(CLASSES) * (9 + 46)
    assert _method(tiny_rn, render_templates="all").rendered_mask(captions, CLASSES).all()
    assert not _method(tiny_rn, use_generated=False).rendered_mask(captions, CLASSES).any()


def test_branch_weights_are_chosen_on_validation_scores(tiny_rn):
    from bench.cell.validation import choose

    method = _method(tiny_rn)
    rng = np.random.default_rng(0)
    labels = np.where(rng.random((60, 4)) < 0.3, 1, -1)
    labels[0] = 1
    branches = {"global": rng.random((60, 4)), "local": 0.3 * labels + rng.random((60, 4)),
                "prototype": rng.random((60, 4))}
    grid = method.tuning_grid()
    assert grid[0] == {"gl_merge_rate": 0.5, "proto_weight": 0.5} and len(grid) == 5 * 4
    entry = choose(method, branches, labels, CLASSES)
    # the grid's validation mAPs against scikit-learn, and the choice is their argmax
    for r in entry["grid"]:
        fused = r["gl_merge_rate"] * branches["global"] + (1 - r["gl_merge_rate"]) * branches["local"] \
            + r["proto_weight"] * branches["prototype"]
        expected = 100 * np.mean([average_precision_score(labels[:, c] == 1, fused[:, c]) for c in range(4)])
        assert abs(r["mAP"] - expected) < 1e-6
    best = max(entry["grid"], key=lambda r: r["mAP"])  # the first of equal maxima, as choose()
    assert entry["chosen"] == {k: best[k] for k in ("gl_merge_rate", "proto_weight")}
    assert entry["chosen"]["gl_merge_rate"] < 0.5 and entry["mAP"] > entry["grid"][0]["mAP"]  # noise global: less of it
    out = method.logits(_feats())
    chosen = entry["chosen"]
    rate, weight = chosen["gl_merge_rate"], chosen["proto_weight"]
    expected = rate * out["global"] + (1 - rate) * out["local"] + weight * out["prototype"]
    torch.testing.assert_close(out["score"], expected)
    assert method.hparams()["gl_merge_rate"] == 0.5  # the configured values stay in the record's hparams
    assert _method(tiny_rn, tune_weights=False).tuning_grid() == []
    assert {g["proto_weight"] for g in _method(tiny_rn, prototypes=False).tuning_grid()} == {0.0}


def test_near_duplicates_of_test_images_are_removed_before_training(tmp_path, tiny_config):
    from bench.cli import main

    synonyms = tmp_path / "colours.json"
    synonyms.write_text(json.dumps({"classes": [{"name": c, "synonyms": [c]} for c in CLASSES]}))
    work = tmp_path / "w"
    common = ["t2ipal.train.epochs=1", "t2ipal.template_captions=False", "t2ipal.generator.size=64",
              f"dataset.synonyms={synonyms}", "keepall.type=t2ipal", "keepall.exclude_near_duplicates=1.5",
              "dropall.type=t2ipal", "dropall.exclude_near_duplicates=-1.0"]  # cosine >= -1: every image goes
    assert main(["run", "--methods", "keepall,dropall", "--dataset", str(tiny_config), "--work-dir", str(work),
                 "--settings", "zero-shot", "--quiet", "--cfg-options", *common]) == 0
    records = {p.stem: json.loads(p.read_text()) for p in work.glob("**/records/**/*__zero-shot__s1.json")}
    keep, drop = records["keepall__zero-shot__s1"]["train_data"], records["dropall__zero-shot__s1"]["train_data"]
    assert keep["near_duplicates_removed"]["n_removed"] == 0 and keep["n_generated"] == 12
    assert drop["near_duplicates_removed"] == {"threshold": -1.0, "n_removed": 12, "n_test_images_matched":
                                               drop["near_duplicates_removed"]["n_test_images_matched"]}
    # nothing left to render from: captions only, and the parts only images would train are gone
    assert drop["image_parts"].startswith("dropped") and records["dropall__zero-shot__s1"]["n_trainable_params"] \
        < records["keepall__zero-shot__s1"]["n_trainable_params"]
    assert records["dropall__zero-shot__s1"]["method_hparams"]["adapter"] is None

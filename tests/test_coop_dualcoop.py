"""CoOp and DualCoOp (methods/coop.py, methods/dualcoop.py) on the tiny ResNet CLIP: parameters, forward
arithmetic against direct computations, training, and one partial-label run of each through the CLI."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.methods.coop import CoOp
from bench.methods.dualcoop import DualCoOp
from bench.testing import train_steps

CLASSES = ["red", "green", "blue", "yellow"]
TARGETS = torch.tensor([[1., -1, 0, -1], [-1, 1, 1, 0], [0, -1, 1, -1]])  # 0: unknown


def _build(cls, backbone, **kw):
    torch.manual_seed(0)
    method = cls(**kw)
    method.build(backbone, CLASSES)
    return method


def _image_feats(backbone, n=3, seed=1):
    """Real feature kinds of random images: global [n, D] and dense [n, 1 + HW, D] (2x2 grid at 64 px)."""
    pixels = torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    return backbone.encode_images(pixels, ("global", "dense"))


def test_coop_parameters_shapes_and_frozen_backbone(tiny_rn):
    width = tiny_rn.model.token_embedding.weight.shape[1]
    feats = _image_feats(tiny_rn)
    for csc, shape in ((False, (16, width)), (True, (4, 16, width))):
        method = _build(CoOp, tiny_rn, csc=csc)
        assert method.image_features == {"global": "global"}
        assert {n: tuple(p.shape) for n, p in method.named_parameters() if p.requires_grad} == {"prompts.ctx": shape}
        logits = method.logits({"global": feats["global"], "modality": "image"})
        assert logits.shape == (3, 4) and logits.dtype == torch.float32
        method.loss(logits, TARGETS).backward()
        assert method.prompts.ctx.grad.abs().sum() > 0
        assert all(p.grad is None and not p.requires_grad for p in tiny_rn.model.parameters())
        assert all(not k.startswith(("model.", "_backbone")) for k in method.state_dict())  # CLIP not checkpointed


def test_dualcoop_parameters_shapes_and_frozen_backbone(tiny_rn):
    width = tiny_rn.model.token_embedding.weight.shape[1]
    method = _build(DualCoOp, tiny_rn)
    assert method.image_features == {"dense": "dense"}
    trainable = {n: tuple(p.shape) for n, p in method.named_parameters() if p.requires_grad}
    assert trainable == {"positive_prompts.ctx": (4, 16, width), "negative_prompts.ctx": (4, 16, width)}  # CSC, 16
    for ctx in (method.ctx_pos, method.ctx_neg):
        assert 0.015 < float(ctx.detach().std()) < 0.025  # N(0, 0.02)
    assert not torch.equal(method.ctx_pos, method.ctx_neg)
    out = method.logits({"dense": _image_feats(tiny_rn)["dense"], "modality": "image"})
    assert set(out) == {"score", "positive", "negative"}
    assert all(v.shape == (3, 4) and v.dtype == torch.float32 for v in out.values())
    method.loss(out, TARGETS).backward()
    assert method.ctx_pos.grad.abs().sum() > 0 and method.ctx_neg.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in tiny_rn.model.parameters())


def test_dualcoop_region_aggregation_by_explicit_loops(tiny_rn):
    method = _build(DualCoOp, tiny_rn)
    dense = _image_feats(tiny_rn, n=2, seed=3)["dense"]  # [2, 5, D]: mean token + 2x2 locations
    assert dense.shape[1] == 5
    with torch.no_grad():
        out = method.logits({"dense": dense, "modality": "image"})
        # each prompt set through its own learner, not the method's joint [neg, pos] text-tower pass
        t_pos, t_neg = method.positive_prompts(), method.negative_prompts()
    for b in range(2):
        for c in range(4):
            cos_pos = [F.cosine_similarity(dense[b, p], t_pos[c], dim=0) for p in range(5)]
            cos_neg = [F.cosine_similarity(dense[b, p], t_neg[c], dim=0) for p in range(5)]
            # softmax over locations of 20 * cos with the POSITIVE prompt, reused for the negative one
            exp = [math.exp(20 * float(s)) for s in cos_pos]
            weights = [e / sum(exp) for e in exp]
            l_pos = 5 * sum(w * 20 * float(s) for w, s in zip(weights, cos_pos))
            l_neg = 5 * sum(w * 20 * float(s) for w, s in zip(weights, cos_neg))
            assert float(out["positive"][b, c]) == pytest.approx(l_pos, abs=1e-3)
            assert float(out["negative"][b, c]) == pytest.approx(-l_neg, abs=1e-3)
            assert float(out["score"][b, c]) == pytest.approx(l_pos - l_neg, abs=1e-3)
            # softmax over (negative, positive) = sigmoid of the score (the reference's prediction)
            p_ref = math.exp(l_pos) / (math.exp(l_neg) + math.exp(l_pos))
            assert float(torch.sigmoid(out["score"][b, c])) == pytest.approx(p_ref, abs=1e-4)


def test_coop_initialised_from_a_photo_of_a_is_the_hand_prompt(tiny_rn):
    method = _build(CoOp, tiny_rn, ctx_init="a photo of a")
    assert method.n_ctx == 4 and method.prompts.ctx.shape[0] == 4
    expected = F.normalize(tiny_rn.encode_text([f"a photo of a {c}." for c in CLASSES]), dim=-1)
    torch.testing.assert_close(method.text_features(), expected, atol=1e-5, rtol=1e-5)
    image = _image_feats(tiny_rn)["global"]
    direct = F.normalize(image, dim=-1) @ expected.T  # cosine
    torch.testing.assert_close(method.logits({"global": image}), 4.0 * direct, atol=1e-4, rtol=1e-4)
    clip_scale = _build(CoOp, tiny_rn, ctx_init="a photo of a", logit_scale=None)
    torch.testing.assert_close(clip_scale.logits({"global": image}), tiny_rn.logit_scale * direct, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("cls, kw, role, shape", [
    (CoOp, {}, "global", (6, 32)),  # ranking loss
    (CoOp, {"objective": "asl"}, "global", (6, 32)),
    (DualCoOp, {}, "dense", (6, 5, 32)),
])
def test_training_on_fixed_features_lowers_the_loss(tiny_rn, cls, kw, role, shape):
    method = _build(cls, tiny_rn, **kw)
    feats = {role: torch.randn(*shape, generator=torch.Generator().manual_seed(7)), "modality": "image"}
    targets = torch.tensor([[1., -1, -1, 0], [-1, 1, 0, -1], [0, -1, 1, -1], [1, 1, -1, -1], [-1, 0, -1, 1],
                            [-1, -1, 1, 1]])
    optimizer = torch.optim.SGD(method.trainable_parameters(), lr=0.01, momentum=0.9)
    losses = train_steps(method, feats, targets, optimizer, 6)
    assert losses[-1] < 0.95 * losses[0], losses


def test_partial_label_cells_through_the_cli(tmp_path, tiny_config):
    from bench.cli import main

    work = tmp_path / "w"
    assert main(["run", "--methods", "coop,dualcoop", "--dataset", str(tiny_config), "--settings", "partial",
                 "--ratios", "0.5", "--seeds", "1", "--work-dir", str(work), "--quiet", "--cfg-options",
                 "coop.train.epochs=1", "coop.train.batch_size=6", "dualcoop.train.epochs=1",
                 "dualcoop.train.batch_size=6"]) == 0
    records = {p.stem: json.loads(p.read_text()) for p in work.glob("**/records/**/*.json")
               if not p.name.startswith("diagnostics__")}  # cell records only
    assert set(records) == {"coop__partial_r0.5__s1", "dualcoop__partial_r0.5__s1"}
    width = 32  # the tiny text tower
    expected_params = {"coop": 16 * width, "dualcoop": 2 * len(CLASSES) * 16 * width}  # generic vs 2 x CSC contexts
    for rec in records.values():
        assert rec["status"] == "ok" and rec["setting"] == "partial" and rec["label_ratio"] == 0.5
        assert np.isfinite(rec["mAP"]) and 0.0 <= rec["mAP"] <= 100.0
        assert rec["n_trainable_params"] == expected_params[rec["method"]]
        assert rec["train_schedule"]["epochs"] == 1 and rec["train_schedule"]["warmup_epochs"] == 1
        assert 0 < rec["train_data"]["known_label_fraction"] < 1
    dual = records["dualcoop__partial_r0.5__s1"]
    assert set(dual["branches"]) == {"score", "positive", "negative"}
    assert dual["method_hparams"]["csc"] is True and dual["method_hparams"]["loss_w"] == 1.0  # class default
    coop = records["coop__partial_r0.5__s1"]["method_hparams"]
    assert coop["logit_scale"] == 4.0 and coop["objective"] == "ranking" and coop["csc"] is False

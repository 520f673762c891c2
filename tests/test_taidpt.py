"""TaI-DPT (methods/taidpt.py) on the tiny ResNet CLIP: parameters, forward arithmetic, loss, caption extras,
and one end-to-end cell through the CLI."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.methods.taidpt import TaIDPT, rarest_class_subset
from bench.methods.zsclip import template_list
from bench.testing import train_steps

CLASSES = ["red", "green", "blue", "yellow"]


def _method(backbone, **kw):
    torch.manual_seed(0)
    method = TaIDPT(**kw)
    method.build(backbone, CLASSES)
    return method


def _text_feats(b=3, p=6, d=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g), torch.randn(b, p, d, generator=g)


def _local_by_hand(dense, text_local, tau, mask=None, scale=4.0):
    """l[b, c] = sum_p softmax_p(tau * S[b, p, c]) * scale * S[b, p, c], written as explicit loops."""
    out = torch.zeros(dense.shape[0], text_local.shape[0])
    for b in range(dense.shape[0]):
        keep = range(dense.shape[1]) if mask is None else [p for p in range(dense.shape[1]) if mask[b, p]]
        for c in range(text_local.shape[0]):
            sims = torch.stack([F.cosine_similarity(dense[b, p], text_local[c], dim=0) for p in keep])
            weights = torch.exp(tau * sims) / torch.exp(tau * sims).sum()
            out[b, c] = (weights * scale * sims).sum()
    return out


def test_parameters_only_the_two_contexts_learn(tiny_rn):
    method = _method(tiny_rn)
    width = tiny_rn.model.token_embedding.weight.shape[1]
    trainable = {n for n, p in method.named_parameters() if p.requires_grad}
    assert trainable == {"global_prompts.ctx", "local_prompts.ctx"}
    assert method.ctx is method.global_prompts.ctx and method.ctx_double is method.local_prompts.ctx
    assert method.ctx.shape == method.ctx_double.shape == (16, width)  # generic contexts, n_ctx 16
    for ctx in (method.ctx, method.ctx_double):
        assert 0.015 < float(ctx.detach().std()) < 0.025 and abs(float(ctx.detach().mean())) < 0.005  # N(0, 0.02)
    assert not torch.equal(method.ctx, method.ctx_double)
    assert method.image_features == {"global": "global_nopos", "dense": "dense_nopos"}
    g, dense = _text_feats()
    out = method.logits({"global": g, "dense": dense, "dense_mask": torch.ones(3, 6, dtype=torch.bool),
                         "modality": "text"})
    method.loss(out, torch.tensor([[1., -1, -1, 1], [-1, 1, -1, -1], [1, 1, -1, -1]])).backward()
    assert method.ctx.grad.abs().sum() > 0 and method.ctx_double.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_rn.model.parameters())


def test_text_features_are_the_two_prompt_sets(tiny_rn):
    method = _method(tiny_rn)
    text_global, text_local = method.text_features()
    assert text_global.shape == text_local.shape == (4, tiny_rn.embed_dim)
    torch.testing.assert_close(text_global, F.normalize(method.global_prompts(), dim=-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(text_local, F.normalize(method.local_prompts(), dim=-1), atol=1e-5, rtol=1e-5)


def test_scores_shapes_scale_and_merge(tiny_rn):
    method = _method(tiny_rn)
    g, dense = _text_feats(b=5, p=7)
    out = method.logits({"global": g, "dense": dense, "modality": "image"})
    assert set(out) == {"global", "local", "score"} and all(v.shape == (5, 4) for v in out.values())
    text_global, text_local = method.text_features()
    expected_global = 4.0 * F.normalize(g, dim=-1) @ text_global.T  # fixed logit scale 4
    torch.testing.assert_close(out["global"], expected_global, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["local"], _local_by_hand(dense, text_local, tau=40.0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["score"], 0.5 * out["global"] + 0.5 * out["local"], atol=1e-6, rtol=1e-6)
    other = _method(tiny_rn, gl_merge_rate=0.2).logits({"global": g, "dense": dense, "modality": "image"})
    torch.testing.assert_close(other["score"], 0.2 * other["global"] + 0.8 * other["local"], atol=1e-6, rtol=1e-6)


def test_spatial_temperature_depends_on_the_modality(tiny_rn):
    method = _method(tiny_rn)
    g, dense = _text_feats()
    _, text_local = method.text_features()
    as_text = method.logits({"global": g, "dense": dense, "modality": "text"})["local"]
    as_image = method.logits({"global": g, "dense": dense, "modality": "image"})["local"]
    torch.testing.assert_close(as_text, _local_by_hand(dense, text_local, tau=50.0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(as_image, _local_by_hand(dense, text_local, tau=40.0), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(as_text, as_image)
    nus = _method(tiny_rn, spatial_scale_image=4.0).logits({"global": g, "dense": dense, "modality": "image"})
    torch.testing.assert_close(nus["local"], _local_by_hand(dense, text_local, tau=4.0), atol=1e-5, rtol=1e-5)


def test_padding_tokens_are_masked(tiny_rn):
    method = _method(tiny_rn)
    g, dense = _text_feats(b=2, p=5)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])  # caption 2 has 2 padding tokens
    base = method.logits({"global": g, "dense": dense, "dense_mask": mask, "modality": "text"})
    _, text_local = method.text_features()
    torch.testing.assert_close(base["local"], _local_by_hand(dense, text_local, 50.0, mask), atol=1e-5, rtol=1e-5)
    # more padding positions with arbitrary (large) features change nothing
    junk = 50 * torch.randn(2, 4, dense.shape[-1], generator=torch.Generator().manual_seed(3))
    longer = method.logits({"global": g, "dense": torch.cat([dense, junk], 1), "modality": "text",
                            "dense_mask": torch.cat([mask, torch.zeros(2, 4, dtype=torch.bool)], 1)})
    for name in ("global", "local", "score"):
        torch.testing.assert_close(longer[name], base[name], atol=1e-6, rtol=1e-6)
    # the same junk unmasked does change the local score
    unmasked = method.logits({"global": g, "dense": torch.cat([dense, junk], 1), "modality": "text",
                              "dense_mask": torch.ones(2, 9, dtype=torch.bool)})
    assert not torch.allclose(unmasked["local"], base["local"])


def test_loss_is_the_summed_ranking_loss_and_training_lowers_it(tiny_rn):
    method = _method(tiny_rn)
    g, dense = _text_feats(b=4, p=6, seed=5)
    mask = torch.ones(4, 6, dtype=torch.bool)
    targets = torch.tensor([[1., -1, -1, -1], [-1, 1, -1, 1], [-1, -1, 1, -1], [1, 0, -1, 1]])  # 0: unknown
    feats = {"global": g, "dense": dense, "dense_mask": mask, "modality": "text"}
    out = method.logits(feats)
    by_hand = 0.0
    for scores in (out["global"].detach(), out["local"].detach()):
        for b in range(4):
            pos = [i for i in range(4) if targets[b, i] > 0]
            neg = [j for j in range(4) if targets[b, j] < 0]
            by_hand += sum(max(0.0, 1.0 - float(scores[b, i]) + float(scores[b, j])) for i in pos for j in neg) / 4
    assert float(method.loss(out, targets).detach()) == pytest.approx(by_hand, rel=1e-5)

    # a tiny training problem: real captions as images (the frozen text tower's token features)
    captions = ["a picture of red", "a picture of green and blue", "a picture of blue", "red and yellow"]
    ids = tiny_rn.tokenize(captions)
    eot, tokens = tiny_rn.encode_text_tokens(ids)
    feats = {"global": eot, "dense": tokens, "dense_mask": ids != 0, "modality": "text"}
    targets = torch.tensor([[1., -1, -1, -1], [-1, 1, 1, -1], [-1, -1, 1, -1], [1, -1, -1, 1]])
    optimizer = torch.optim.SGD([method.ctx, method.ctx_double], lr=1e-4)  # the reference's lr
    losses = train_steps(method, feats, targets, optimizer, 10)
    assert losses[-1] < 0.9 * losses[0] and sum(b < a for a, b in zip(losses, losses[1:])) >= 8, losses


def test_extra_captions_89_per_class(tiny_rn):
    method = _method(tiny_rn)
    captions, labels = method.extra_captions(CLASSES)
    assert len(captions) == 89 * 4 and labels.shape == (89 * 4, 4) and labels.dtype == np.int8
    templates = template_list("imagenet80")
    assert len(templates) == 80 and templates[0] == "a bad photo of a {}."
    for c, name in enumerate(CLASSES):
        block = captions[89 * c: 89 * (c + 1)]
        assert block[:9] == [f"a photo of a {name}."] * 9
        assert block[9:] == [t.format(name) for t in templates]
        expected = -np.ones((89, 4), np.int8)
        expected[:, c] = 1
        np.testing.assert_array_equal(labels[89 * c: 89 * (c + 1)], expected)
    none, none_labels = TaIDPT(template_captions=False).extra_captions(CLASSES)
    assert none == [] and none_labels.shape == (0, 4)
    coco_names, _ = TaIDPT(prompt_names="coco").extra_captions(["motorcycle", "cat"])
    assert coco_names[0] == "a photo of a motor bike." and coco_names[89] == "a photo of a cat."


def test_nuswide_rarest_class_limit():
    # class counts: c0 4, c1 3, c2 1 -> rarity order c2, c1, c0
    labels = np.array([[1, -1, -1], [1, 1, -1], [1, -1, 1], [1, 1, -1], [-1, 1, -1]], np.int8)
    # each row goes to its rarest class: 0 -> c0, 1 -> c1, 2 -> c2, 3 -> c1, 4 -> c1; kept class by class
    np.testing.assert_array_equal(rarest_class_subset(labels, 1), [0, 1, 2])
    np.testing.assert_array_equal(rarest_class_subset(labels, 5), [0, 1, 3, 4, 2])
    method = TaIDPT(max_captions_per_class=1)
    with pytest.raises(RuntimeError, match="select_captions"):
        method.extra_captions(CLASSES[:3])
    kept, kept_labels = method.select_captions(list("abcde"), labels)
    assert kept == ["a", "b", "c"] and kept_labels.shape == (3, 3)
    assert len(method.extra_captions(CLASSES[:3])[0]) == 3 * 89


def test_end_to_end_zero_shot_cells(tmp_path, tiny_config):
    """zsclip and taidpt through the CLI on the tiny COCO-format dataset (captions "A picture of red and blue")."""
    from bench.cli import main

    synonyms = tmp_path / "colours.json"
    synonyms.write_text(json.dumps({"classes": [{"name": c, "synonyms": [c]} for c in CLASSES]}))
    work = tmp_path / "w"
    assert main(["run", "--methods", "zsclip,taidpt", "--dataset", str(tiny_config), "--work-dir", str(work),
                 "--quiet", "--cfg-options", "taidpt.train.epochs=1", "taidpt.train.batch_size=128",
                 f"dataset.synonyms={synonyms}"]) == 0
    records = {p.stem: json.loads(p.read_text()) for p in work.glob("**/records/**/*.json")
               if not p.name.startswith("diagnostics__")}  # cell records only
    assert set(records) == {"zsclip__zero-shot__s1", "taidpt__zero-shot__s1"}
    for rec in records.values():
        assert rec["status"] == "ok" and np.isfinite(rec["mAP"])
    rec = records["taidpt__zero-shot__s1"]
    assert rec["train_data"]["n_corpus"] == 12 and rec["train_data"]["n_captions"] == 12 + 4 * 89
    assert set(rec["branches"]) == {"global", "local", "score"}
    assert rec["method_hparams"]["logit_scale"] == 4.0 and rec["method_hparams"]["spatial_scale_image"] == 40.0
    assert rec["train_schedule"]["epochs"] == 1 and rec["train_schedule"]["optimizer"]["lr"] == 1e-4
    assert rec["n_trainable_params"] == 2 * 16 * 32
    [scores] = work.glob("**/records/**/taidpt__zero-shot__s1.scores.npz")
    with np.load(scores) as data:
        assert {"score__global", "score__local", "score__score"} <= set(data.files)
        np.testing.assert_allclose(data["score__score"], 0.5 * data["score__global"] + 0.5 * data["score__local"],
                                   rtol=1e-5, atol=1e-5)

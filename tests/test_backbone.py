"""The open_clip backbone: feature paths against open_clip itself, text paths, weights errors."""

import pytest
import torch
import torch.nn.functional as F

from bench.features.backbone import load_backbone, resized_positional_embedding
from bench.features.spec import BackboneError, resolve_spec
from bench.methods._parts.prompt import PromptLearner


def test_global_equals_open_clip_encode_image(tiny_rn, tiny_vit):
    torch.manual_seed(0)
    pixels = torch.randn(3, 3, 64, 64)
    for bb in (tiny_rn, tiny_vit):
        got = bb.encode_images(pixels, ("global",))["global"]
        torch.testing.assert_close(got, bb.model.encode_image(pixels), rtol=1e-5, atol=1e-5)


def test_resnet_dense_is_value_output_projection_per_location(tiny_rn):
    torch.manual_seed(1)
    pixels = torch.randn(2, 3, 64, 64)
    feats = tiny_rn.encode_images(pixels, ("dense", "dense_nopos", "global_nopos"))
    visual = tiny_rn.model.visual
    fmap = visual.layer4(visual.layer3(visual.layer2(visual.layer1(visual.stem(pixels)))))  # [B, C, 2, 2]
    pool = visual.attnpool
    for b in range(2):
        for p in range(4):  # each location on its own, written out
            x = fmap[b, :, p // 2, p % 2]
            expected = pool.c_proj.weight @ (pool.v_proj.weight @ x + pool.v_proj.bias) + pool.c_proj.bias
            torch.testing.assert_close(feats["dense_nopos"][b, p], expected, rtol=1e-4, atol=1e-5)
            with_pos = x + pool.positional_embedding[1 + p]
            expected_pos = pool.c_proj.weight @ (pool.v_proj.weight @ with_pos + pool.v_proj.bias) + pool.c_proj.bias
            torch.testing.assert_close(feats["dense"][b, 1 + p], expected_pos, rtol=1e-4, atol=1e-5)
    assert feats["dense"].shape == (2, 5, 32)  # mean token + 2x2 locations (DualCoOp)
    assert not torch.allclose(feats["global_nopos"], tiny_rn.encode_images(pixels, ("global",))["global"])


def test_resnet_runs_at_another_resolution(tiny_rn):
    pos = tiny_rn.model.visual.attnpool.positional_embedding  # [1 + 2*2, C]
    resized = resized_positional_embedding(pos, (4, 4))
    assert resized.shape == (17, pos.shape[1])
    torch.testing.assert_close(resized[0], pos[0])  # the mean token's row is kept
    feats = tiny_rn.encode_images(torch.randn(1, 3, 128, 128), ("global", "dense"))
    assert feats["dense"].shape == (1, 17, 32)


def test_vit_dense_tokens(tiny_vit):
    pixels = torch.randn(2, 3, 64, 64)
    feats = tiny_vit.encode_images(pixels, ("dense_nopos", "dense"))
    visual = tiny_vit.model.visual
    visual.output_tokens = True
    _, tokens = visual(pixels)
    visual.output_tokens = False
    torch.testing.assert_close(feats["dense_nopos"], tokens @ visual.proj)
    assert feats["dense"].shape == (2, 17, 32)  # pooled + 4x4 patches


def test_text_paths_equal_encode_text(tiny_rn):
    names = ["dog", "hot dog", "traffic light"]
    prompts = [f"a photo of a {n}." for n in names]
    reference = tiny_rn.model.encode_text(tiny_rn.tokenize(prompts))
    torch.testing.assert_close(tiny_rn.encode_text(prompts), reference)
    # learnable context initialised from the real prompt's own token embeddings -> identical features
    torch.testing.assert_close(PromptLearner(tiny_rn, names, ctx_init="a photo of a")(), reference)
    eot, tokens = tiny_rn.encode_text_tokens(tiny_rn.tokenize(prompts))
    torch.testing.assert_close(eot, reference, rtol=1e-5, atol=1e-6)
    assert tokens.shape == (3, 77, 32)


@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_prompt_learner_gradients_reach_context_only(tiny_rn, position):
    learner = PromptLearner(tiny_rn, ["dog", "cat"], n_ctx=4, csc=True, class_token_position=position)
    F.normalize(learner(), dim=-1).sum().backward()
    assert learner.ctx.grad is not None and learner.ctx.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_rn.model.parameters())
    assert [n for n, p in learner.named_parameters()] == ["ctx"]


def test_weights_errors_say_what_to_do(tmp_path, tiny_rn_cfg, tiny_vit_cfg):
    with pytest.raises(BackboneError, match="checkpoint not found: /nope/rn50.pt"):
        load_backbone(resolve_spec({"model": "RN50", "pretrained": "/nope/rn50.pt"}))
    with pytest.raises(BackboneError, match="unknown open_clip model 'RN5000'; valid names: .*RN50"):
        load_backbone(resolve_spec({"model": "RN5000"}))
    # a ResNet checkpoint into a ViT model
    with pytest.raises(BackboneError, match="does not fit model tiny-vit"):
        load_backbone(resolve_spec({**tiny_vit_cfg, "pretrained": tiny_rn_cfg["pretrained"]}))
    with pytest.raises(ValueError, match="unknown backbone option"):
        resolve_spec({"model": "RN50", "pretrainde": "openai"})


def test_hub_weights_unavailable_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneError, match="backbone.pretrained=/path/to/checkpoint.pt"):
        load_backbone(resolve_spec({"model": "RN50", "pretrained": "openai"}))


def test_weights_hash_identifies_weights(tiny_rn_cfg, tiny_rn):
    again = load_backbone(resolve_spec(tiny_rn_cfg))
    assert again.weights_hash == tiny_rn.weights_hash
    with torch.no_grad():
        again.model.logit_scale += 1
    again._weights_hash = None
    assert again.weights_hash != tiny_rn.weights_hash

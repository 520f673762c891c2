"""CoCoOp, CLIP-Adapter and CLIP-LoRA (methods/cocoop.py, clip_adapter.py, clip_lora.py) on the tiny CLIPs:
trainable parameter sets, forward values against hand-worked or independent computations, training, the
LoRA actually changing both towers, and cells through the CLI (cached on ResNet, online on ViT)."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.methods._parts.adapters import ResidualAdapter
from bench.methods._parts.lora import SplitAttention
from bench.methods._parts.prompt import PromptLearner
from bench.methods.clip_adapter import CLIPAdapter
from bench.methods.clip_lora import CLIPLoRA
from bench.methods.cocoop import CoCoOp
from bench.testing import train_steps

CLASSES = ["red", "green", "blue", "yellow"]
TARGETS = torch.tensor([[1., -1, -1, 0], [-1, 1, 0, -1], [0, -1, 1, -1], [1, 1, -1, -1], [-1, 0, -1, 1],
                        [-1, -1, 1, 1]])  # 0: unknown


def _build(cls, backbone, **kw):
    torch.manual_seed(0)
    method = cls(**kw)
    method.build(backbone, CLASSES)
    return method


def _trainable(method) -> dict:
    return {n: tuple(p.shape) for n, p in method.named_parameters() if p.requires_grad}


def _global(n=6, seed=7):
    return torch.randn(n, 32, generator=torch.Generator().manual_seed(seed))


# ----- CLIP-Adapter -------------------------------------------------------------------------------
def test_clip_adapter_mix_by_hand():
    adapter = ResidualAdapter(4, alpha=0.2)  # bottleneck 4 -> 1 -> 4
    with torch.no_grad():
        adapter.mlp[0].weight.copy_(torch.tensor([[1., 1, 0, 0]]))
        adapter.mlp[2].weight.copy_(torch.tensor([[1.], [2], [-1], [0]]))
    x = torch.tensor([[2., -1, 3, 0]])
    # MLP: relu(2 - 1) = 1 -> relu([1, 2, -1, 0]) = [1, 2, 0, 0]; 0.2 * that + 0.8 * x
    torch.testing.assert_close(adapter(x), torch.tensor([[1.8, -0.4, 2.4, 0.0]]))


def test_clip_adapter_parameters_and_logits(tiny_rn):
    method = _build(CLIPAdapter, tiny_rn)
    assert _trainable(method) == {"adapter.mlp.0.weight": (8, 32), "adapter.mlp.2.weight": (32, 8)}  # D/4, no bias
    assert set(method.state_dict()) == {"adapter.mlp.0.weight", "adapter.mlp.2.weight", "text_features"}
    x = _global()
    w1, w2 = method.adapter.mlp[0].weight.detach(), method.adapter.mlp[2].weight.detach()
    mixed = 0.2 * torch.relu(torch.relu(x @ w1.T) @ w2.T) + 0.8 * x
    text = F.normalize(tiny_rn.encode_text([f"a photo of a {c}." for c in CLASSES]), dim=-1)
    expected = 4.0 * F.normalize(mixed, dim=-1) @ text.T
    torch.testing.assert_close(method.logits({"global": x}), expected, atol=1e-5, rtol=1e-5)


# ----- CoCoOp ------------------------------------------------------------------------------------
def test_cocoop_parameters(tiny_rn):
    method = _build(CoCoOp, tiny_rn)
    assert method.n_ctx == 4  # "a photo of a"
    assert _trainable(method) == {"prompts.ctx": (4, 32), "meta_net.0.weight": (2, 32), "meta_net.0.bias": (2,),
                                  "meta_net.2.weight": (32, 2), "meta_net.2.bias": (32,)}  # 32 // 16 = 2
    for kw in ({"class_token_position": "front"}, {"ctx_init": None, "csc": True}):
        with pytest.raises(ValueError, match="csc=False and class_token_position='end'"):
            CoCoOp(**kw)
    with pytest.raises(ValueError, match=r"unknown cocoop option\(s\) \['n_ctxx'\]"):
        CoCoOp(n_ctxx=8)


def test_cocoop_context_shift_is_the_meta_net_output_on_every_context_vector(tiny_rn):
    method = _build(CoCoOp, tiny_rn)
    x = F.normalize(_global(n=3), dim=-1)
    net = method.meta_net
    by_hand = torch.relu(x @ net[0].weight.T + net[0].bias) @ net[2].weight.T + net[2].bias  # [3, d_txt]
    shift = method.context_shift(x) - method.prompts.ctx.unsqueeze(0)  # [3, 4, d_txt]
    for i in range(4):
        torch.testing.assert_close(shift[:, i], by_hand, atol=1e-6, rtol=1e-6)


def test_cocoop_logits_use_each_images_own_prompts(tiny_rn):
    method = _build(CoCoOp, tiny_rn)
    x = _global(n=3)
    with torch.no_grad():
        out = method.logits({"global": x})
        ctx_b = method.context_shift(F.normalize(x, dim=-1))
        # image b's prompts through a plain CoOp prompt learner whose context is set to ctx_b
        learner = PromptLearner(tiny_rn, CLASSES, ctx_init="a photo of a")
        for b in range(3):
            learner.ctx.copy_(ctx_b[b])
            text = F.normalize(learner(), dim=-1)
            expected = 4.0 * F.normalize(x[b], dim=-1) @ text.T
            torch.testing.assert_close(out[b], expected, atol=1e-5, rtol=1e-5)
        # with the meta-net silenced, CoCoOp is the hand prompt "a photo of a {c}."
        for p in method.meta_net.parameters():
            p.zero_()
        hand = F.normalize(tiny_rn.encode_text([f"a photo of a {c}." for c in CLASSES]), dim=-1)
        torch.testing.assert_close(method.logits({"global": x}), 4.0 * F.normalize(x, dim=-1) @ hand.T,
                                   atol=1e-5, rtol=1e-5)


def test_cocoop_builds_only_text_chunk_prompts_at_once_and_chunking_changes_no_number(tiny_rn):
    """B x C prompts are built and encoded ``text_chunk`` rows at a time (a chunk may cross images): the logits
    and the gradients equal one pass over all of them, and no pass holds more than ``text_chunk`` prompts."""
    whole = _build(CoCoOp, tiny_rn)  # text_chunk 4096 >= 3 x C: one pass
    chunked = _build(CoCoOp, tiny_rn, text_chunk=5)
    chunked.load_state_dict(whole.state_dict())
    x = _global(n=3)
    seen = []
    encode = tiny_rn.encode_embedded

    def counting(embeds, ids):
        seen.append(len(embeds))
        return encode(embeds, ids)

    built = []
    embeddings = chunked.prompt_embeddings

    def building(*args):
        prompts = embeddings(*args)
        built.append(prompts.numel() // (prompts.shape[-2] * prompts.shape[-1]))  # prompts built in one call
        return prompts

    chunked.prompt_embeddings = building
    tiny_rn.encode_embedded = counting
    try:
        out = chunked.logits({"global": x})
        out.sum().backward()
    finally:
        del tiny_rn.encode_embedded
    n = 3 * len(CLASSES)
    assert seen == [5] * (n // 5) + ([n % 5] if n % 5 else []) and max(built) <= 5 and sum(built) == n
    ref = whole.logits({"global": x})
    ref.sum().backward()
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(chunked.prompts.ctx.grad, whole.prompts.ctx.grad, atol=1e-5, rtol=1e-5)


# ----- CLIP-LoRA ---------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_first, mask", [(True, "float"), (False, "bool"), (True, None)])
def test_split_attention_equals_multihead_attention(batch_first, mask):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first).eval()
    with torch.no_grad():
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    x = torch.randn(3, 5, 8)  # read as [B, L, E] or [L, B, E]
    length = 5 if batch_first else 3
    causal = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
    attn_mask = {"float": torch.zeros(length, length).masked_fill(causal, float("-inf")), "bool": causal,
                 None: None}[mask]
    expected = mha(x, x, x, need_weights=False, attn_mask=attn_mask)[0]
    torch.testing.assert_close(SplitAttention(mha)(x, x, x, attn_mask=attn_mask)[0], expected, atol=1e-5, rtol=1e-5)


def _lora_names(prefix, blocks):
    return {f"lora.{prefix}__resblocks__{i}__attn__{p}_proj__lora_{ab}__default__weight"
            for i in blocks for p in "qkv" for ab in "AB"}


def test_clip_lora_parameters_vit_both_towers_resnet_text_only(tiny_vit, tiny_rn):
    vit = _build(CLIPLoRA, tiny_vit)
    names = _lora_names("transformer", [0]) | _lora_names("visual__transformer", [0])
    assert set(_trainable(vit)) == names and set(vit.state_dict()) == names  # no CLIP weight checkpointed
    assert all(s in ((2, 32), (32, 2)) for s in _trainable(vit).values())  # r = 2 on width 32
    assert vit.online_images and vit.encoder == "both"
    rn = _build(CLIPLoRA, tiny_rn)
    assert set(_trainable(rn)) == _lora_names("transformer", [0])  # attention pool untouched: text tower only
    assert not rn.online_images and rn.encoder == "text"
    with pytest.raises(ValueError, match="ViT image tower"):
        _build(CLIPLoRA, tiny_rn, encoder="vision")


def test_clip_lora_weights_change_both_towers_and_leave_the_backbone_alone(tiny_vit):
    method = _build(CLIPLoRA, tiny_vit).eval()
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    prompts = [f"a photo of a {c}." for c in CLASSES]
    frozen_image, frozen_text = tiny_vit.model.encode_image(pixels), tiny_vit.encode_text(prompts)
    with torch.no_grad():
        torch.testing.assert_close(method.encode_pixels(pixels)["global"], frozen_image, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(method.lora_clip.encode_text(prompts), frozen_text, atol=1e-5, rtol=1e-5)
        for name, p in method.lora.items():
            if "lora_B" in name:
                p.normal_(std=0.5)
        image, text = method.encode_pixels(pixels)["global"], method.lora_clip.encode_text(prompts)
    assert (image - frozen_image).abs().max() > 1e-2 and (text - frozen_text).abs().max() > 1e-2
    torch.testing.assert_close(tiny_vit.model.encode_image(pixels), frozen_image)  # the shared backbone: no LoRA
    # a checkpoint round trip carries the LoRA weights into a fresh method
    fresh = _build(CLIPLoRA, tiny_vit).eval()
    fresh.load_state_dict(method.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh.encode_pixels(pixels)["global"], image)
    # gradients reach the LoRA weights of both towers through the harness's training path
    method.train()
    method.loss(method.logits(method.encode_pixels(pixels)), TARGETS[:2]).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in method.lora.items() if "lora_A" in n)


# ----- training ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, lr, drop", [(CoCoOp, 0.05, 0.98), (CLIPAdapter, 1.0, 0.985), (CLIPLoRA, 0.1, 0.985)])
def test_training_on_fixed_features_lowers_the_loss(tiny_rn, cls, lr, drop):
    method = _build(cls, tiny_rn)
    feats = {"global": _global(), "modality": "image"}
    optimizer = torch.optim.SGD(method.trainable_parameters(), lr=lr, momentum=0.9)
    losses = train_steps(method, feats, TARGETS, optimizer, 8)
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < drop * losses[0], losses


# ----- through the CLI ---------------------------------------------------------------------------
def _records(work):
    return {p.stem.split("__")[0]: json.loads(p.read_text()) for p in work.glob("**/records/**/*.json")
            if not p.name.startswith("diagnostics__")}


def test_cells_through_the_cli_cached_on_resnet(tmp_path, tiny_config):
    from bench.cli import main

    work = tmp_path / "w"
    assert main(["run", "--methods", "cocoop,clip_adapter,clip_lora", "--dataset", str(tiny_config), "--settings",
                 "partial", "--ratios", "0.5", "--seeds", "1", "--work-dir", str(work), "--quiet", "--cfg-options",
                 "cocoop.train.epochs=1", "cocoop.train.batch_size=6", "clip_adapter.train.epochs=1",
                 "clip_lora.train.epochs=1"]) == 0
    records = _records(work)
    assert set(records) == {"cocoop", "clip_adapter", "clip_lora"}
    # cocoop: ctx 4 x 32 + meta-net (32 x 2 + 2) + (2 x 32 + 32); adapter 2 x 32 x 8; LoRA 3 x (2 x 32 + 32 x 2)
    expected_params = {"cocoop": 128 + 66 + 96, "clip_adapter": 512, "clip_lora": 384}
    for method, rec in records.items():
        assert rec["status"] == "ok" and np.isfinite(rec["mAP"])
        assert rec["n_trainable_params"] == expected_params[method]
        assert rec["seconds"]["train"] > 0 and rec["peak_memory_mb"]["process_peak_rss_mb"] > 0
        assert rec["image_protocol"] == {"mode": "cached", "views": 1, "augment": None}
    assert records["clip_lora"]["method_hparams"]["encoder"] == "text"  # what ran on the ResNet tower
    assert records["clip_lora"]["train_schedule"]["optimizer"]["type"] == "AdamW"


def test_clip_lora_on_vit_trains_online_whatever_the_config_says(tmp_path, tiny_coco, tiny_vit_cfg):
    from bench.cli import main
    from bench.testing import write_tiny_config

    config = write_tiny_config(tmp_path / "vit.py", {"type": "coco2014", "data_root": str(tiny_coco[0])},
                               tiny_vit_cfg, extra="clip_lora = dict(train=dict(epochs=1, batch_size=6))\n")
    work = tmp_path / "w"
    assert main(["run", "--methods", "clip_lora", "--dataset", str(config), "--settings", "partial", "--ratios",
                 "0.5", "--seeds", "1", "--work-dir", str(work), "--quiet"]) == 0
    rec = _records(work)["clip_lora"]
    assert rec["status"] == "ok" and np.isfinite(rec["mAP"]) and rec["n_test"] == 8
    assert rec["image_protocol"]["mode"] == "online" and rec["image_protocol"]["config_mode"] == "cached"
    assert "image tower" in rec["image_protocol"]["reason"]
    assert rec["train_data"]["protocol"] == "online" and rec["n_trainable_params"] == 12 * 64

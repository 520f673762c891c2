"""The text-tower activation follows the weights: QuickGELU for OpenAI's, GELU otherwise
(bench/features/quickgelu.py)."""

import logging

import open_clip
import pytest
import torch

from bench.features.backbone import load_backbone
from bench.features.quickgelu import decide_quick_gelu, is_torchscript_archive
from bench.features.spec import resolve_spec
from bench.testing import write_torchscript_checkpoint


def _activations(backbone) -> set[str]:
    return {type(block.mlp.gelu).__name__ for block in backbone.model.transformer.resblocks}


def test_open_clip_tags_decide_quick_gelu():
    # open_clip's own pretrained configs (open_clip/pretrained.py): OpenAI tags need QuickGELU, LAION's ViT-B-16 not
    assert decide_quick_gelu(open_clip, "RN50", "openai", None, False)[0] is True
    assert decide_quick_gelu(open_clip, "RN101", "openai", None, False)[0] is True
    assert decide_quick_gelu(open_clip, "ViT-B-16", "openai", None, False)[0] is True
    assert decide_quick_gelu(open_clip, "ViT-B-16", "laion2b_s34b_b88k", None, False)[0] is False
    assert decide_quick_gelu(open_clip, "RN50", "openai", False, False) == (False, "backbone.quick_gelu")
    with pytest.raises(ValueError, match="backbone.quick_gelu must be true, false or None"):
        decide_quick_gelu(open_clip, "RN50", "openai", "maybe", False)


def test_tag_builds_quick_gelu(tiny_rn_cfg, monkeypatch):
    """A tag whose open_clip config says quick_gelu=True: the built model has QuickGELU in every text block
    (no download: the tag's file is the tiny checkpoint)."""
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, "tiny-rn",
                        {"openai": dict(url="", hf_hub="", quick_gelu=True)})
    monkeypatch.setattr(open_clip.factory, "download_pretrained", lambda cfg, **kw: tiny_rn_cfg["pretrained"])
    spec = resolve_spec({**tiny_rn_cfg, "pretrained": "openai"})
    backbone = load_backbone(spec)
    assert _activations(backbone) == {"QuickGELU"}
    assert backbone.spec.quick_gelu is True and backbone.cache_identity()["spec"]["quick_gelu"] is True
    assert backbone.spec.describe() == "tiny-rn@openai+QuickGELU"
    # the same weights with GELU: another cache key, other text features
    gelu = load_backbone(resolve_spec({**tiny_rn_cfg, "pretrained": "openai", "quick_gelu": False}))
    assert _activations(gelu) == {"GELU"} and gelu.weights_hash == backbone.weights_hash
    assert gelu.cache_identity() != backbone.cache_identity()
    assert not torch.allclose(gelu.encode_text(["a photo of a red"]), backbone.encode_text(["a photo of a red"]))


def test_local_files(tiny_rn_cfg, tmp_path, caplog):
    # a state dict of a custom architecture: the model config's activation (GELU)
    plain = load_backbone(resolve_spec(tiny_rn_cfg))
    assert _activations(plain) == {"GELU"} and plain.spec.quick_gelu is False
    # an OpenAI-style TorchScript archive: QuickGELU (and it loads, which open_clip 3.3 alone refuses)
    scripted = write_torchscript_checkpoint(plain.model.state_dict(), tmp_path / "tiny-openai.pt")
    assert is_torchscript_archive(scripted) and not is_torchscript_archive(tiny_rn_cfg["pretrained"])
    jit = load_backbone(resolve_spec({**tiny_rn_cfg, "pretrained": str(scripted)}))
    assert _activations(jit) == {"QuickGELU"} and jit.spec.quick_gelu is True
    assert jit.weights_hash == plain.weights_hash
    # the option overrides the guess
    assert _activations(load_backbone(resolve_spec({**tiny_rn_cfg, "pretrained": str(scripted),
                                                    "quick_gelu": False}))) == {"GELU"}
    # a state dict for an architecture with OpenAI weights: QuickGELU by default, with a warning naming the option
    state_dict = tmp_path / "rn50.pt"
    state_dict.write_bytes(b"not a zip")
    with caplog.at_level(logging.WARNING, logger="bench"):
        value, why = decide_quick_gelu(open_clip, "RN50", str(state_dict), None, True)
    assert value is True and "backbone.quick_gelu=false" in caplog.text


def test_cell_config_carries_quick_gelu_for_openai_weights():
    """Records made with GELU for OpenAI weights (before this rule) have another config hash: stale, recomputed."""
    from bench.config import cell_config, load_config

    openai = cell_config(load_config("voc2007"), "zsclip", "zsclip", {}, {}, {})
    assert openai["backbone"] == {"model": "RN50", "pretrained": "openai", "quick_gelu": True}
    toy = cell_config(load_config("toy"), "zsclip", "zsclip", {}, {}, {})
    assert "quick_gelu" not in toy["backbone"]  # the toy CLIP's records keep their hash
    chosen = cell_config(load_config("voc2007", {"backbone.quick_gelu": False}), "zsclip", "zsclip", {}, {}, {})
    assert chosen["backbone"]["quick_gelu"] is False

"""Prompt class names: underscores become spaces, a dataset's own names (TaI-DPT's COCO names); ctx_init + csc."""

import logging

import pytest
import torch
import torch.nn.functional as F

from bench.data.base import DataError
from bench.methods._parts.names import prompt_names
from bench.methods.coop import CoOp
from bench.methods.zsclip import ZSCLIP


def test_prompt_names_rules(tmp_path):
    assert prompt_names(None, ["traffic_light", "dog"]) == ["traffic light", "dog"]
    assert prompt_names("coco", ["motorcycle", "airplane", "tv"]) == ["motor bike", "aeroplane", "tv"]
    names = tmp_path / "names.txt"
    names.write_text("red thing\ngreen_thing\n")
    assert prompt_names(str(names), ["red", "green"]) == ["red thing", "green thing"]
    assert prompt_names(["a", "b"], ["x", "y"]) == ["a", "b"]
    with pytest.raises(DataError, match="gives 1 names for 2 classes; give one per class"):
        prompt_names(["a"], ["x", "y"])
    with pytest.raises(DataError, match="prompt_names file not found"):
        prompt_names(str(tmp_path / "nope.txt"), ["x"])


def _expected(backbone, prompts):
    return F.normalize(backbone.encode_text(prompts), dim=-1)


def test_zsclip_prompts_use_spaces_and_dataset_names(tiny_rn):
    zs = ZSCLIP()
    zs.build(tiny_rn, ["traffic_light", "motorcycle"])
    expected = _expected(tiny_rn, ["a photo of a traffic light.", "a photo of a motorcycle."])
    assert torch.allclose(zs.text_features, expected, atol=1e-6)
    coco = ZSCLIP(prompt_names="coco")
    coco.build(tiny_rn, ["person", "motorcycle"])
    assert torch.allclose(coco.text_features, _expected(tiny_rn, ["a photo of a person.", "a photo of a motor bike."]),
                          atol=1e-6)
    assert coco.hparams()["prompt_names"] == "coco"


def test_coop_ctx_init_with_csc_is_one_generic_context(tiny_rn, caplog):
    with caplog.at_level(logging.WARNING, logger="bench"):
        coop = CoOp(ctx_init="a photo of a", csc=True)
    assert "builds one generic context" in caplog.text and coop.hparams()["csc"] is False
    coop.build(tiny_rn, ["red", "green", "blue"])
    init = tiny_rn.token_embedding(tiny_rn.tokenize(["a photo of a"]))[0, 1:5]
    assert coop.prompts.ctx.shape == init.shape and torch.equal(coop.prompts.ctx.data, init.float())

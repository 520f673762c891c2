"""Methods in the zsl setting: re-prompting for unseen classes keeps the learned parameters and equals a
method built for those classes with the same parameters; class-specific methods say why they cannot."""

import pytest
import torch

from bench.methods._parts.losses import asymmetric_loss
from bench.methods._parts.prompt import PromptLearner, encode_prompts
from bench.methods.clip_adapter import CLIPAdapter
from bench.methods.clip_lora import CLIPLoRA
from bench.methods.cocoop import CoCoOp
from bench.methods.coop import CoOp
from bench.methods.dualcoop import DualCoOp
from bench.methods.t2ipal import T2IPAL
from bench.methods.taidpt import TaIDPT
from bench.methods.zsclip import ZSCLIP

SEEN, UNSEEN = ["red", "green", "blue"], ["yellow", "purple"]


def _feats(backbone, n=3, seed=1):
    pixels = torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    feats = backbone.encode_images(pixels, ("global", "dense", "global_nopos", "dense_nopos"))
    return {"modality": "image", **feats}


def _trained(cls, backbone, names, seed=0, **kw):
    """A method built for ``names`` whose learnable parameters are moved away from their initial values."""
    torch.manual_seed(seed)
    method = cls(**kw)
    method.build(backbone, names)
    with torch.no_grad():
        for p in method.trainable_parameters():
            p.add_(0.05 * torch.randn_like(p))
    return method


def _copy_parameters(src, dst):
    with torch.no_grad():
        for (name, p), (other, q) in zip(src.named_parameters(), dst.named_parameters()):
            assert name == other and p.shape == q.shape
            q.copy_(p)


def test_prompt_learner_set_classnames_equals_fresh_build(tiny_rn):
    torch.manual_seed(0)
    learner = PromptLearner(tiny_rn, SEEN)
    with torch.no_grad():
        learner.ctx.add_(0.1)
    learner.set_classnames(UNSEEN + ["red"])
    fresh = PromptLearner(tiny_rn, UNSEEN + ["red"])
    with torch.no_grad():
        fresh.ctx.copy_(learner.ctx)
    assert learner.n_cls == 3
    torch.testing.assert_close(encode_prompts(tiny_rn, learner), encode_prompts(tiny_rn, fresh))
    csc = PromptLearner(tiny_rn, SEEN, csc=True)
    with pytest.raises(ValueError, match="class-specific contexts"):
        csc.set_classnames(UNSEEN)


@pytest.mark.parametrize("cls,kw,clip", [(CoOp, {}, "tiny_rn"), (DualCoOp, {"csc": False}, "tiny_rn"),
                                         (TaIDPT, {}, "tiny_rn"), (ZSCLIP, {}, "tiny_rn"),
                                         (T2IPAL, {"prototypes": False}, "tiny_rn"), (CoCoOp, {}, "tiny_rn"),
                                         (CLIPAdapter, {}, "tiny_rn"), (CLIPLoRA, {}, "tiny_rn"),
                                         (CLIPLoRA, {}, "tiny_vit")])
def test_rebuild_equals_method_built_for_the_classes(request, cls, kw, clip):
    """After rebuild(names), scores equal those of the method built for ``names`` with the same parameters."""
    backbone = request.getfixturevalue(clip)
    feats = _feats(backbone)
    method = _trained(cls, backbone, SEEN, **kw)
    assert method.unseen_blocker() is None and "zsl" in cls.settings and cls.supports_unseen
    method.rebuild(UNSEEN)
    fresh = cls(**kw)
    fresh.build(backbone, UNSEEN)
    _copy_parameters(method, fresh)
    method.eval(), fresh.eval()
    got, want = method.logits(feats), fresh.logits(feats)
    got = got if isinstance(got, dict) else {"score": got}
    want = want if isinstance(want, dict) else {"score": want}
    assert got["score"].shape == (3, 2) and method.classnames == UNSEEN
    for name in want:
        torch.testing.assert_close(got[name], want[name])


def test_clip_lora_rebuild_goes_through_the_lora_text_tower(tiny_rn):
    """The unseen classes' text features come from the LoRA'd text tower, not the frozen backbone's."""
    import torch.nn.functional as F

    method = _trained(CLIPLoRA, tiny_rn, SEEN).eval()
    method.rebuild(UNSEEN)
    prompts = [f"a photo of a {name}." for name in UNSEEN]
    with torch.no_grad():
        got = method.text_features()
        lora = F.normalize(method.lora_clip.encode_text(prompts), dim=-1)
        frozen = F.normalize(tiny_rn.encode_text(prompts), dim=-1)
    torch.testing.assert_close(got, lora)
    assert (got - frozen).abs().max() > 1e-3  # the LoRA changed them


def test_clip_adapter_rebuild_keeps_the_adapter_and_uses_the_frozen_prompts(tiny_rn):
    from bench.methods.zsclip import class_text_features

    method = _trained(CLIPAdapter, tiny_rn, SEEN)
    adapter = [p.detach().clone() for p in method.adapter.parameters()]
    method.rebuild(UNSEEN)
    torch.testing.assert_close(method.text_features, class_text_features(tiny_rn, UNSEEN, "a photo of a {}."))
    for p, q in zip(method.adapter.parameters(), adapter):
        torch.testing.assert_close(p.detach(), q)


def test_t2ipal_prototypes_keep_learned_rows(tiny_rn):
    from bench.methods.zsclip import class_text_features

    method = _trained(T2IPAL, tiny_rn, SEEN)
    learned = method.class_prototypes.detach().clone()
    method.rebuild(["blue", "yellow", "red"])
    initial = class_text_features(tiny_rn, ["yellow"], method.prototype_prompt)[0]
    torch.testing.assert_close(method.class_prototypes[0], learned[2])  # blue: learned
    torch.testing.assert_close(method.class_prototypes[2], learned[0])  # red: learned
    torch.testing.assert_close(method.class_prototypes[1], initial)  # yellow: never trained, initial value


def test_bench_list_shows_which_methods_score_unseen_classes(capsys):
    from bench.cli import main

    assert main(["list", "methods"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if "unseen classes (zsl)" in line}
    for name in ("cocoop", "clip_adapter", "clip_lora", "coop", "zsclip"):
        assert "settings: partial, fewshot, zsl" in lines[name] or name == "zsclip"
        assert "unseen classes (zsl): yes" in lines[name]
    assert "unseen classes (zsl): no (its cache values are the training labels" in lines["tip_adapter"]
    assert "unseen classes (zsl): no (its cache values are the training labels" in lines["tip_adapter_f"]
    assert "unseen classes (zsl): no (one fitted weight row and bias per class" in lines["linear_probe"]


def test_class_specific_methods_say_why(tiny_rn):
    assert "csc=True" in CoOp(csc=True).unseen_blocker()
    assert "csc=True" in DualCoOp(csc=True).unseen_blocker()
    assert DualCoOp(csc=False).unseen_blocker() is None
    method = _trained(DualCoOp, tiny_rn, SEEN, csc=True)
    with pytest.raises(ValueError, match="class-specific"):
        method.rebuild(UNSEEN)


def test_dualcoop_num_train_cls_draws_classes_per_step(tiny_rn):
    """DualCoOp's --num_train_cls (trainers.py:117-132): a step scores and trains on a random subset of classes."""
    names = ["red", "green", "blue", "yellow", "purple"]
    method = _trained(DualCoOp, tiny_rn, names, csc=False, num_train_cls=2)
    feats = _feats(tiny_rn)
    targets = torch.tensor([[1., -1, -1, 1, -1], [-1, 1, -1, -1, 1], [-1, -1, 1, -1, -1]])
    torch.manual_seed(3)
    logits = method.logits(feats)
    picked = method._batch_classes
    assert logits["score"].shape == (3, 2) and len(set(picked.tolist())) == 2
    want = asymmetric_loss(logits["score"].float(), targets[:, picked], gamma_neg=2.0, gamma_pos=1.0, clip=0.05,
                           eps=1e-6)
    torch.testing.assert_close(method.loss(logits, targets), want)
    # the subset's scores are the full model's scores of those classes
    method.eval()
    full = method.logits(feats)["score"]
    torch.testing.assert_close(logits["score"], full[:, picked])

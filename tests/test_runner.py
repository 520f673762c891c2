"""Runner pieces: the learning-rate schedule, per-setting schedules, method variants from configs."""

import math

import pytest
import torch
from mmengine.config import Config
from mmengine.optim.scheduler import ConstantLR, CosineAnnealingLR

from bench.cell.train import lr_schedule
from bench.config import method_class, method_config


def _lrs(train: dict) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=train["optimizer"]["lr"])
    kinds = {"ConstantLR": ConstantLR, "CosineAnnealingLR": CosineAnnealingLR}
    schedulers = [kinds[s.pop("type")](optimizer, **s) for s in map(dict, lr_schedule(train))]
    out = []
    for _ in range(train["epochs"]):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        for s in schedulers:
            s.step()
    return out


def test_warmup_then_cosine_as_dassl():
    # Dassl ConstantWarmupScheduler(CosineAnnealingLR(T_max=epochs)): epoch 0 at warmup_lr, then epoch e
    # at the cosine's step e - 1
    lrs = _lrs(dict(epochs=5, warmup_epochs=1, warmup_lr=1e-5, optimizer=dict(lr=2e-3), scheduler="cosine"))
    expected = [1e-5] + [2e-3 * (1 + math.cos(math.pi * (e - 1) / 5)) / 2 for e in range(1, 5)]
    assert lrs == pytest.approx(expected, rel=1e-6)
    no_warmup = _lrs(dict(epochs=4, warmup_epochs=0, optimizer=dict(lr=0.1), scheduler="cosine"))
    assert no_warmup == pytest.approx([0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)], rel=1e-6)


def test_per_setting_schedule_and_variants():
    from bench.methods.t2ipal import T2IPAL

    cfg = Config(dict(coop=dict(n_ctx=4, train=dict(epochs=50, per_setting=dict(fewshot=dict(epochs=200)))),
                      t2ipal=dict(proto_weight=0.3, train=dict(epochs=7)),
                      t2ipal_no_adapter=dict(type="t2ipal", adapter=None)))
    from bench.methods.coop import CoOp

    kwargs, train, _ = method_config(cfg, "coop", CoOp, "fewshot")
    assert kwargs == {"n_ctx": 4} and train["epochs"] == 200 and "per_setting" not in train
    assert method_config(cfg, "coop", CoOp, "partial")[1]["epochs"] == 50
    assert method_class(cfg, "t2ipal_no_adapter") is T2IPAL
    kwargs, train, _ = method_config(cfg, "t2ipal_no_adapter", T2IPAL, "zero-shot")
    assert kwargs == {"proto_weight": 0.3, "adapter": None} and train["epochs"] == 7  # the variant starts from its base
    with pytest.raises(KeyError, match="unknown method 'nope'; valid names: .*t2ipal_no_adapter"):
        method_class(cfg, "nope")


def test_batched_reads_equal_item_by_item_collation():
    """Training reads whole batches (Batched); the tensors equal stacking the items one by one."""
    import numpy as np
    from torch.utils.data import DataLoader, default_collate

    from bench.cell.trainsets import Batched, FeatureDataset, collate_batch

    rng = np.random.default_rng(0)
    images = {"global": rng.normal(size=(3, 10, 4)).astype(np.float16),
              "dense": rng.normal(size=(3, 10, 5, 4)).astype(np.float16)}  # 3 views of 10 images
    labels = rng.choice([-1, 0, 1], size=(6, 2)).astype(np.int8)
    rows = np.array([9, 2, 2, 5, 0, 7])  # a few-shot style subset, with a repeat
    paired = FeatureDataset(images, labels, views=3, rows=rows, seed=5)
    paired.set_epoch(2)
    order = [4, 1, 5, 0, 2, 3]
    batch = next(iter(DataLoader(Batched(paired), batch_size=6, sampler=order, collate_fn=collate_batch)))
    expected = default_collate([paired[i] for i in order])
    for role in ("global", "dense"):
        got, want = batch["feats"][role], expected["feats"][role]
        for key in (want if isinstance(want, dict) else [None]):
            a, b = (got[key], want[key]) if key else (got, want)
            assert a.dtype == b.dtype and torch.equal(a, b)
    assert torch.equal(batch["targets"], expected["targets"])
    first = paired[4]["feats"]["global"]  # item 4 reads image row 0 in a view drawn from (seed 5, epoch 2, 4)
    view = int(np.random.default_rng([5, 2, 4]).integers(3))
    assert torch.equal(first, torch.from_numpy(images["global"][view, 0].astype(np.float32)))

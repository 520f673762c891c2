"""T2I-PAL's mixed training set (bench/cell/generated.py): whole-batch reads equal the per-item rows, and a
training run reads the same batches either way."""

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate

from bench.cell.generated import MixedDataset
from bench.cell.train import CellModel, EpochSampler
from bench.cell.trainsets import Batched, FeatureDataset, collate_batch

D, P, L, C = 32, 5, 6, 4  # feature width, image tokens, caption tokens, classes


def _mixed(seed: int = 0) -> MixedDataset:
    """7 generated images (2 views, one image dropped as a near duplicate), 12 captions of which 5 are not
    rendered, 6 real images (2 views, unknown labels); float16 arrays as the cache stores them."""
    rng = np.random.default_rng(seed)
    n_captions = 12
    captions = {"global": rng.normal(size=(n_captions, D)).astype(np.float16),
                "dense": rng.normal(size=(n_captions, L, D)).astype(np.float16),
                "dense_mask": np.arange(L)[None] < rng.integers(1, L + 1, size=(n_captions, 1))}
    caption_labels = rng.choice([-1, 1], size=(n_captions, C)).astype(np.int8)
    rendered = np.array([0, 2, 3, 5, 8, 9, 10, 11])  # captions with an image; 11's image is dropped below
    images = {"global": rng.normal(size=(2, 8, D)).astype(np.float16),
              "dense": rng.normal(size=(2, 8, P, D)).astype(np.float16)}
    keep = np.arange(7)
    generated = FeatureDataset(images, caption_labels[rendered[keep]], views=2, rows=keep, seed=0)
    real_images = {"global": rng.normal(size=(2, 9, D)).astype(np.float16),
                   "dense": rng.normal(size=(2, 9, P, D)).astype(np.float16)}
    real = FeatureDataset(real_images, rng.choice([-1, 0, 1], size=(6, C)).astype(np.int8), views=2,
                          rows=np.array([8, 1, 4, 4, 0, 6]), seed=3)
    caption_only = np.array([1, 4, 6, 7, 11])
    return MixedDataset(generated, rendered[keep], FeatureDataset(captions, caption_labels), caption_only, real)


def _assert_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        if isinstance(want[key], dict):
            _assert_equal(got[key], want[key])
        else:
            assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key


def test_batched_reads_equal_stacking_the_items():
    mixed = _mixed()
    assert list(mixed.kinds) == [0] * 7 + [1] * 5 + [2] * 6
    for epoch in (0, 3):
        mixed.set_epoch(epoch)  # the parts draw each item's view from (seed, epoch, item)
        order = np.random.default_rng(epoch).permutation(len(mixed))
        for indices in (order, order[:5], [12], [8, 8, 0]):
            _assert_equal(mixed.batch(indices), default_collate([mixed[int(i)] for i in indices]))
    # by hand: a caption alone (row 8 = caption 4) has no image and its caption's features and labels; a real
    # image (row 13 = image row 1) has a blank caption with one valid token only
    batch = mixed.batch([8, 13])
    text = mixed.text.arrays
    assert not batch["feats"]["image_rows"][0] and batch["feats"]["text_rows"][0]
    assert not batch["feats"]["global"][0].any() and not batch["feats"]["dense"][0].any()
    assert torch.equal(batch["feats"]["text"]["dense"][0], torch.from_numpy(text["dense"][4].astype(np.float32)))
    assert torch.equal(batch["targets"][0], torch.from_numpy(mixed.text.labels[4].astype(np.float32)))
    assert batch["feats"]["image_rows"][1] and not batch["feats"]["text_rows"][1]
    assert batch["feats"]["text"]["dense_mask"][1].tolist() == [True] + [False] * (L - 1)
    view = int(np.random.default_rng([3, 3, 1]).integers(2))  # real part: seed 3, epoch 3, its item 1
    assert torch.equal(batch["feats"]["global"][1],
                       torch.from_numpy(mixed.real.arrays["global"][view, 1].astype(np.float32)))


def test_a_training_run_is_the_same_with_batched_reads(tiny_rn):
    """A few epochs of T2I-PAL over the mixed set: the loader that reads whole batches (as bench/cell/train.py's)
    gives the same losses and the same trained parameters as the item-by-item loader."""
    from bench.methods.t2ipal import T2IPAL

    results = []
    for data in (_mixed(), Batched(_mixed())):
        torch.manual_seed(0)
        method = T2IPAL()
        method.build(tiny_rn, ["red", "green", "blue", "yellow"])
        model = CellModel(method)
        dataset = data.dataset if isinstance(data, Batched) else data
        loader = DataLoader(data, batch_size=5, sampler=EpochSampler(dataset, shuffle=True, seed=1),
                            collate_fn=collate_batch)
        params = [p for p in method.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
        losses = []
        for epoch in range(3):
            loader.sampler.set_epoch(epoch)
            for batch in loader:
                loss = model(batch["feats"], batch["targets"], mode="loss")["loss"]
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
        results.append((losses, [p.detach().clone() for p in params]))
    (losses, params), (batched_losses, batched_params) = results
    assert len(losses) == 3 * 4 and losses == batched_losses
    assert all(torch.equal(a, b) for a, b in zip(params, batched_params))

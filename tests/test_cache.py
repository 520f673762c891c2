"""Feature cache: hit, miss, invalidation, interruption and resume, never reading half-written entries."""

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data.base import DataError
from bench.data.coco import COCO2014
from bench.features.cache import FeatureCache


class Counter:
    """Wraps backbone.encode_images to count calls and optionally fail on the n-th."""

    def __init__(self, backbone, fail_on: int | None = None):
        self.inner, self.calls, self.fail_on = backbone.encode_images, 0, fail_on

    def __call__(self, pixels, kinds):
        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise KeyboardInterrupt("simulated kill")
        return self.inner(pixels, kinds)


@pytest.fixture
def images(tiny_coco):
    return COCO2014(str(tiny_coco[0])).load("train").image_paths  # 12 images


def _direct(backbone, paths, kind):
    pixels = torch.stack([backbone.preprocess(Image.open(p).convert("RGB")) for p in paths])
    return type(backbone).encode_images(backbone, pixels, (kind,))[kind].numpy()  # unpatched


def test_miss_then_hit_and_values(tmp_path, tiny_rn, images, monkeypatch):
    cache = FeatureCache(tmp_path, progress=False)
    counter = Counter(tiny_rn)
    monkeypatch.setattr(tiny_rn, "encode_images", counter)
    feats = cache.image_features(tiny_rn, images, ["global", "dense"], batch_size=5)
    assert counter.calls == 3  # ceil(12 / 5) chunks, both kinds in one pass
    assert feats["global"].shape == (1, 12, 32) and feats["dense"].shape == (1, 12, 5, 32)
    assert feats["global"].dtype == np.float16 and isinstance(feats["global"].base, np.memmap)
    np.testing.assert_allclose(feats["global"][0], _direct(tiny_rn, images, "global"), rtol=2e-3, atol=2e-3)
    again = cache.image_features(tiny_rn, images, ["global", "dense"], batch_size=5)
    assert counter.calls == 3  # hit: nothing recomputed
    np.testing.assert_array_equal(again["dense"], feats["dense"])
    cache.image_features(tiny_rn, images, ["global", "dense_nopos"], batch_size=5)
    assert counter.calls == 6  # only the new kind is computed


def test_invalidation_on_image_content_and_weights(tmp_path, tiny_rn, images, monkeypatch):
    cache = FeatureCache(tmp_path, progress=False)
    counter = Counter(tiny_rn)
    monkeypatch.setattr(tiny_rn, "encode_images", counter)
    paths = [str(tmp_path / f"{i}.png") for i in range(3)]
    for i, p in enumerate(paths):
        Image.open(images[i]).save(p)
    first = np.array(cache.image_features(tiny_rn, paths, ["global"])["global"])
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(paths[1])  # same path, new content
    second = np.array(cache.image_features(tiny_rn, paths, ["global"])["global"])
    assert counter.calls == 2
    np.testing.assert_array_equal(first[0, [0, 2]], second[0, [0, 2]])
    assert not np.array_equal(first[0, 1], second[0, 1])
    identity = tiny_rn.cache_identity()
    monkeypatch.setattr(tiny_rn, "cache_identity", lambda: {**identity, "weights_sha256": "other"})
    cache.image_features(tiny_rn, paths, ["global"])
    assert counter.calls == 3  # other weights: other key


def test_interrupted_extraction_resumes_without_recomputing(tmp_path, tiny_rn, images, monkeypatch):
    cache = FeatureCache(tmp_path, progress=False)
    counter = Counter(tiny_rn, fail_on=3)
    monkeypatch.setattr(tiny_rn, "encode_images", counter)
    with pytest.raises(KeyboardInterrupt):
        cache.image_features(tiny_rn, images, ["global"], batch_size=3)  # 4 chunks; killed in the 3rd
    entries = list((tmp_path / "features").glob("*/*"))
    assert len(entries) == 1 and not (entries[0] / "manifest.json").exists()
    assert sorted(p.name for p in (entries[0] / "chunks").iterdir()) == ["0", "1"]
    key = entries[0].name
    with pytest.raises(KeyError, match="not complete"):
        cache.read(key)  # a half-written entry is never read back
    counter.fail_on = None
    feats = cache.image_features(tiny_rn, images, ["global"], batch_size=3)
    assert counter.calls == 2 + 1 + 2  # two done, one failed, then only the two missing chunks
    np.testing.assert_allclose(feats["global"][0], _direct(tiny_rn, images, "global"), rtol=2e-3, atol=2e-3)


def test_augmented_views_are_reproducible(tmp_path, tiny_rn, images):
    cache = FeatureCache(tmp_path, progress=False)
    aug = dict(scale=(0.5, 1.0), flip=True)
    feats = cache.image_features(tiny_rn, images[:4], ["global"], views=2, augment=aug)["global"]
    assert feats.shape == (2, 4, 32)
    assert not np.array_equal(feats[0], feats[1])  # two different views
    other = FeatureCache(tmp_path / "other", progress=False)
    np.testing.assert_array_equal(other.image_features(tiny_rn, images[:4], ["global"], views=2, augment=aug)["global"],
                                  feats)


def test_caption_features(tmp_path, tiny_rn):
    cache = FeatureCache(tmp_path, progress=False)
    captions = ["a dog", "two cats on a red sofa", "hot dog"]
    feats = cache.caption_features(tiny_rn, captions, batch_size=2)
    ids = tiny_rn.tokenize(captions)
    length = int((ids != 0).sum(1).max())
    assert feats["dense"].shape == (3, length, 32) and feats["dense_mask"].dtype == np.bool_
    np.testing.assert_array_equal(feats["dense_mask"], (ids[:, :length] != 0).numpy())
    np.testing.assert_allclose(feats["global"], tiny_rn.encode_text(captions).numpy(), rtol=2e-3, atol=2e-3)


def test_missing_and_corrupt_images_named(tmp_path, tiny_rn, images):
    cache = FeatureCache(tmp_path, progress=False)
    with pytest.raises(DataError, match="missing image: .*/gone.jpg"):
        cache.image_features(tiny_rn, [images[0], str(tmp_path / "gone.jpg")], ["global"])
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="corrupt image .*bad.jpg"):
        cache.image_features(tiny_rn, [images[0], str(bad)], ["global"])


def test_concurrent_fillers_compute_once(tmp_path, tiny_rn, images, monkeypatch):
    """Two workers sharing a cache (e.g. Slurm array tasks): one extracts, the other waits and reads."""
    import threading

    counter = Counter(tiny_rn)
    monkeypatch.setattr(tiny_rn, "encode_images", counter)
    results, errors = [], []

    def work():
        try:
            results.append(FeatureCache(tmp_path, progress=False).image_features(tiny_rn, images, ["global"],
                                                                                 batch_size=4))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2
    assert counter.calls == 3  # 12 images / 4 per chunk, computed by one worker only
    np.testing.assert_array_equal(results[0]["global"], results[1]["global"])


class PixelCounter(Counter):
    """Counts the images (not the calls) that go through the encoder."""

    def __init__(self, backbone):
        super().__init__(backbone)
        self.images = 0

    def __call__(self, pixels, kinds):
        self.images += len(pixels)
        return super().__call__(pixels, kinds)


def test_one_pass_stores_also_kinds(tmp_path, tiny_rn, images, monkeypatch):
    cache = FeatureCache(tmp_path, progress=False)
    counter = PixelCounter(tiny_rn)
    monkeypatch.setattr(tiny_rn, "encode_images", counter)
    feats = cache.image_features(tiny_rn, images, ["dense_nopos"], also=["global", "dense"], batch_size=5)
    assert list(feats) == ["dense_nopos"] and counter.images == 12
    later = cache.image_features(tiny_rn, images, ["global", "dense"], batch_size=5)  # another consumer
    assert counter.images == 12  # served by the first pass: nothing encoded again
    np.testing.assert_allclose(later["global"][0], _direct(tiny_rn, images, "global"), rtol=2e-3, atol=2e-3)


def test_overlapping_sets_encode_only_new_images(tmp_path, tiny_rn, images, monkeypatch):
    """A set containing an earlier set (T2I-PAL's x2 contains x1) copies the rows it already has."""
    cache = FeatureCache(tmp_path, progress=False)
    counter = PixelCounter(tiny_rn)
    monkeypatch.setattr(tiny_rn, "encode_images", counter)
    small = cache.image_features(tiny_rn, images[:6], ["global", "dense"], batch_size=4)
    assert counter.images == 6
    mixed = [images[i] for i in (7, 0, 8, 5, 1, 9)] + images[:6]  # new, old and repeated images, reordered
    big = cache.image_features(tiny_rn, mixed, ["global", "dense"], batch_size=4)
    assert counter.images == 6 + 3  # only images 7, 8 and 9 were encoded
    for kind in ("global", "dense"):
        np.testing.assert_array_equal(big[kind][0, 6:], small[kind][0])  # copied rows: the same bytes
        np.testing.assert_array_equal(big[kind][0, [1, 3, 4]], small[kind][0, [0, 5, 1]])
        np.testing.assert_allclose(big[kind][0], _direct(tiny_rn, mixed, kind), rtol=2e-3, atol=2e-3)
    cache.image_features(tiny_rn, images[6:], ["global"], batch_size=4)  # 6, 10, 11 new; 7, 8, 9 copied
    assert counter.images == 9 + 3
    cache.image_features(tiny_rn, images[6:], ["dense_nopos"], batch_size=4)
    assert counter.images == 12 + 6  # a kind no entry holds yet: every image encoded
    aug = dict(scale=(0.5, 1.0), flip=True)
    cache.image_features(tiny_rn, images[:6], ["global"], views=2, augment=aug, batch_size=4)
    assert counter.images == 18 + 12  # augmented views are never shared


def test_rows_of_a_deleted_entry_are_not_reused(tmp_path, tiny_rn, images, monkeypatch):
    import shutil

    cache = FeatureCache(tmp_path, progress=False)
    counter = PixelCounter(tiny_rn)
    monkeypatch.setattr(tiny_rn, "encode_images", counter)
    cache.image_features(tiny_rn, images[:4], ["global"])
    shutil.rmtree(tmp_path / "features")  # a cleaned cache; the row index stays
    feats = cache.image_features(tiny_rn, images[:6], ["global"])
    assert counter.images == 4 + 6
    np.testing.assert_allclose(feats["global"][0], _direct(tiny_rn, images[:6], "global"), rtol=2e-3, atol=2e-3)

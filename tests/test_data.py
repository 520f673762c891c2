"""Dataset readers on tiny fixtures in each real on-disk format; partial labels; few-shot subsets."""

import json

import numpy as np
import pytest

from bench.data.base import DataError, apply_partial_labels, few_shot_indices, partial_label_mask
from bench.data.coco import COCO2014
from bench.data.nuswide import NUSWIDE
from bench.data.voc import VOC2007, VOC_CLASSES
from bench.testing import write_coco, write_nuswide, write_voc


def test_coco_reader_labels_exact(tiny_coco):
    root, scenes = tiny_coco
    data = COCO2014(str(root))
    for split, stem in (("train", "train2014"), ("test", "val2014")):
        s = data.load(split)
        # categories sorted by COCO id: write_coco gives ids 11, 21, 31, 41 to red, green, blue, yellow
        assert s.classnames == ["red", "green", "blue", "yellow"]
        expected = np.array([[1 if c in present else -1 for c in s.classnames] for present in scenes[stem]])
        np.testing.assert_array_equal(s.labels, expected)
        assert s.image_paths[0].endswith(f"{stem}/COCO_{stem}_{1000:012d}.jpg")
        assert s.captions[0] == ["A picture of " + " and ".join(scenes[stem][0])]
    assert data.caption_corpus()[:2] == ["A picture of " + " and ".join(p) for p in scenes["train2014"][:2]]
    assert not data.has_split("val")  # no minival2014: the runner holds out nothing and uses the last epoch


def test_coco_unannotated_images(tmp_path):
    write_coco(tmp_path, n_train=3, n_test=3)
    path = tmp_path / "annotations" / "instances_val2014.json"
    ann = json.loads(path.read_text())
    first = ann["images"][0]["id"]
    ann["annotations"] = [a for a in ann["annotations"] if a["image_id"] != first]
    path.write_text(json.dumps(ann))
    assert len(COCO2014(str(tmp_path)).load("test")) == 2  # DualCoOp: only annotated images
    kept = COCO2014(str(tmp_path), keep_unannotated=True).load("test")  # TaI-DPT: all ids, all-negative row
    assert len(kept) == 3 and (kept.labels[0] == -1).all()


@pytest.mark.parametrize("difficult,cat_label", [("negative", -1), ("ignore", 0)])
def test_voc_reader_difficult(tmp_path, difficult, cat_label):
    write_voc(tmp_path)
    train = VOC2007(str(tmp_path), difficult=difficult).load("train")
    col = {c: i for i, c in enumerate(VOC_CLASSES)}
    assert train.image_ids == ["000001", "000002", "000003"]
    expected = np.full((3, 20), -1)
    expected[0, [col["dog"], col["person"]]] = 1
    expected[1, col["cat"]] = cat_label  # difficult only
    expected[2, [col["car"], col["bus"]]] = 1  # a non-difficult car makes it positive
    np.testing.assert_array_equal(train.labels, expected)
    test = VOC2007(str(tmp_path), difficult=difficult).load("test")
    assert test.labels[0, col["tvmonitor"]] == 1 and test.labels[0, col["pottedplant"]] == cat_label
    assert test.image_paths[1].endswith("JPEGImages/000005.jpg")


def test_nuswide_reader(tmp_path):
    truth = write_nuswide(tmp_path)
    data = NUSWIDE(str(tmp_path))
    for split, tag in (("train", "Train"), ("test", "Test")):
        s = data.load(split)
        assert s.classnames == ["sky", "water", "dog"]
        np.testing.assert_array_equal(s.labels, np.where(truth[tag]["labels"] == 1, 1, -1))
        assert s.image_paths[0].endswith(f"Flickr/actor/{tag.lower()}_0000.jpg")


def test_nuswide_misaligned_label_file(tmp_path):
    write_nuswide(tmp_path)
    (tmp_path / "TrainTestLabels" / "Labels_sky_Test.txt").write_text("1\n0\n")
    with pytest.raises(DataError, match="Labels_sky_Test.txt: expected 3 lines"):
        NUSWIDE(str(tmp_path)).load("test")


def test_missing_root_and_annotation(tmp_path):
    with pytest.raises(DataError, match="missing coco2014 data root"):
        COCO2014(str(tmp_path / "nope")).load("train")
    (tmp_path / "annotations").mkdir()
    with pytest.raises(DataError, match="instances_train2014.json"):
        COCO2014(str(tmp_path)).load("train")
    (tmp_path / "annotations" / "instances_train2014.json").write_text("{not json")
    with pytest.raises(DataError, match="corrupt annotation file"):
        COCO2014(str(tmp_path)).load("train")
    with pytest.raises(DataError, match="ImageSets/Main/trainval.txt"):
        VOC2007(str(tmp_path)).load("train")


@pytest.mark.parametrize("reader, valid", [(COCO2014, "['test', 'train', 'val']"), (VOC2007, "['test', 'train']"),
                                           (NUSWIDE, "['test', 'train']")])
def test_a_split_the_reader_has_not_is_one_line_naming_the_valid_ones(tmp_path, reader, valid):
    dataset = reader(str(tmp_path))
    assert not dataset.has_split("holdout")
    with pytest.raises(DataError) as info:
        dataset.load("holdout")
    assert str(info.value) == f"{dataset.name} has no split 'holdout'; valid: {valid}"


def test_partial_labels_probability_seed_and_nesting():
    labels = np.where(np.random.default_rng(0).random((400, 50)) < 0.2, 1, -1).astype(np.int8)
    split_mask = partial_label_mask(labels.shape, 0.3, seed=1)
    assert split_mask.mean() == pytest.approx(0.3, abs=0.01)
    np.testing.assert_array_equal(split_mask, partial_label_mask(labels.shape, 0.3, seed=1))  # reproducible
    assert (split_mask != partial_label_mask(labels.shape, 0.3, seed=2)).any()  # seed matters
    assert (partial_label_mask(labels.shape, 0.1, 1) <= partial_label_mask(labels.shape, 0.5, 1)).all()  # nested
    assert partial_label_mask(labels.shape, 1.0, 1).all()
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"label ratio must be in \(0, 1\]"):
            partial_label_mask(labels.shape, bad, 1)


def test_apply_partial_labels_keeps_known_values(tiny_coco):
    split = COCO2014(str(tiny_coco[0])).load("train")
    masked = apply_partial_labels(split, 0.5, seed=3)
    keep = partial_label_mask(split.labels.shape, 0.5, 3)
    np.testing.assert_array_equal(masked.labels[keep], split.labels[keep])
    assert (masked.labels[~keep] == 0).all()
    assert masked.image_paths == split.image_paths


def test_few_shot_indices_cover_every_class():
    labels = np.where(np.random.default_rng(5).random((300, 6)) < 0.25, 1, -1)
    idx = few_shot_indices(labels, shots=4, seed=0)
    assert ((labels[idx] == 1).sum(0) >= 4).all()
    np.testing.assert_array_equal(idx, few_shot_indices(labels, shots=4, seed=0))


def test_few_shot_selections_are_nested_across_k_and_seeded():
    labels = np.where(np.random.default_rng(7).random((400, 8)) < np.linspace(0.02, 0.4, 8), 1, -1)
    labels[:, 0] = -1
    labels[[3, 50], 0] = 1  # a class with only 2 positives: it keeps both from K = 2 on
    sets = {k: few_shot_indices(labels, shots=k, seed=3) for k in (1, 2, 4, 8, 16)}
    for small, large in [(1, 2), (2, 4), (4, 8), (8, 16)]:
        assert set(sets[small]) <= set(sets[large]) and len(sets[small]) < len(sets[large])
    for k, idx in sets.items():
        counts = (labels[idx] == 1).sum(0)
        assert (counts >= np.minimum(k, (labels == 1).sum(0))).all()
    assert set(sets[2]) >= {3, 50}
    # K = 1 by hand: images in the seed's priority order; classes rarest first; an image counts for
    # every class it shows
    priority = list(np.random.default_rng([3, 16]).permutation(len(labels)))
    chosen: list[int] = []
    for c in np.argsort((labels == 1).sum(0), kind="stable"):
        if not any(labels[i, c] == 1 for i in chosen):
            chosen.append(next(i for i in priority if labels[i, c] == 1 and i not in chosen))
    np.testing.assert_array_equal(sets[1], sorted(chosen))
    np.testing.assert_array_equal(sets[16], few_shot_indices(labels, shots=16, seed=3))  # seeded
    assert set(few_shot_indices(labels, shots=4, seed=4)) != set(sets[4])
    with pytest.raises(ValueError, match="shots"):
        few_shot_indices(labels, shots=0, seed=3)


def test_coco_caption_corpus_one_per_image(tmp_path):
    write_coco(tmp_path, n_train=5, n_test=2)
    path = tmp_path / "annotations" / "captions_train2014.json"
    caps = json.loads(path.read_text())
    first = [a["caption"] for a in caps["annotations"]]
    caps["annotations"] += [{"id": 100 + a["id"], "image_id": a["image_id"], "caption": "second " + a["caption"]}
                            for a in caps["annotations"]]
    path.write_text(json.dumps(caps))
    assert COCO2014(str(tmp_path)).caption_corpus() == first  # TaI-DPT: one caption per image, the first
    assert len(COCO2014(str(tmp_path), captions_per_image=None).caption_corpus()) == 10
    voc = VOC2007(str(tmp_path), caption_file=str(path))  # VOC trains on the same COCO sample (TaI-DPT)
    assert voc.caption_corpus() == first
    assert len(VOC2007(str(tmp_path), caption_file=str(path), captions_per_image=None).caption_corpus()) == 10

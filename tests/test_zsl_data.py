"""Seen/unseen class splits (the zsl setting): shipped files against their sources, validation, views."""

import json

import numpy as np
import pytest

from bench.data.base import DataError
from bench.data.zsl import builtin_splits, class_view, load_zsl_split

# DualCoOp's 80 COCO class names (sunxm2357/DualCoOp@49e71d7 dataloaders/coco_detection.py:18-29) and the
# official COCO 2014 category ids in the same order.
COCO_80 = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
]
COCO_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
            33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
            60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]
# Bansal et al.'s unseen COCO ids, as facebookresearch/Detic@1c21c9b9 detic/data/datasets/coco_zeroshot.py:59-77
BANSAL_UNSEEN_IDS = [5, 6, 17, 18, 21, 22, 28, 32, 36, 41, 47, 49, 61, 63, 76, 81, 87]


def _raw(name):
    from bench.data.zsl import ZSL_DIR

    return json.loads((ZSL_DIR / f"{name}.json").read_text())


def test_coco_split_matches_bansal():
    raw = _raw("coco_48_17")
    name_of = dict(zip(COCO_IDS, COCO_80))
    assert raw["unseen_coco_ids"] == BANSAL_UNSEEN_IDS
    # the names are the ids' COCO names, in id order; seen = the other annotated ids of Bansal's 65
    assert raw["unseen"] == [name_of[i] for i in BANSAL_UNSEEN_IDS]
    assert raw["seen"] == [name_of[i] for i in raw["seen_coco_ids"]]
    assert len(raw["seen"]) == 48 and not set(raw["seen_coco_ids"]) & set(BANSAL_UNSEEN_IDS)
    seen, unseen = load_zsl_split("coco_48_17").resolve(COCO_80, "COCO")
    assert (len(seen), len(unseen)) == (48, 17)
    # the 15 classes in neither list (Bansal dropped them: too few instances or no WordNet synset)
    assert sorted(set(COCO_80) - set(seen) - set(unseen)) == sorted([
        "traffic light", "fire hydrant", "stop sign", "parking meter", "sports ball", "baseball bat",
        "baseball glove", "tennis racket", "wine glass", "hot dog", "potted plant", "dining table", "cell phone",
        "teddy bear", "hair drier"])


def test_nuswide_split_is_the_81_concepts():
    from bench.data.captions import load_synonyms

    raw = _raw("nuswide_925_81")
    concepts = [c["name"] for c in load_synonyms("nuswide")["classes"]]  # the NUS-WIDE reader's concept names
    assert len(raw["unseen"]) == 81 and sorted(raw["unseen"]) == sorted(concepts)
    assert raw["seen"] == "rest" and raw["seen_count"] == 925


def test_toy_split_unseen_classes_in_test():
    from bench.toy.build import SPLITS
    from bench.toy.world import CLASSES, generate_example

    seen, unseen = load_zsl_split("toy_15_5").resolve(list(CLASSES), "toy")
    assert (len(seen), len(unseen)) == (15, 5)
    present = set()
    for index in range(100):  # the first 100 images of the default toy test split (seed 0)
        present |= {CLASSES[o.label] for o in generate_example(0, SPLITS["test"][0], index, 128).scene.objects}
    assert set(unseen) <= present


def test_every_builtin_split_loads():
    assert {"coco_48_17", "nuswide_925_81", "toy_15_5"} <= set(builtin_splits())
    for name in builtin_splits():
        split = load_zsl_split(name)
        assert split.source and split.unseen


def _write_split(tmp_path, seen, unseen, **extra):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"seen": seen, "unseen": unseen, "source": "test", **extra}))
    return str(path)


def test_unknown_names_rejected(tmp_path):
    split = load_zsl_split(_write_split(tmp_path, ["red", "purple"], ["yellow", "mauve"]))
    with pytest.raises(DataError, match=r"split\.json: 2 class name\(s\) not in the test list: \['mauve', 'purple'\]"):
        split.resolve(["red", "green", "blue", "yellow"], "the test list")
    both = load_zsl_split(_write_split(tmp_path, ["red", "yellow"], ["yellow"]))
    with pytest.raises(DataError, match=r"listed twice.*\['yellow'\]"):
        both.resolve(["red", "yellow"], "x")
    counted = load_zsl_split(_write_split(tmp_path, "rest", ["yellow"], seen_count=2))
    with pytest.raises(DataError, match="3 seen classes in x, the file says 2"):
        counted.resolve(["red", "green", "blue", "yellow"], "x")
    with pytest.raises(DataError, match="zsl split file not found.*built-in: coco_48_17"):
        load_zsl_split("no_such_split")
    with pytest.raises(DataError, match="no seen/unseen split.*dataset.zsl_split"):
        load_zsl_split(None, "voc2007")


def test_resolve_keeps_dataset_order_and_rest(tmp_path):
    split = load_zsl_split(_write_split(tmp_path, "rest", ["blue"]))
    assert split.resolve(["red", "green", "blue", "yellow"], "x") == (["red", "green", "yellow"], ["blue"])
    split = load_zsl_split(_write_split(tmp_path, ["yellow", "red"], ["green"]))
    assert split.resolve(["red", "green", "blue", "yellow"], "x") == (["red", "yellow"], ["green"])


def test_class_view_rows_and_columns(tiny_coco):
    from bench.data.coco import COCO2014

    root, scenes = tiny_coco
    test = COCO2014(str(root)).load("test")
    view, rows = class_view(test, ["green", "yellow"])
    expected_rows = [i for i, present in enumerate(scenes["val2014"]) if {"green", "yellow"} & set(present)]
    assert rows.tolist() == expected_rows and view.classnames == ["green", "yellow"]
    np.testing.assert_array_equal(view.labels, test.labels[expected_rows][:, [1, 3]])
    assert view.image_paths == [test.image_paths[i] for i in expected_rows]


def test_nuswide_zsl_class_list_adds_tags(tmp_path):
    from bench.data.nuswide import NUSWIDE
    from bench.testing import write_nuswide

    truth = write_nuswide(tmp_path, tags=("cat", "sky", "sunset"))  # "sky" is a tag and a concept
    data = NUSWIDE(str(tmp_path))
    for split, tag in (("train", "Train"), ("test", "Test")):
        s = data.load_zsl(split)
        assert s.classnames == ["cat", "sunset", "sky", "water", "dog"]
        tags = truth[tag]["tags"][:, [0, 2]]
        expected = np.concatenate([tags, truth[tag]["labels"]], axis=1)
        np.testing.assert_array_equal(s.labels, np.where(expected == 1, 1, -1))
    (tmp_path / "NUS_WID_Tags" / "AllTags1k.txt").write_text("1 0 1\n")
    with pytest.raises(DataError, match="AllTags1k.txt: 1 rows, but ImageList/Imagelist.txt lists 7"):
        data.load_zsl("test")

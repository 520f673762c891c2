"""What a record is keyed by besides its config (the data's content), and the lock one cell is run under."""

import json
import logging
import shutil
import threading
import time

import numpy as np
import pytest
from PIL import Image

from bench.cell.datakey import DataKeys, split_digest
from bench.data.coco import COCO2014
from bench.features.cache import FeatureCache
from bench.locking import exclusive, holder


def _keys(root, cache_dir, calls=None):
    dataset = COCO2014(str(root))
    cache = FeatureCache(cache_dir, progress=False)

    def hashes(paths):
        if calls is not None:
            calls.append(len(paths))
        return cache.file_hashes(paths)

    return DataKeys(dataset, dataset.load, hashes)


@pytest.fixture
def coco(tmp_path, tiny_coco):
    root = tmp_path / "coco"
    shutil.copytree(tiny_coco[0], root)
    return root


def test_digest_follows_annotations_images_and_captions(tmp_path, coco):
    calls = []
    keys = _keys(coco, tmp_path / "cache", calls)
    zero_shot, image_trained = keys.for_cell(None, "test"), keys.for_cell("images", "test")
    caption_trained = keys.for_cell("captions", "test")
    assert set(zero_shot) == {"key", "eval:test"} and set(image_trained) == {"key", "eval:test", "train"}
    assert set(caption_trained) == {"key", "eval:test", "captions"}
    assert len({zero_shot["key"], image_trained["key"], caption_trained["key"]}) == 3
    assert calls == [8, 12]  # each split's images hashed once per process, however many cells ask
    assert _keys(coco, tmp_path / "cache").for_cell("images", "test") == image_trained  # same data, same key

    # a dropped annotation (one label of one test image): the test digest changes, the train digest does not
    path = coco / "annotations" / "instances_val2014.json"
    ann = json.loads(path.read_text())
    ann["annotations"] = ann["annotations"][1:]
    path.write_text(json.dumps(ann))
    edited = _keys(coco, tmp_path / "cache").for_cell("images", "test")
    assert edited["eval:test"] != image_trained["eval:test"] and edited["train"] == image_trained["train"]
    # the same annotations written with other formatting read the same: same digest
    path.write_text(json.dumps(ann, indent=2))
    assert _keys(coco, tmp_path / "cache").for_cell("images", "test") == edited

    # a replaced training image (same name, new pixels)
    image = sorted((coco / "train2014").iterdir())[3]
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(image)
    replaced = _keys(coco, tmp_path / "cache").for_cell("images", "test")
    assert replaced["train"] != edited["train"] and replaced["eval:test"] == edited["eval:test"]

    # an edited training caption: only caption-trained cells see it
    path = coco / "annotations" / "captions_train2014.json"
    caps = json.loads(path.read_text())
    caps["annotations"][0]["caption"] += " and a dog"
    path.write_text(json.dumps(caps))
    assert _keys(coco, tmp_path / "cache").for_cell("captions", "test")["captions"] != caption_trained["captions"]


def test_split_digest_covers_labels_bytes(tiny_coco):
    split = COCO2014(str(tiny_coco[0])).load("test")
    hashes = ["h"] * len(split)
    labels = split.labels.copy()
    labels[0, 0] = -labels[0, 0]
    import dataclasses

    assert split_digest(dataclasses.replace(split, labels=labels), hashes) != split_digest(split, hashes)
    assert split_digest(split, hashes) == split_digest(split, list(hashes))
    assert split_digest(split, ["x"] + hashes[1:]) != split_digest(split, hashes)


def test_lock_skips_or_waits_and_names_the_holder(tmp_path, caplog):
    path = tmp_path / "cell.lock"
    released = threading.Event()
    order = []

    def other():
        with exclusive(path, "cell x") as held:
            assert held
            order.append("other holds")
            released.wait(5)
            order.append("other releases")

    thread = threading.Thread(target=other)
    thread.start()
    while not order:
        time.sleep(0.01)
    import os

    assert holder(path) == str(os.getpid())
    with exclusive(path, "cell x", wait=False) as held:
        assert held is False  # busy: the caller skips it
    threading.Timer(0.3, released.set).start()
    with caplog.at_level(logging.WARNING, logger="bench"), exclusive(path, "cell x") as held:
        order.append("waiter holds")
        assert held
    thread.join()
    assert order == ["other holds", "other releases", "waiter holds"]
    assert caplog.messages == [f"cell x is locked by another process (pid {os.getpid()}); waiting for it"]


def _run(config, work, root, *extra):
    from bench.cli import main

    return main(["run", "--methods", "zsclip", "--dataset", str(config), "--work-dir", str(work), "--quiet",
                 "--data-root", str(root), *extra])


def test_edited_annotation_makes_the_record_stale(tmp_path, tiny_config, coco, capsys, caplog):
    work = tmp_path / "w"
    assert _run(tiny_config, work, coco) == 0
    record_path = work / "tiny" / "records" / "coco2014" / "zsclip__zero-shot__s1.json"
    old = json.loads(record_path.read_text())
    assert set(old["data_digests"]) == {"eval:test"} and len(old["data_key"]) == 16
    capsys.readouterr()
    assert _run(tiny_config, work, coco, "--dry-run") == 0
    assert "done  coco2014  zsclip__zero-shot__s1\n" in capsys.readouterr().out

    # one test image loses a label (its first annotation): the record no longer follows the data
    path = coco / "annotations" / "instances_val2014.json"
    ann = json.loads(path.read_text())
    ann["annotations"] = ann["annotations"][1:]
    path.write_text(json.dumps(ann))
    assert _run(tiny_config, work, coco, "--dry-run") == 0
    assert ("stale  coco2014  zsclip__zero-shot__s1  (data (eval:test) changed since the record was written)"
            in capsys.readouterr().out)
    with caplog.at_level(logging.WARNING, logger="bench"):
        assert _run(tiny_config, work, coco) == 0
    assert "zsclip__zero-shot__s1: stale: data (eval:test) changed since the record was written; recomputing" \
        in caplog.messages
    new = json.loads(record_path.read_text())
    assert new["config_hash"] == old["config_hash"] and new["data_key"] != old["data_key"]
    # the recomputed record is what a fresh run on the edited data gives, and differs from the old one
    assert _run(tiny_config, tmp_path / "fresh", coco) == 0
    fresh = json.loads((tmp_path / "fresh" / "tiny" / "records" / "coco2014" / record_path.name).read_text())
    assert new["mAP"] == fresh["mAP"] and new["per_class_AP"] == fresh["per_class_AP"] and new["mAP"] != old["mAP"]
    capsys.readouterr()
    assert _run(tiny_config, work, coco, "--dry-run") == 0
    assert "done  coco2014  zsclip__zero-shot__s1\n" in capsys.readouterr().out



def test_zsl_cells_key_the_splits_as_read_for_zsl(tmp_path, coco):
    dataset = COCO2014(str(coco))
    cache = FeatureCache(tmp_path / "cache", progress=False)
    read = []

    def load(name):
        read.append(name)
        return dataset.load(name.removeprefix("zsl:"))

    keys = DataKeys(dataset, load, cache.file_hashes)
    plain, zsl = keys.for_cell("images", "test"), keys.for_cell("images", "test", "zsl")
    assert read == ["test", "train", "zsl:test", "zsl:train"] and set(zsl) == {"key", "eval:test", "train"}
    assert zsl == plain  # COCO reads the same splits for zsl (NUS-WIDE adds its tag columns)

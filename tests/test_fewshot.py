"""Few-shot cells per K (plan, names, records, nested seeded selections) and T2I-PAL with labelled real images
in the partial and few-shot settings (its validation hold-out, disjoint from what it trains on)."""

import json

import numpy as np
import pytest

from bench.cell.plan import Cell
from bench.config import load_config
from bench.data.base import few_shot_indices
from bench.grid.sweep import plan_cells


def test_few_shot_cells_per_k_in_the_plan(tiny_config):
    cfg = load_config(str(tiny_config), {"sweep.shots": [1, 2]})
    cells = plan_cells(["zsclip", "coop", "t2ipal"], "coco2014", ["zero-shot", "partial", "fewshot"], [0.5], [1, 2],
                       cfg)
    names = {c.name for c in cells}
    assert names == {"zsclip__zero-shot__s1",
                     *{f"coop__{p}__s{s}" for p in ("partial_r0.5", "fewshot_k1", "fewshot_k2") for s in (1, 2)},
                     *{f"t2ipal__{p}__s{s}" for p in ("zero-shot", "partial_r0.5", "fewshot_k1", "fewshot_k2")
                       for s in (1, 2)}}
    assert {c.shots for c in cells if c.setting == "fewshot"} == {1, 2}
    assert all(c.shots is None for c in cells if c.setting != "fewshot")
    only = plan_cells(["t2ipal"], "coco2014", ["zero-shot", "fewshot"], [0.5], [1],
                      load_config(str(tiny_config), {"sweep.method_settings": {"t2ipal": ["zero-shot"]}}))
    assert [c.name for c in only] == ["t2ipal__zero-shot__s1"]
    assert [c.shots for c in plan_cells(["coop"], "coco2014", ["fewshot"], [0.5], [1], cfg, shots=[4])] == [4]
    with pytest.raises(ValueError, match="shots must be a positive integer"):
        Cell("coop", "coco2014", "fewshot", None, 1)
    with pytest.raises(ValueError, match="only for the fewshot setting"):
        Cell("coop", "coco2014", "partial", 0.5, 1, shots=4)


def test_few_shot_records_per_k_with_nested_seeded_images(tmp_path, tiny_config):
    from bench.cell.session import Session
    from bench.cell.trainsets import image_training_data
    from bench.cli import main
    from bench.registry import METHODS, lookup

    work = tmp_path / "w"
    assert main(["run", "--methods", "coop", "--dataset", str(tiny_config), "--work-dir", str(work), "--quiet",
                 "--settings", "fewshot", "--shots", "1,2", "--seeds", "3", "--cfg-options", "coop.train.epochs=1",
                 "coop.train.warmup_epochs=0"]) == 0
    records = {p.stem: json.loads(p.read_text()) for p in work.glob("**/records/**/coop__*.json")}
    assert set(records) == {"coop__fewshot_k1__s3", "coop__fewshot_k2__s3"}
    for k in (1, 2):
        record = records[f"coop__fewshot_k{k}__s3"]
        assert record["shots"] == k and record["label_ratio"] is None and record["train_data"]["shots"] == k
    cfg = load_config(str(tiny_config))
    session = Session(cfg, tmp_path / "s", device="cpu", progress=False)
    method = lookup(METHODS, "coop")()
    backbone = session.backbone()
    rows = {k: image_training_data(session, Cell("coop", "coco2014", "fewshot", None, 3, shots=k), method,
                                   backbone).dataset.rows for k in (1, 2, 4)}
    labels = session.split("train").labels
    for k, chosen in rows.items():
        np.testing.assert_array_equal(chosen, few_shot_indices(labels, k, 3))  # the seeded selection
    for k in (1, 2):
        assert records[f"coop__fewshot_k{k}__s3"]["train_data"]["n_images"] == len(rows[k])
    assert set(rows[1]) <= set(rows[2]) <= set(rows[4])


def test_t2ipal_trains_on_labelled_images_and_tunes_on_a_disjoint_hold_out(tmp_path, tiny_config):
    from bench.cell.session import Session
    from bench.cell.validation import holdout_rows
    from bench.cli import main

    synonyms = tmp_path / "synonyms.json"
    cfg = load_config(str(tiny_config))
    session = Session(cfg, tmp_path / "s", device="cpu", progress=False)
    train = session.split("train")
    synonyms.write_text(json.dumps({"classes": [{"name": c, "synonyms": [c]} for c in train.classnames]}))
    work = tmp_path / "w"
    options = ["t2ipal.train.epochs=1", "t2ipal.train.batch_size=64", "t2ipal.template_captions=False",
               "t2ipal.generator.size=64", f"dataset.synonyms={synonyms}"]
    assert main(["run", "--methods", "t2ipal", "--dataset", str(tiny_config), "--work-dir", str(work), "--quiet",
                 "--settings", "partial,fewshot", "--ratios", "0.5", "--shots", "1", "--cfg-options", *options]) == 0
    records = {p.stem: json.loads(p.read_text()) for p in work.glob("**/records/**/t2ipal__*.json")}
    partial, fewshot = records["t2ipal__partial_r0.5__s1"], records["t2ipal__fewshot_k1__s1"]
    for record, cell in ((partial, Cell("t2ipal", "coco2014", "partial", 0.5, 1)),
                         (fewshot, Cell("t2ipal", "coco2014", "fewshot", None, 1, shots=1))):
        held = holdout_rows(session, cell)  # 20% of the cell's training images: 2 of 12, 1 of the 3 one-shot images
        validation = record["validation"]
        assert validation["split"] == "train hold-out" and validation["n_images"] == len(held) > 0
        assert validation["chosen"] == {k: validation["chosen"][k] for k in ("gl_merge_rate", "proto_weight")}
        assert len(validation["grid"]) == 20 and np.isfinite(record["mAP"])
        assert record["train_data"]["n_generated"] > 0
    assert partial["validation"]["n_images"] == 2 and partial["train_data"]["n_real"] == len(train) - 2
    assert 0 < partial["train_data"]["real_known_label_fraction"] < 1  # known labels only
    shots = few_shot_indices(train.labels, 1, 1)
    held = holdout_rows(session, Cell("t2ipal", "coco2014", "fewshot", None, 1, shots=1))
    assert set(held) < set(shots) and fewshot["train_data"]["n_real"] == len(shots) - len(held) == 2


def test_no_hold_out_left_keeps_the_configured_weights(tmp_path, tiny_config, monkeypatch):
    import bench.cell.validation as validation
    from bench.cell.session import Session

    session = Session(load_config(str(tiny_config)), tmp_path / "s", device="cpu", progress=False)
    cell = Cell("t2ipal", "coco2014", "fewshot", None, 1, shots=1)
    assert len(validation.holdout_rows(session, cell)) == 1  # 20% of the 3 one-shot images
    monkeypatch.setattr(validation, "holdout_rows", lambda session, cell: np.zeros(0, np.int64))  # e.g. 2 images

    class Tuned:
        def tuning_grid(self):
            return [{"gl_merge_rate": 0.5}]

    entry = validation.tune_on_validation(session, cell, Tuned(), backbone=None)
    assert entry["n_images"] == 0 and entry["chosen"] is None and "configured values" in entry["note"]

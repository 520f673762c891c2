"""The zsl setting end to end on the tiny COCO fixture: no unseen label or class name reaches training (spy
methods record everything they are given), ZSL/GZSL evaluation, skipping class-specific methods, the report."""

import json
import logging
import statistics

import numpy as np
import pytest
import torch
from mmengine.config import Config

from bench.analysis.metrics import average_precision, top_k_prf, zsl_metrics
from bench.methods.clip_lora import CLIPLoRA
from bench.methods.coop import CoOp
from bench.methods.taidpt import TaIDPT
from bench.registry import METHODS

SEEN, UNSEEN = ["red", "green", "blue"], ["yellow"]
EVENTS: list[tuple] = []


class Spy:
    """Records every class list and label-matrix width a method is given (mixed in before the method)."""

    def build(self, backbone, classnames):
        EVENTS.append(("build", self.name, list(classnames)))
        super().build(backbone, classnames)

    def rebuild(self, classnames):
        EVENTS.append(("rebuild", self.name, list(classnames)))
        super().rebuild(classnames)

    def loss(self, logits, targets):
        scores = logits["score"] if isinstance(logits, dict) else logits
        EVENTS.append(("loss", self.name, tuple(targets.shape), tuple(scores.shape)))
        return super().loss(logits, targets)


class SpyCoOp(Spy, CoOp):
    name = "spy_coop"


class SpyTaIDPT(Spy, TaIDPT):
    """Also records the caption texts and the template-caption classes it is given."""

    name = "spy_taidpt"

    def select_captions(self, captions, labels):
        EVENTS.append(("captions", self.name, list(captions), labels.shape))
        return super().select_captions(captions, labels)

    def extra_captions(self, classnames):
        EVENTS.append(("template_classes", self.name, list(classnames)))
        return super().extra_captions(classnames)


class SpyLoRA(Spy, CLIPLoRA):
    """Also records the image features its own (LoRA) image tower encodes and those its logits are given."""

    name = "spy_lora"

    def encode_pixels(self, pixels):
        out = super().encode_pixels(pixels)
        EVENTS.append(("pixels", self.name, self.training, out["global"].detach().clone()))
        return out

    def logits(self, feats):
        EVENTS.append(("logits", self.name, self.training, feats["global"].detach().clone()))
        return super().logits(feats)


@pytest.fixture
def spies():
    for cls in (SpyCoOp, SpyTaIDPT, SpyLoRA):
        METHODS.register_module(name=cls.name, module=cls, force=True)
    EVENTS.clear()
    yield
    for cls in (SpyCoOp, SpyTaIDPT, SpyLoRA):
        METHODS.module_dict.pop(cls.name, None)


@pytest.fixture
def zsl_config(tmp_path, tiny_coco, tiny_rn_cfg):
    from bench.testing import write_tiny_config

    split = tmp_path / "colours_3_1.json"
    split.write_text(json.dumps({"name": "colours_3_1", "source": "test", "seen": SEEN, "unseen": UNSEEN}))
    synonyms = tmp_path / "colours.json"
    synonyms.write_text(json.dumps({"classes": [{"name": c, "synonyms": []} for c in SEEN + UNSEEN]}))
    dataset = {"type": "coco2014", "data_root": str(tiny_coco[0]), "zsl_split": str(split), "synonyms": str(synonyms)}
    extra = ("spy_coop = dict(train=dict(epochs=2, batch_size=4, warmup_epochs=0))\n"
             "spy_taidpt = dict(template_captions=True, default_prompt_copies=1, "
             "train=dict(epochs=1, batch_size=8, warmup_epochs=0))\n")
    return write_tiny_config(tmp_path / "tiny.py", dataset, tiny_rn_cfg, extra)


def _run(config, tmp_path, methods):
    from bench.cli import main

    code = main(["run", "--methods", methods, "--dataset", str(config), "--settings", "zsl", "--work-dir",
                 str(tmp_path / "wd"), "--device", "cpu", "--quiet", "--cfg-options", "diagnostics.enabled=False"])
    assert code == 0
    return sorted((tmp_path / "wd" / "tiny" / "records" / "coco2014").glob("*__zsl__s1.json"))


def test_no_unseen_label_or_name_reaches_training(spies, zsl_config, tmp_path, tiny_coco):
    _run(zsl_config, tmp_path, "spy_coop,spy_taidpt")
    for name in ("spy_coop", "spy_taidpt"):
        events = [e for e in EVENTS if e[1] == name]
        kinds = [e[0] for e in events]
        assert events[0] == ("build", name, SEEN)  # built for the seen classes only
        losses = [e for e in events if e[0] == "loss"]
        assert losses and all(e[2][1] == 3 and e[3][1] == 3 for e in losses)  # 3 seen label columns, 3 scores
        last_loss = max(i for i, k in enumerate(kinds) if k == "loss")
        rebuilds = [(i, e[2]) for i, e in enumerate(events) if e[0] == "rebuild"]
        assert [names for _, names in rebuilds] == [UNSEEN, SEEN + UNSEEN]
        assert all(i > last_loss for i, _ in rebuilds)  # unseen names only after training
    captions = next(e for e in EVENTS if e[0] == "captions")
    assert captions[2] and not any("yellow" in c.lower() for c in captions[2]) and captions[3][1] == 3
    assert next(e for e in EVENTS if e[0] == "template_classes")[2] == SEEN


def test_zsl_and_gzsl_blocks_match_the_saved_scores(spies, zsl_config, tmp_path, tiny_coco):
    paths = _run(zsl_config, tmp_path, "spy_coop,zsclip")
    scenes = tiny_coco[1]
    has = {c: [c in present for present in scenes["val2014"]] for c in SEEN + UNSEEN}
    train_rows = sum(any(c in present for c in SEEN) for present in scenes["train2014"])
    for path in paths:
        record = json.loads(path.read_text())
        assert record["zsl_split"]["seen"] == SEEN and record["zsl_split"]["unseen"] == UNSEEN
        assert record["zsl"]["n_images"] == sum(has["yellow"]) and record["zsl"]["n_classes"] == 1
        assert record["gzsl"]["n_images"] == len(scenes["val2014"]) and record["gzsl"]["n_classes"] == 4
        if record["method"] == "spy_coop":
            assert record["train_data"]["n_images"] == train_rows
        with np.load(path.with_suffix(".scores.npz")) as saved:  # the ZSL view: unseen column, its images
            scores, labels = saved["score__score"], saved["labels"]
        expected = np.where(np.array(has["yellow"])[has["yellow"]], 1, -1)[:, None]
        np.testing.assert_array_equal(labels, expected)
        assert record["mAP"] == pytest.approx(100 * average_precision(scores, labels)[0])
        assert record["zsl"]["F1@3"] == pytest.approx(top_k_prf(scores, labels, 3)["F1"])
        assert list(record["zsl"]["per_class_AP"]) == UNSEEN and list(record["gzsl"]["per_class_AP"]) == SEEN + UNSEEN
    # the split file is part of the cell's key: edited, the records are stale
    from bench.cell.datakey import dry_run_keys
    from bench.cell.plan import Cell, plan_cell, record_state
    from bench.config import load_config

    cfg = load_config(str(zsl_config))
    cell = Cell("zsclip", "coco2014", "zsl", None, 1)
    record = next(p for p in paths if p.name.startswith("zsclip"))
    data = dry_run_keys(cfg, record.parents[2])
    assert record_state(record, plan_cell(cfg, cell), data) == "done"
    split = tmp_path / "colours_3_1.json"
    split.write_text(split.read_text() + "\n")
    assert record_state(record, plan_cell(cfg, cell), data) == "stale"


def test_zsl_scores_the_test_images_through_a_trained_image_tower(spies, tmp_path, tiny_coco, tiny_vit_cfg):
    """CLIP-LoRA on a ViT trains the image tower: ZSL and GZSL score the test images its trained tower encodes
    after training, not the frozen backbone's cached features."""
    from bench.testing import write_tiny_config

    split = tmp_path / "colours_3_1.json"
    split.write_text(json.dumps({"name": "colours_3_1", "source": "test", "seen": SEEN, "unseen": UNSEEN}))
    dataset = {"type": "coco2014", "data_root": str(tiny_coco[0]), "zsl_split": str(split)}
    config = write_tiny_config(tmp_path / "tiny.py", dataset, tiny_vit_cfg,
                               "spy_lora = dict(train=dict(epochs=1, batch_size=6, optimizer=dict(lr=1e-2)))\n")
    (path,) = _run(config, tmp_path, "spy_lora")
    record = json.loads(path.read_text())
    assert record["image_protocol"]["mode"] == "online" and record["method_hparams"]["encoder"] == "both"
    kinds = [e[0] for e in EVENTS]
    after = max(i for i, k in enumerate(kinds) if k == "loss") + 1  # training is over
    rebuilds = [i for i, k in enumerate(kinds) if k == "rebuild"]
    encoded = torch.cat([e[3] for e in EVENTS[after:rebuilds[0]] if e[0] == "pixels" and not e[2]])
    assert len(encoded) == len(tiny_coco[1]["val2014"])  # every test image, once, through the trained tower
    for start, end in zip(rebuilds, rebuilds[1:] + [len(EVENTS)]):  # the ZSL pass, then the GZSL pass
        scored = torch.cat([e[3] for e in EVENTS[start:end] if e[0] == "logits" and not e[2]])
        torch.testing.assert_close(scored, encoded)
    training = [e[3] for e in EVENTS[:after] if e[0] == "pixels" and e[2]]
    assert training  # trained online: its tower encoded the training images


def test_class_specific_methods_are_skipped_with_a_reason(caplog):
    from bench.grid.sweep import plan_cells

    cfg = Config(dict(dualcoop=dict(csc=True), coop=dict(csc=False),
                      dualcoop_generic=dict(type="dualcoop", per_setting=dict(zsl=dict(csc=False)))))
    with caplog.at_level(logging.WARNING, logger="bench"):
        cells = plan_cells(["dualcoop", "coop", "zsclip", "dualcoop_generic"], "toy", ["zsl"], [0.5], [1, 2], cfg)
    assert [(c.method, c.seed) for c in cells] == [("coop", 1), ("coop", 2), ("zsclip", 1), ("dualcoop_generic", 1),
                                                   ("dualcoop_generic", 2)]
    assert caplog.messages == ["dualcoop: skipped in the zsl setting: class-specific contexts (csc=True) have no "
                               "rows for unseen classes"]
    with pytest.raises(ValueError, match="unknown setting"):
        plan_cells(["coop"], "toy", ["zls"], [0.5], [1], cfg)


def test_toy_config_runs_dualcoop_with_its_zero_shot_protocol():
    from bench.cell.plan import Cell, plan_cell
    from bench.config import load_config

    plan = plan_cell(load_config("toy"), Cell("dualcoop", "toy", "zsl", None, 1))
    assert {k: plan.kwargs[k] for k in ("csc", "n_ctx_pos", "n_ctx_neg", "loss_w")} == \
        {"csc": False, "n_ctx_pos": 64, "n_ctx_neg": 64, "loss_w": 0.01}
    assert plan.config["zsl_split"]["name"] == "toy_15_5"  # the reader's default split
    partial = plan_cell(load_config("toy"), Cell("dualcoop", "toy", "partial", 0.5, 1))
    assert partial.kwargs["csc"] is True and partial.kwargs["n_ctx_pos"] == 16 and "zsl_split" not in partial.config


def _zsl_record(folder, method, seed, rng):
    labels = np.where(rng.random((30, 4)) < 0.4, 1, -1)
    labels[0] = 1
    scores = rng.random((30, 4)) + (labels == 1) * (0.5 if method == "good" else 0.1)
    blocks = {"zsl": zsl_metrics(scores[:, 3:], labels[:, 3:], ["d"]),
              "gzsl": zsl_metrics(scores, labels, ["a", "b", "c", "d"])}
    record = {"record_version": 1, "status": "ok", "method": method, "dataset": "coco2014", "setting": "zsl",
              "label_ratio": None, "seed": seed, "config_hash": f"h{method}{seed}",
              "config": {"method": {"type": method}}, "mAP": blocks["zsl"]["mAP"],
              "backbone": {"spec": {"model": "RN50", "pretrained": "openai"}}, **blocks}
    (folder / f"{method}__zsl__s{seed}.json").write_text(json.dumps(record))
    return blocks


def test_report_zsl_tables_and_published_numbers(tmp_path):
    from bench.report import find_records, read_records
    from bench.report.zsl import zsl_section

    folder = tmp_path / "run" / "records" / "coco2014"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    blocks = {(m, s): _zsl_record(folder, m, s, rng) for m in ("good", "weak") for s in (1, 2)}
    published = tmp_path / "published.csv"
    published.write_text("method,dataset,setting,label_ratio,shots,backbone,resolution,metric,value,source\n"
                         "dualcoop,coco,zsl,,,RN50,224,mAP,50.5,paper [S]\n"
                         "dualcoop,coco,zsl,,,RN50,224,gzsl F1@3,40.0,paper [S]\n"
                         "dualcoop,coco,partial,0.5,,RN50,224,mAP,80.0,not this protocol\n")
    section = zsl_section(read_records(find_records(tmp_path)), published)
    zsl_table, gzsl_table = section.tables
    assert zsl_table.title == "coco2014: ZSL (unseen classes)"
    for table, part in ((zsl_table, "zsl"), (gzsl_table, "gzsl")):
        frame = table.frame.set_index("method")
        for method in ("good", "weak"):
            for metric in ("mAP", "F1@3", "R@5"):
                values = [blocks[(method, s)][part][metric] for s in (1, 2)]
                assert frame.loc[method, metric] == f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"
        assert table.bold.set_index(table.frame.method).loc["good", "mAP"]
    assert zsl_table.note == "published dualcoop mAP = 50.5 (paper [S])"
    assert gzsl_table.note == "published dualcoop gzsl F1@3 = 40 (paper [S])"


def test_cli_names_unknown_split_classes_in_one_line(tmp_path, tiny_coco, tiny_rn_cfg, capsys):
    from bench.cli import main
    from bench.testing import write_tiny_config

    split = tmp_path / "bad.json"
    split.write_text(json.dumps({"seen": ["red", "green"], "unseen": ["yellow", "mauve"], "source": "test"}))
    config = write_tiny_config(tmp_path / "tiny.py", {"type": "coco2014", "data_root": str(tiny_coco[0]),
                                                      "zsl_split": str(split)}, tiny_rn_cfg)
    args = ["run", "--methods", "zsclip", "--dataset", str(config), "--settings", "zsl", "--work-dir",
            str(tmp_path / "wd"), "--device", "cpu", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bench: error: zsl split {split}: 1 class name(s) not in the coco2014 class list: ['mauve'] "
                   "(valid names: the dataset's classes; fix the file or set dataset.zsl_split)"]
    # the default COCO split on a dataset with other classes: all 65 counted, the first ten shown
    assert main([*args[:4], str(write_tiny_config(tmp_path / "t2.py", {"type": "coco2014", "data_root": str(
        tiny_coco[0])}, tiny_rn_cfg)), *args[5:]]) == 2
    assert "65 class name(s) not in the coco2014 class list: ['airplane', " in capsys.readouterr().err


def test_nuswide_fixture_runs_with_tags_as_seen_classes(tmp_path, tiny_rn_cfg):
    """NUS-WIDE's zsl class list: the Flickr tags that are not concepts (seen, "rest") + the concepts (unseen)."""
    from bench.cli import main
    from bench.testing import write_nuswide, write_tiny_config

    root = tmp_path / "nus"
    truth = write_nuswide(root, tags=("cat", "sky", "sunset"))
    split = tmp_path / "nus_2_3.json"
    split.write_text(json.dumps({"seen": "rest", "seen_count": 2, "unseen": ["sky", "water", "dog"], "source": "t"}))
    config = write_tiny_config(tmp_path / "nus.py", {"type": "nuswide", "data_root": str(root),
                                                     "zsl_split": str(split)}, tiny_rn_cfg)
    assert main(["run", "--methods", "zsclip", "--dataset", str(config), "--settings", "zsl", "--work-dir",
                 str(tmp_path / "wd"), "--device", "cpu", "--quiet"]) == 0
    record = json.loads((tmp_path / "wd" / "nus" / "records" / "nuswide" / "zsclip__zsl__s1.json").read_text())
    assert record["zsl_split"]["seen"] == ["cat", "sunset"] and record["zsl_split"]["unseen"] == ["sky", "water", "dog"]
    assert list(record["gzsl"]["per_class_AP"]) == ["cat", "sunset", "sky", "water", "dog"]
    test = np.concatenate([truth["Test"]["tags"][:, [0, 2]], truth["Test"]["labels"]], axis=1)
    assert record["zsl"]["n_images"] == int((test[:, 2:] == 1).any(axis=1).sum())
    assert record["gzsl"]["n_images"] == int((test == 1).any(axis=1).sum())

"""The report's shared model and formatting helpers on hand-made inputs: cell order, counts, backbone names."""

import numpy as np
import pandas as pd
import pytest

from bench.records import backbone_spec, same_test_set
from bench.report import summary_table
from bench.report.format import fmt_count, is_missing
from bench.report.model import backbone_name, cell_groups, is_toy, short_backbone_name, short_backbone_names


def test_cell_groups_order_datasets_then_cells():
    frame = pd.DataFrame({"dataset": ["voc", "coco", "coco", "coco", "coco", "coco"],
                          "setting": ["partial", "fewshot", "partial", "zero-shot", "partial", "partial"],
                          "label_ratio": [0.5, np.nan, 0.9, np.nan, 0.1, 0.9],
                          "cell": ["partial 0.5", "fewshot", "partial 0.9", "zero-shot", "partial 0.1", "partial 0.9"]})
    assert cell_groups(frame) == [("coco", "zero-shot"), ("coco", "partial 0.1"), ("coco", "partial 0.9"),
                                  ("coco", "fewshot"), ("voc", "partial 0.5")]


def test_fmt_count_with_and_without_thousands_separator():
    # cost tables show "2,580"; the gaps tables show counts without a separator ("1000 (cos ≥ 0.950)")
    assert fmt_count(2580.0) == "2,580" and fmt_count(np.int64(1234567)) == "1,234,567"
    assert fmt_count(1000, thousands=False) == "1000" and fmt_count(np.float64(12.0), thousands=False) == "12"
    assert fmt_count(None) == "-" and fmt_count(float("nan"), thousands=False) == "-"
    assert is_missing(np.float64("nan")) and is_missing(None) and not is_missing(0.0) and not is_missing(0)


def test_record_backbone_spec_and_same_test_set():
    spec = {"model": "RN50", "pretrained": "openai"}
    assert backbone_spec({"backbone": {"spec": spec}, "config": {"backbone": {"model": "other"}}}) == spec
    assert backbone_spec({"backbone": None, "config": {"backbone": spec}}) == spec
    assert backbone_spec({"dataset": "toy"}) == {}
    assert backbone_name({"config": {"backbone": spec}}) == "RN50@openai"
    assert not is_toy({"dataset": "coco2014", "config": {"backbone": spec}})
    labels = np.array([[1, -1], [-1, 1]])
    ids = np.array(["a", "b"])
    assert same_test_set(labels, ids, labels.copy(), None)
    assert not same_test_set(labels, ids, labels, ids[::-1])
    assert not same_test_set(labels, None, -labels, None) and not same_test_set(labels, None, labels[:1], None)


@pytest.mark.parametrize(("full", "short"), [
    ("toy-clip@builtin:toy/model/toy-clip.safetensors", "toy-clip"),
    ("RN50@openai", "RN50@openai"),
    ("ViT-B-16@None", "ViT-B-16"),
    ("RN50@/ckpt/runs/RN50-finetuned.pt", "RN50@RN50-finetuned.pt"),
    ("RN50+RN101@openai+openai", "RN50+RN101@openai+openai"),
    ("toy-clip+toy-clip@builtin:toy/a.safetensors+builtin:toy/a.safetensors", "toy-clip+toy-clip"),
    ("toy-clip+RN50@builtin:toy/a.safetensors+openai", "toy-clip+RN50@builtin+openai"),
])
def test_short_backbone_name(full, short):
    assert short_backbone_name(full) == short


def test_short_backbone_names_never_merge_two_backbones():
    names = ["RN50@/a/ckpt.pt", "RN50@/b/ckpt.pt", "toy-clip@builtin:toy/x", "RN50@openai"]
    assert short_backbone_names(names) == {"RN50@/a/ckpt.pt": "RN50@/a/ckpt.pt", "RN50@/b/ckpt.pt": "RN50@/b/ckpt.pt",
                                           "toy-clip@builtin:toy/x": "toy-clip", "RN50@openai": "RN50@openai"}


def test_summary_table_names_backbones_briefly():
    cells = pd.DataFrame({"dataset": ["toy", "toy"], "method": ["zsclip", "coop"], "setting": ["zero-shot", "partial"],
                          "label_ratio": [np.nan, 0.5], "seed": [1, 1], "status": ["ok", "ok"], "mAP": [49.67, 54.83],
                          "backbone": ["toy-clip@builtin:toy/model/toy-clip.safetensors"] * 2,
                          "protocol": ["-", "cached K=1"], "cell": ["zero-shot", "partial 0.5"]})
    lines = summary_table(cells).splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["dataset", "method", "backbone", "protocol", "seeds",
                                                            "zero-shot", "partial 0.5"]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[2:]]
    assert rows == [["toy", "coop", "toy-clip", "cached K=1", "1", "-", "54.83"],
                    ["toy", "zsclip", "toy-clip", "-", "1", "49.67", "-"]]

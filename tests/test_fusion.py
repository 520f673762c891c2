"""TaI-DPT + DualCoOp score fusion (bench/grid/fusion.py) against a hand computation, and over a sweep's records."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.grid.fusion import FusionSpec, fuse_records, fuse_scores, fuse_sweep, minmax_global
from bench.records import save_scores, saved_scores

A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # TaI-DPT: global min 1, max 6
B = np.array([[0.0, 10.0], [5.0, 0.0], [10.0, 5.0]])  # DualCoOp: global min 0, max 10
LABELS = np.array([[1, -1], [-1, 1], [1, -1]], np.int8)
# 0.1 * (A - 1) / 5 + 0.9 * B / 10, entry by entry
FUSED = np.array([[0.1 * 0.0 + 0.9 * 0.0, 0.1 * 0.2 + 0.9 * 1.0],
                  [0.1 * 0.4 + 0.9 * 0.5, 0.1 * 0.6 + 0.9 * 0.0],
                  [0.1 * 0.8 + 0.9 * 1.0, 0.1 * 1.0 + 0.9 * 0.5]])  # [[0, .92], [.49, .06], [.98, .55]]
# class 0: positives score 0.98 (rank 1) and 0 (rank 3) -> AP = (1/1 + 2/3) / 2;
# class 1: its positive scores 0.06, below both negatives (rank 3) -> AP = 1/3
FUSED_MAP = 100 * ((1 + 2 / 3) / 2 + 1 / 3) / 2


def test_fused_scores_by_hand():
    np.testing.assert_allclose(minmax_global(A), (A - 1) / 5)
    np.testing.assert_allclose(fuse_scores(A, B, 0.9), FUSED, atol=1e-12)
    np.testing.assert_allclose(fuse_scores(A, B, 0.0), (A - 1) / 5)
    assert not minmax_global(np.full((2, 2), 3.0)).any()  # a constant matrix has no range: zeros
    with pytest.raises(ValueError, match="rate"):
        fuse_scores(A, B, 1.5)


def _record(folder, stem, method, setting, ratio, seed, scores, labels=LABELS, classes=("cat", "dog")):
    path = folder / f"{stem}.json"
    save_scores(path, {"score": scores, "global": scores - 1}, SimpleNamespace(labels=labels, image_ids=[7, 8, 9]))
    path.write_text(json.dumps({
        "status": "ok", "method": method, "dataset": "coco2014", "setting": setting, "label_ratio": ratio,
        "seed": seed, "config_hash": f"hash-{stem}", "mAP": 50.0, "per_class_AP": {c: 50.0 for c in classes},
        "backbone": {"spec": {"model": "RN50" if method == "taidpt" else "RN101", "pretrained": "openai"}},
        "image_protocol": {"mode": "cached", "views": 1} if method == "dualcoop" else None}))
    return path


def test_fuse_records_writes_a_derived_record(tmp_path):
    a = _record(tmp_path, "taidpt__zero-shot__s1", "taidpt", "zero-shot", None, 1, A)
    b = _record(tmp_path, "dualcoop__partial_r0.5__s2", "dualcoop", "partial", 0.5, 2, B)
    out = tmp_path / "fused" / "taidpt+dualcoop__partial_r0.5__s2.json"
    assert fuse_records(a, b, 0.9, out, "taidpt+dualcoop") == out
    rec = json.loads(out.read_text())
    assert rec["status"] == "ok" and rec["method"] == "taidpt+dualcoop" and rec["dataset"] == "coco2014"
    assert (rec["setting"], rec["label_ratio"], rec["seed"]) == ("partial", 0.5, 2)
    assert rec["mAP"] == pytest.approx(FUSED_MAP)
    assert rec["per_class_AP"] == pytest.approx({"cat": 100 * (1 + 2 / 3) / 2, "dog": 100 / 3})
    assert rec["fusion"]["rate"] == 0.9 and rec["fusion"]["normalisation"] == "global min-max"
    assert [(s["path"], s["config_hash"]) for s in rec["derived_from"]] == \
        [(str(a), "hash-taidpt__zero-shot__s1"), (str(b), "hash-dualcoop__partial_r0.5__s2")]
    assert "f1" in rec and rec["config_hash"]
    scores, labels, _ = saved_scores(out)
    np.testing.assert_allclose(scores, FUSED, atol=1e-6)
    np.testing.assert_array_equal(labels, LABELS)
    from bench.report import load_records

    table = load_records([str(out)])  # the report reads a derived record like any other
    assert table.iloc[0]["method"] == "taidpt+dualcoop" and table.iloc[0]["backbone"] == "RN50+RN101@openai+openai"


def test_fusion_refuses_different_test_labels(tmp_path):
    a = _record(tmp_path, "a", "taidpt", "zero-shot", None, 1, A)
    b = _record(tmp_path, "b", "dualcoop", "partial", 0.5, 1, B, labels=-LABELS)
    with pytest.raises(ValueError, match="labels"):
        fuse_records(a, b, 0.9, tmp_path / "out.json", "x")
    assert not (tmp_path / "out.json").exists()


def test_fuse_sweep_pairs_cells_by_seed(tmp_path):
    folder = tmp_path / "records" / "coco2014"
    folder.mkdir(parents=True)
    _record(folder, "taidpt__zero-shot__s1", "taidpt", "zero-shot", None, 1, A)
    _record(folder, "dualcoop__partial_r0.5__s1", "dualcoop", "partial", 0.5, 1, B)
    _record(folder, "dualcoop__partial_r0.1__s2", "dualcoop", "partial", 0.1, 2, B[::-1].copy())
    _record(folder, "zsclip__zero-shot__s1", "zsclip", "zero-shot", None, 1, A)
    written = fuse_sweep(tmp_path, "coco2014", {"rate": 0.9})
    assert sorted(p.name for p in written) == ["taidpt+dualcoop__partial_r0.1__s2.json",
                                               "taidpt+dualcoop__partial_r0.5__s1.json"]
    s1 = json.loads((folder / "taidpt+dualcoop__partial_r0.5__s1.json").read_text())
    s2 = json.loads((folder / "taidpt+dualcoop__partial_r0.1__s2.json").read_text())
    assert s1["mAP"] == pytest.approx(FUSED_MAP) and s1["fusion"]["pairing"] == "same seed"
    assert s2["fusion"]["pairing"].startswith("first seed") and s2["derived_from"][0]["seed"] == 1
    # a second pass keeps up-to-date derived records; fused records are never fused again
    mtimes = [p.stat().st_mtime_ns for p in written]
    again = fuse_sweep(tmp_path, "coco2014", FusionSpec(rate=0.9))
    assert [p.stat().st_mtime_ns for p in again] == mtimes and len(again) == 2
    assert fuse_sweep(tmp_path, "voc2007", FusionSpec()) == []  # no records: nothing to do


def test_fused_record_keeps_the_runner_f1_keys(tmp_path):
    a = _record(tmp_path, "taidpt__zero-shot__s1", "taidpt", "zero-shot", None, 1, A)
    b = _record(tmp_path, "dualcoop__partial_r0.5__s1", "dualcoop", "partial", 0.5, 1, B)
    out = fuse_records(a, b, 0.9, tmp_path / "fused.json", "taidpt+dualcoop")
    f1 = json.loads(out.read_text())["f1"]
    # a runner record's f1 block: CP/CR/CF1/OP/OR/OF1 at top-3 and at the threshold, and the threshold
    stats = ["CP", "CR", "CF1", "OP", "OR", "OF1"]
    assert set(f1) == {f"{s}@{tag}" for s in stats for tag in ("top3", "thr")} | {"threshold"}
    assert f1["threshold"] == 0.5
    # FUSED > 0.5: class 0 predicts row 2 (a positive of 2), class 1 rows 0 and 2 (both negatives)
    # -> CP = (1 + 0) / 2, CR = (1/2 + 0) / 2, CF1 = 1/3; OP = OR = 1/3 pooled
    assert f1["CP@thr"] == pytest.approx(50.0) and f1["CR@thr"] == pytest.approx(25.0)
    assert f1["CF1@thr"] == pytest.approx(100 / 3) and f1["OF1@thr"] == pytest.approx(100 / 3)


def test_fuse_sweep_takes_ratio_and_seed_from_the_records(tmp_path):
    folder = tmp_path / "records" / "coco2014"
    folder.mkdir(parents=True)
    _record(folder, "taidpt__zero-shot__s3", "taidpt", "zero-shot", None, 3, A)
    b = _record(folder, "dualcoop__partial_r0.25__s3", "dualcoop", "partial", 0.25, 3, B)
    # a backup copy with its scores: not named as the runner names a cell, so not fused
    (folder / "dualcoop__partial_r0.25__s3_old.json").write_text(b.read_text())
    (folder / "dualcoop__partial_r0.25__s3_old.scores.npz").write_bytes(b.with_suffix(".scores.npz").read_bytes())
    written = fuse_sweep(tmp_path, "coco2014", FusionSpec(rate=0.9))
    assert written == [folder / "taidpt+dualcoop__partial_r0.25__s3.json"]
    rec = json.loads(written[0].read_text())
    assert (rec["label_ratio"], rec["seed"], rec["fusion"]["pairing"]) == (0.25, 3, "same seed")
    assert rec["derived_from"][1]["path"] == str(b) and rec["mAP"] == pytest.approx(FUSED_MAP)


def test_fuse_sweep_reads_each_source_once(tmp_path, monkeypatch):
    import bench.grid.fusion

    folder = tmp_path / "records" / "coco2014"
    folder.mkdir(parents=True)
    a = _record(folder, "taidpt__zero-shot__s1", "taidpt", "zero-shot", None, 1, A)
    b1 = _record(folder, "dualcoop__partial_r0.5__s1", "dualcoop", "partial", 0.5, 1, B)
    b2 = _record(folder, "dualcoop__partial_r0.1__s2", "dualcoop", "partial", 0.1, 2, B[::-1].copy())
    loaded, read = [], []
    real_scores, real_read = bench.grid.fusion.saved_scores, Path.read_text
    monkeypatch.setattr(bench.grid.fusion, "saved_scores",
                        lambda path: loaded.append(Path(path).name) or real_scores(path))
    monkeypatch.setattr(Path, "read_text", lambda self, *args, **kw: read.append(self.name)
                        or real_read(self, *args, **kw))
    assert len(fuse_sweep(tmp_path, "coco2014", FusionSpec(rate=0.9))) == 2  # both b cells fused with a
    assert sorted(loaded) == sorted([a.name, b1.name, b2.name])  # a's scores once, not once per b cell
    assert [read.count(p.name) for p in (a, b1, b2)] == [1, 1, 1]
    loaded.clear(), read.clear()
    assert len(fuse_sweep(tmp_path, "coco2014", FusionSpec(rate=0.9))) == 2  # up to date: no scores read
    assert loaded == [] and [read.count(p.name) for p in (a, b1, b2)] == [1, 1, 1]

"""The bad inputs of issue 25 (items 2-8), each through the CLI: the exact one line, no traceback, nothing run.

Item 1 (unsafe loading) is in test_safe_loading.py, item 9 (the offline headline command, one cell's failure)
in test_preflight.py."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bench.cli import main
from bench.records import save_scores
from bench.testing import namespaces_allowed, write_tiny_config, write_voc


def _one_line(capsys, argv, code: int = 2) -> str:
    assert main([str(a) for a in argv]) == code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = [ln for ln in captured.err.splitlines() if ln.startswith("bench: ")]
    assert len(lines) == 1, captured.err
    return lines[0]


def _run(config, work, *extra):
    return ["run", "--dataset", config, "--work-dir", work, "--quiet", "--methods", "zsclip", *extra]


@pytest.mark.parametrize(("option", "value", "line"), [
    ("--ratios", ",", "--ratios is empty (','); give label ratios in (0, 1], e.g. 0.1,0.5,0.9"),
    ("--seeds", "", "--seeds is empty (''); give whole-number seeds in 0 .. 4294967295, e.g. 1,2,3"),
    ("--shots", " , ", "--shots is empty (' , '); give shot counts K >= 1 (images per class), e.g. 1,2,4,8,16"),
    ("--settings", ",", "--settings is empty (','); give settings among zero-shot, partial, fewshot, zsl"),
    ("--seeds", "-1", "--seeds: seeds must be whole numbers in 0 .. 4294967295 (numpy's seed range), got -1"),
    ("--seeds", "4294967296", "--seeds: seeds must be whole numbers in 0 .. 4294967295 (numpy's seed range), got "
                              "4294967296"),
    ("--seeds", "1.5", "--seeds: seeds must be whole numbers in 0 .. 4294967295 (numpy's seed range), got '1.5'"),
    ("--seeds", "1,2,1", "--seeds lists 1 more than once"),
    ("--ratios", "0.5,1.5", "--ratios: label ratio must be in (0, 1], got 1.5; give label ratios in (0, 1], e.g. "
                            "0.1,0.5,0.9"),
    ("--ratios", "half", "--ratios: label ratio must be in (0, 1], got 'half'"),
    ("--shots", "0", "--shots: shots must be a positive integer (images per class), got 0"),
    ("--threads", "0", "--threads must be at least 1, got 0"),
])
def test_run_list_options_item_2_and_6(tmp_path, tiny_config, capsys, option, value, line):
    """Empty lists were the config's (``--ratios ,`` ran nine ratios with exit 0); ``--seeds -1`` ended in numpy's
    "Seed must be between 0 and 2**32 - 1"."""
    work = tmp_path / "w"
    assert _one_line(capsys, _run(tiny_config, work, option, value)) == f"bench: error: {line}"
    assert not work.exists()


def test_config_values_are_checked_the_same_way_naming_the_key(tmp_path, tiny_config, capsys):
    work = tmp_path / "w"
    assert _one_line(capsys, _run(tiny_config, work, "--cfg-options", "sweep.seeds=[-1]")) == (
        "bench: error: sweep.seeds: seeds must be whole numbers in 0 .. 4294967295 (numpy's seed range), got -1")
    assert _one_line(capsys, _run(tiny_config, work, "--cfg-options", "sweep.ratios=[]")) == (
        "bench: error: sweep.ratios is empty ([]); give label ratios in (0, 1], e.g. 0.1,0.5,0.9")


def test_report_options(tmp_path, capsys):
    assert _one_line(capsys, ["report", "--work-dir", tmp_path, "--format", "md,docx"]) == \
        "bench: error: unknown report format(s) (--format) docx; valid: md, tex, csv, png, pdf, html"
    assert _one_line(capsys, ["report", "--work-dir", tmp_path, "--n-boot", "-5"]) == \
        "bench: error: --n-boot must be at least 0, got -5"


def _record(folder, method, mAP):
    path = folder / f"{method}__zero-shot__s1.json"
    labels = np.array([[1, -1], [-1, 1], [1, 1], [-1, -1]], np.int8)
    save_scores(path, {"score": np.random.default_rng(0).random((4, 2))},
                type("Test", (), {"labels": labels, "image_ids": [1, 2, 3, 4]}))
    path.write_text(json.dumps({
        "status": "ok", "method": method, "dataset": "coco2014", "setting": "zero-shot", "label_ratio": None,
        "seed": 1, "config_hash": f"h-{method}", "config": {"eval_split": "test"}, "mAP": mAP,
        "per_class_AP": {"a": 50.0, "b": 50.0}, "backbone": {"spec": {"model": "RN50", "pretrained": "openai"}}}))
    return path


def test_report_over_a_record_with_a_text_map_item_3(tmp_path, capsys):
    """Was a pandas traceback (``TypeError: agg function failed [how->mean,dtype->object]``)."""
    folder = tmp_path / "work" / "run" / "records" / "coco2014"
    folder.mkdir(parents=True)
    _record(folder, "alpha", 61.25)
    bad = _record(folder, "beta", "high")
    line = _one_line(capsys, ["report", "--work-dir", tmp_path / "work", "--out", tmp_path / "rep", "--format", "md",
                              "--n-boot", "0"], code=1)
    assert line == (f"bench: warning: left out {bad} (malformed record: RecordError: field 'mAP' is 'high', not a "
                    "finite number)")
    results = (tmp_path / "rep" / "results.md").read_text()
    assert "61.25" in results and "beta" not in results
    index = (tmp_path / "rep" / "README.md").read_text()
    assert f"- `{bad}`: malformed record: RecordError: field 'mAP' is 'high'" in index


@pytest.mark.parametrize(("field", "value", "why"), [
    ("seed", "1", "field 'seed' is '1', not a whole number"),
    ("status", "done", "field 'status' is 'done', not 'ok' or 'failed'"),
    ("mAP", None, "field 'mAP' of a finished cell is None, not a finite number"),
    ("per_class_AP", {"a": "n/a"}, "field per_class_AP.a is 'n/a', not a finite number"),
    ("config", [], "field 'config' is list, not an object"),
])
def test_record_schema_names_the_field(field, value, why):
    from bench.errors import RecordError
    from bench.records import check_record

    record = {"status": "ok", "method": "m", "dataset": "d", "setting": "zero-shot", "label_ratio": None, "seed": 1,
              "config_hash": "h", "mAP": 50.0, "per_class_AP": {"a": 50.0}, "config": {}}
    check_record(record)
    with pytest.raises(RecordError) as info:
        check_record({**record, field: value})
    assert str(info.value) == why


def test_a_rerun_recomputes_a_record_that_breaks_the_schema(tmp_path, tiny_config, capsys):
    work = tmp_path / "w"
    assert main([str(a) for a in _run(tiny_config, work)]) == 0
    [path] = work.glob("**/records/**/zsclip*.json")
    good = json.loads(path.read_text())
    path.write_text(json.dumps({**good, "mAP": "n/a"}))
    assert main([str(a) for a in _run(tiny_config, work)]) == 0
    assert json.loads(path.read_text())["mAP"] == good["mAP"]  # not taken as done: recomputed


def test_empty_voc_split_names_its_image_list_item_4(tmp_path, tiny_rn_cfg, capsys):
    root = tmp_path / "VOC2007"
    write_voc(root)
    (root / "ImageSets/Main/test.txt").write_text("\n")
    config = write_tiny_config(tmp_path / "voc.py", {"type": "voc2007", "data_root": str(root)}, tiny_rn_cfg)
    assert _one_line(capsys, _run(config, tmp_path / "w")) == (
        "bench: error: voc2007/test: the split has no images; check its image list / annotation file "
        f"{root / 'ImageSets' / 'Main' / 'test.txt'}")


def test_empty_coco_split_names_its_annotation_file_item_4(tmp_path, tiny_config, tiny_coco, capsys):
    root = tmp_path / "coco"
    shutil.copytree(tiny_coco[0], root)
    instances = root / "annotations" / "instances_val2014.json"
    instances.write_text(json.dumps({**json.loads(instances.read_text()), "images": [], "annotations": []}))
    assert _one_line(capsys, _run(tiny_config, tmp_path / "w", "--data-root", root)) == (
        f"bench: error: coco2014/test: the split has no images; check its image list / annotation file {instances}")


def test_taidpt_on_voc_without_captions_names_the_key_for_voc_item_5(tmp_path, tiny_rn_cfg, capsys, monkeypatch):
    """The VOC config's default caption file is missing: the line names dataset.caption_file, not --data-root
    (which is VOC's root on a VOC run)."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "VOC2007"
    write_voc(root)
    config = write_tiny_config(tmp_path / "voc.py", {"type": "voc2007", "data_root": str(root), "caption_file":
                                                     "data/coco/annotations/captions_train2014.json"}, tiny_rn_cfg)
    work = tmp_path / "w"
    line = _one_line(capsys, ["run", "--dataset", config, "--work-dir", work, "--quiet", "--methods", "zsclip,taidpt"])
    assert line == ("bench: error: missing caption file: data/coco/annotations/captions_train2014.json (VOC2007 has no "
                    "captions: caption-trained methods read MS-COCO's; pass --cfg-options "
                    "dataset.caption_file=/path/to/coco/annotations/captions_train2014.json)")
    assert "--data-root" not in line and not list(work.glob("**/records/**/*.json"))  # zsclip did not run first


def test_coco_without_its_captions_names_its_data_root(tmp_path, tiny_config, tiny_coco, capsys):
    root = tmp_path / "coco"
    shutil.copytree(tiny_coco[0], root)
    (root / "annotations" / "captions_train2014.json").unlink()
    line = _one_line(capsys, _run(tiny_config, tmp_path / "w", "--data-root", root, "--methods", "taidpt"))
    assert line == (f"bench: error: missing caption file: {root / 'annotations' / 'captions_train2014.json'} "
                    "(dataset.data_root; download COCO 2014 from https://cocodataset.org and pass --data-root "
                    "/path/to/coco)")


def test_own_config_without_dataset_section_names_the_file_item_7(tmp_path, tiny_rn_cfg, capsys):
    config = tmp_path / "my_config.py"
    config.write_text(f"backbone = {tiny_rn_cfg!r}\n")
    line = _one_line(capsys, ["run", "--dataset", config, "--work-dir", tmp_path / "w", "--methods", "zsclip"])
    assert line == (f"bench: error: config {config} has no dataset section; add dataset = dict(type=..., "
                    "data_root=...) (valid types: coco2014, nuswide, toy, voc2007)")


@pytest.mark.skipif(not namespaces_allowed(), reason="user/mount namespaces not allowed here")
def test_checkpoint_save_on_a_full_disk_is_one_line_item_8(tmp_path, tiny_config, probe):
    """The cells folder on a 28 KiB tmpfs: the cell's small files fit, its first epoch checkpoint does not (a real
    ENOSPC, in a user + mount namespace). The save goes through bench's writer, so the line names the checkpoint."""
    work, cache = tmp_path / "w", tmp_path / "cache"
    run = [sys.executable, "-m", "bench.cli", "run", "--dataset", str(tiny_config), "--work-dir", str(work), "--quiet",
           "--methods", "probe", "--settings", "partial", "--ratios", "0.5", "--cfg-options",
           f"runtime.cache_dir={cache}"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    assert subprocess.run([*run, "probe.train.epochs=0"], env=env, capture_output=True).returncode == 0  # features
    cells = work / "tiny" / "cells"
    shutil.rmtree(cells)
    cells.mkdir()
    script = f"mount -t tmpfs -o size=28k tmpfs {cells} && " + " ".join(run + ["probe.train.epochs=2"])
    out = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("bench: ")]
    assert line.startswith(f"bench: error: No space left on device: cannot write {cells}/coco2014/"
                           "probe__partial_r0.5__s1/") and "/epoch_1.pth in " in line
    assert line.endswith("; free space there, or put the work dir (--work-dir) or the feature cache "
                         "(runtime.cache_dir) on another disk")

"""Bad input a user meets ends in one line naming what is wrong -- never a traceback, a NaN or a silent record:
repeated images in a split, empty evaluations, malformed COCO files, missing config parts, bad run options."""

import json
import shutil

import pytest
import torch

from bench.cli import main
from bench.testing import write_tiny_config, write_voc


def _error(capsys, argv) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    err = captured.err.strip()
    assert err.startswith("bench: error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in captured.err + captured.out
    return err[len("bench: error: "):]


def _no_records(work) -> bool:
    return not list(work.glob("**/records/**/*.json"))


@pytest.fixture
def coco_copy(tmp_path, tiny_coco):
    root = tmp_path / "coco"
    shutil.copytree(tiny_coco[0], root)
    return root


def _edit_instances(root, split, edit):
    path = root / "annotations" / f"instances_{split}.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def _run(tiny_config, work, *extra):
    return ["run", "--dataset", str(tiny_config), "--work-dir", str(work), "--quiet", "--methods", "zsclip", *extra]


def test_voc_id_listed_twice_is_refused(tmp_path, tiny_rn_cfg, capsys):
    root = tmp_path / "VOC2007"
    write_voc(root)
    (root / "ImageSets/Main/test.txt").write_text("000004\n000005\n000004\n")
    config = write_tiny_config(tmp_path / "voc.py", {"type": "voc2007", "data_root": str(root)}, tiny_rn_cfg)
    work = tmp_path / "w"
    err = _error(capsys, _run(config, work))
    assert err == ("voc2007/test: the split lists the same image id more than once: 000004; remove the repeated "
                   f"entries from {root / 'ImageSets/Main/test.txt'}")
    assert _no_records(work)


def test_repeated_coco_image_entry_is_refused(tmp_path, tiny_config, coco_copy, capsys):
    path = _edit_instances(coco_copy, "val2014", lambda d: d["images"].append(dict(d["images"][1])))
    work = tmp_path / "w"
    err = _error(capsys, _run(tiny_config, work, "--data-root", str(coco_copy)))
    assert err == (f"COCO annotation file {path} lists image id(s) 1007 more than once; remove the repeated image "
                   "entries")
    assert _no_records(work)


def test_coco_file_without_categories_named(tmp_path, tiny_config, coco_copy, capsys):
    path = _edit_instances(coco_copy, "val2014", lambda d: d.pop("categories"))
    err = _error(capsys, _run(tiny_config, tmp_path / "w", "--data-root", str(coco_copy)))
    assert err == (f"COCO annotation file {path} has no categories list; an instances file needs images, annotations "
                   "and categories")


def test_test_split_without_positives_or_images(tmp_path, tiny_config, coco_copy, capsys):
    _edit_instances(coco_copy, "val2014", lambda d: d.update(annotations=[]))
    work = tmp_path / "w"
    # every image kept (TaI-DPT's protocol) but none has a label: mAP is undefined (was NaN with exit 0)
    err = _error(capsys, _run(tiny_config, work, "--data-root", str(coco_copy), "--cfg-options",
                              "dataset.keep_unannotated=true"))
    assert err == ("coco2014/test: no image has a positive label, so there is nothing to evaluate (mAP undefined); "
                   f"check the split's annotation files ({coco_copy / 'annotations' / 'instances_val2014.json'})")
    # only annotated images kept: the split is empty (was a feature-cache error)
    err = _error(capsys, _run(tiny_config, work, "--data-root", str(coco_copy)))
    instances = coco_copy / "annotations" / "instances_val2014.json"  # the file it read is named (issue 25, item 4)
    assert err == f"coco2014/test: the split has no images; check its image list / annotation file {instances}"
    assert _no_records(work)


def test_config_without_dataset_section(tmp_path, tiny_rn_cfg, capsys):
    config = tmp_path / "nodata.py"
    config.write_text(f"backbone = {tiny_rn_cfg!r}\n")
    err = _error(capsys, ["run", "--dataset", str(config), "--work-dir", str(tmp_path / "w"), "--methods", "zsclip"])
    assert err.startswith(f"config {config} has no dataset section; add dataset = dict(type=..., data_root=...) "
                          "(valid types: coco2014, ")


def test_run_options(tmp_path, tiny_config, capsys):
    work = tmp_path / "w"
    base = ["run", "--dataset", str(tiny_config), "--work-dir", str(work), "--quiet"]
    assert _error(capsys, base + ["--methods", "zsclip", "--settings", "zeroshot"]) == \
        "unknown --settings zeroshot; valid: zero-shot, partial, fewshot, zsl"
    assert _error(capsys, base + ["--methods", ","]) == \
        "--methods is empty; give 'all' or a comma list of method names (see `bench list methods`)"
    assert _error(capsys, base + ["--methods", "coop", "--settings", "zero-shot"]).startswith(
        "nothing to run: none of the methods coop supports the settings zero-shot")
    if not torch.cuda.is_available():
        assert _error(capsys, base + ["--methods", "zsclip", "--device", "cuda"]) == (
            "--device cuda: no CUDA GPU is visible to torch (torch.cuda.is_available() is False); use --device cpu")
    # AMP on CPU is refused, not recorded as used
    assert _error(capsys, base + ["--methods", "zsclip", "--device", "cpu", "--amp", "fp16"]) == \
        "--amp / runtime.amp=fp16 needs --device cuda (autocast runs on CUDA only); drop it on CPU"
    assert _error(capsys, base + ["--methods", "zsclip", "--device", "cpu", "--cfg-options", "runtime.amp=bf16"]) \
        .startswith("--amp / runtime.amp=bf16 needs --device cuda")
    assert _no_records(work)


def test_caption_method_on_voc_without_caption_file(tmp_path, tiny_rn_cfg, capsys):
    root = tmp_path / "VOC2007"
    write_voc(root)
    config = write_tiny_config(tmp_path / "voc.py", {"type": "voc2007", "data_root": str(root)}, tiny_rn_cfg)
    err = _error(capsys, ["run", "--dataset", str(config), "--work-dir", str(tmp_path / "w"), "--quiet",
                          "--methods", "taidpt"])
    assert "dataset.caption_file" in err and err.startswith("VOC2007 has no captions")


def test_report_reference_naming_no_method(tmp_path, tiny_config, capsys):
    work = tmp_path / "w"
    assert main(_run(tiny_config, work)) == 0
    capsys.readouterr()
    err = _error(capsys, ["report", "--work-dir", str(work), "--out", str(tmp_path / "rep"), "--reference", "copo"])
    assert err == "--reference copo names no method of these records; methods: zsclip"

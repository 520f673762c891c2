"""End to end through the `bench` CLI on tiny data: records, resume, report, list, and bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import average_precision_score

from bench.cli import main
from bench.data.coco import COCO2014


def _records(work):
    """Cell records (not the diagnostics records written beside them)."""
    return sorted(p for p in work.glob("**/records/**/*.json") if not p.name.startswith("diagnostics__"))


def test_zsclip_end_to_end_matches_direct_computation(tmp_path, tiny_config, tiny_coco, tiny_rn, capsys):
    work = tmp_path / "w"
    assert main(["run", "--methods", "zsclip", "--dataset", str(tiny_config), "--work-dir", str(work),
                 "--quiet"]) == 0
    [path] = _records(work)
    rec = json.loads(path.read_text())
    assert rec["status"] == "ok" and rec["setting"] == "zero-shot" and rec["label_ratio"] is None
    for key in ("mAP", "per_class_AP", "f1", "backbone", "seconds", "peak_memory_mb", "environment", "config_hash"):
        assert key in rec
    assert rec["backbone"]["weights_sha256"] == tiny_rn.weights_hash
    # independent computation: open_clip's own encoders, cosine, scikit-learn AP
    test = COCO2014(str(tiny_coco[0])).load("test")
    model = tiny_rn.model
    with torch.no_grad():
        img = model.encode_image(torch.stack([tiny_rn.preprocess(Image.open(p)) for p in test.image_paths]))
        img = img.half().float()  # the cache stores features in fp16
        txt = model.encode_text(tiny_rn.tokenize([f"a photo of a {c}." for c in test.classnames]))
    sims = (torch.nn.functional.normalize(img, dim=-1) @ torch.nn.functional.normalize(txt, dim=-1).T).numpy()
    expected = np.mean([average_precision_score(test.labels[:, c] == 1, sims[:, c]) for c in range(4)]) * 100
    assert rec["mAP"] == pytest.approx(expected, abs=1e-6)
    assert (path.parent / (path.stem + ".scores.npz")).is_file()
    # the cell's state folder is named by its config hash and data key; it says which config it belongs to
    state = work / "tiny" / "cells" / "coco2014" / "zsclip__zero-shot__s1" / f"{rec['config_hash']}_{rec['data_key']}"
    assert json.loads((state / "config.json").read_text()) == rec["config"]

    # a finished cell is not recomputed; --force recomputes it
    mtime = path.stat().st_mtime_ns
    assert main(["run", "--methods", "zsclip", "--dataset", str(tiny_config), "--work-dir", str(work),
                 "--quiet"]) == 0
    assert path.stat().st_mtime_ns == mtime
    assert main(["run", "--methods", "zsclip", "--dataset", str(tiny_config), "--work-dir", str(work),
                 "--quiet", "--force"]) == 0
    assert path.stat().st_mtime_ns != mtime

    capsys.readouterr()
    assert main(["report", "--work-dir", str(work), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "zsclip" in out and f"{rec['mAP']:.2f}" in out
    assert (tmp_path / "rep" / "results.csv").is_file()


def test_dry_run_lists_cells(tmp_path, tiny_config, capsys):
    assert main(["run", "--methods", "zsclip", "--dataset", str(tiny_config), "--work-dir", str(tmp_path),
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "todo  coco2014  zsclip__zero-shot__s1" in out and "1 cells" in out
    assert not _records(tmp_path)
    base = ["run", "--methods", "zsclip", "--dataset", str(tiny_config), "--work-dir", str(tmp_path), "--quiet"]
    assert main(base) == 0
    capsys.readouterr()
    assert main([*base, "--dry-run"]) == 0
    assert "done  coco2014  zsclip__zero-shot__s1" in capsys.readouterr().out
    # an edited config: the record is stale, and a rerun recomputes it (what the dry run says)
    assert main([*base, "--dry-run", "--cfg-options", "zsclip.templates=a picture of a {}."]) == 0
    assert "stale  coco2014  zsclip__zero-shot__s1" in capsys.readouterr().out


def test_list_shows_methods_and_datasets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "zsclip" in out and "coco2014" in out and "voc2007" in out and "toy" in out
    assert main(["list", "methods", "zs*"]) == 0
    assert "zsclip" in capsys.readouterr().out


def test_list_configs_says_where_they_are(capsys):
    from bench.config import CONFIG_DIR

    repo = Path(__file__).resolve().parents[1]
    assert CONFIG_DIR == repo / "configs"  # a checkout (and an editable install) reads the top-level folder
    assert main(["list", "configs", "c*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"configs: (in {repo / 'configs'}; --dataset NAME, or --dataset path/to/your_config.py)"
    assert lines[1:] == [f"  coco         {repo / 'configs' / 'coco.py'}"]


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: error: ") and len(err.splitlines()) == 1
    return err


def test_bad_input_one_line_errors_and_no_record(tmp_path, tiny_config, tiny_coco, tiny_rn_cfg, tiny_vit_cfg, capsys):
    work = tmp_path / "w"
    run = ["run", "--dataset", str(tiny_config), "--work-dir", str(work), "--quiet"]
    assert "unknown method 'nope'; valid names: " in _error(capsys, run + ["--methods", "nope"])
    err = _error(capsys, ["run", "--dataset", "nope", "--work-dir", str(work)])
    assert "unknown dataset 'nope'; valid names: coco, nuswide, toy, voc2007" in err
    assert "label ratio must be in (0, 1], got 1.5" in _error(capsys, run + ["--methods", "zsclip", "--ratios", "1.5"])
    assert "missing coco2014 data root" in _error(
        capsys, run + ["--methods", "zsclip", "--data-root", str(tmp_path / "nowhere")])
    # a corrupt image, named
    root = tmp_path / "coco"
    shutil.copytree(tiny_coco[0], root)
    victim = sorted((root / "val2014").iterdir())[2]
    victim.write_bytes(b"garbage")
    assert f"corrupt image {victim}" in _error(capsys, run + ["--methods", "zsclip", "--data-root", str(root)])
    # a checkpoint that does not fit the model
    assert "does not fit model tiny-vit" in _error(capsys, run + [
        "--methods", "zsclip", "--cfg-options", f"backbone.model={tiny_vit_cfg['model']}",
        f"backbone.model_config={tiny_vit_cfg['model_config']}"])
    assert "unknown config key 'zsclip.nonsense'; valid keys of zsclip: backbone, dense_weight, " in _error(
        capsys, run + ["--methods", "zsclip", "--cfg-options", "zsclip.nonsense=1"])
    assert not _records(work)

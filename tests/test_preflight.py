"""Issue 25, item 9: the headline command offline. Every missing resource is named in one line before any work;
a failure that belongs to one cell at run time is that cell's failed record, and the sweep goes on."""

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.data.captions import SYNONYM_DIR
from bench.testing import write_tiny_config

SD = "stable-diffusion-v1-5/stable-diffusion-v1-5"


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE with an empty local hub cache (as on a cluster node without hub access)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def _config(tmp_path, tiny_coco, backbone, generator: dict) -> str:
    synonyms = tmp_path / "colours.json"
    synonyms.write_text(json.dumps({"classes": [{"name": c, "synonyms": [c]}
                                                for c in ("red", "green", "blue", "yellow")]}))
    extra = (f"t2ipal = dict(generator={generator!r}, template_captions=False, train=dict(epochs=1, batch_size=64))\n"
             "coop = dict(n_ctx=2, train=dict(epochs=1))\n")
    dataset = {"type": "coco2014", "data_root": str(tiny_coco[0]), "synonyms": str(synonyms)}
    return str(write_tiny_config(tmp_path / "tiny.py", dataset, backbone, extra))


def _lines(capsys) -> tuple[list[str], str]:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return [ln for ln in captured.err.splitlines() if ln.startswith("bench: ")], captured.out


def _records(work) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in work.glob("**/records/**/*.json")
            if not p.name.startswith("diagnostics__")}


def test_headline_command_offline_stops_before_any_cell(tmp_path, tiny_coco, tiny_rn_cfg, offline_hub, capsys):
    """Was: six cells trained (15 minutes), then a four-exception traceback at the first T2I-PAL cell."""
    config = _config(tmp_path, tiny_coco, tiny_rn_cfg, {"type": "diffusers", "pipeline": SD})
    work = tmp_path / "w"
    assert main(["run", "--dataset", config, "--work-dir", str(work), "--quiet", "--methods", "zsclip,coop,t2ipal",
                 "--settings", "zero-shot,partial"]) == 2
    lines, _ = _lines(capsys)
    assert lines == [f"bench: error: diffusers pipeline '{SD}' is not in the local hub cache and HF_HUB_OFFLINE is "
                     f"set: download it where there is internet (huggingface-cli download {SD} --local-dir /path/sd) "
                     "and pass the folder: --cfg-options t2ipal.generator.pipeline=/path/sd"]
    assert _records(work) == {}  # nothing was run


def test_every_missing_resource_in_one_line(tmp_path, tiny_coco, offline_hub, capsys):
    config = _config(tmp_path, tiny_coco, {"model": "RN50", "pretrained": "openai"},
                     {"type": "diffusers", "pipeline": SD})
    assert main(["run", "--dataset", config, "--work-dir", str(tmp_path / "w"), "--quiet", "--methods",
                 "zsclip,coop,taidpt", "--settings", "zero-shot,partial", "--cfg-options",
                 f"coop.backbone.pretrained={tmp_path / 'nope.pt'}", "dataset.synonyms=missing"]) == 2
    [line], _ = _lines(capsys)
    prefix = "bench: error: the planned cells need 3 things that are not here (nothing was run): (1) "
    assert line.startswith(prefix)
    assert line[len(prefix):].split("; (") == [
        "CLIP weights RN50@openai are not in the local hub cache and HF_HUB_OFFLINE is set: download them where "
        "there is internet (e.g. huggingface-cli download timm/resnet50_clip.openai/) or pass a checkpoint file: "
        "--cfg-options backbone.pretrained=/path/to/RN50.pt",
        f"2) CLIP checkpoint {tmp_path / 'nope.pt'} not found (coop.backbone.pretrained)",
        f"3) synonym file not found: {SYNONYM_DIR / 'missing.json'} (dataset.synonyms; built-in: coco, nuswide, toy, "
        'voc2007; or a path to a json file {"classes": [{"name": ..., "synonyms": [...]}]})']


def test_a_missing_zsl_split_names_its_key(tmp_path, tiny_config, capsys):
    assert main(["run", "--dataset", str(tiny_config), "--work-dir", str(tmp_path / "w"), "--quiet", "--methods",
                 "zsclip", "--settings", "zsl", "--cfg-options", "dataset.zsl_split=nope"]) == 2
    [line], _ = _lines(capsys)
    assert line.startswith("bench: error: zsl split file not found: ")
    assert "/nope.json (dataset.zsl_split; built-in: " in line


def test_a_local_pipeline_folder_without_model_index(tmp_path, tiny_coco, tiny_rn_cfg, capsys):
    folder = tmp_path / "sd"
    folder.mkdir()
    config = _config(tmp_path, tiny_coco, tiny_rn_cfg, {"type": "diffusers", "pipeline": str(folder)})
    assert main(["run", "--dataset", config, "--work-dir", str(tmp_path / "w"), "--quiet", "--methods", "t2ipal",
                 "--settings", "zero-shot"]) == 2
    assert _lines(capsys)[0] == [f"bench: error: no diffusers pipeline in {folder} (expected model_index.json written "
                                 "by pipeline.save_pretrained; t2ipal.generator.pipeline)"]


def test_cached_images_need_no_pipeline(tmp_path, tiny_coco, tiny_rn_cfg, offline_hub):
    """Only images still to render need the generator: with every image of the cell on disk, the T2I-PAL cell runs
    offline without the pipeline."""
    import numpy as np
    from PIL import Image

    from bench.cell.plan import Cell, plan_cell
    from bench.cell.session import Session
    from bench.config import load_config
    from bench.grid.jobs import missing_images

    config = _config(tmp_path, tiny_coco, tiny_rn_cfg, {"type": "diffusers", "pipeline": SD, "height": 64,
                                                        "width": 64})
    work = tmp_path / "w"
    session = Session(load_config(config), work / "tiny", progress=False)
    todo = missing_images([plan_cell(session.cfg, Cell("t2ipal", "coco2014", "zero-shot", None, 1))], session)
    assert len(todo) == 12  # one per training caption that names a class
    rng = np.random.default_rng(0)
    for _, _, _, path in todo:  # as if a GPU machine had rendered them into the shared cache
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    assert main(["run", "--dataset", config, "--work-dir", str(work), "--quiet", "--methods", "t2ipal",
                 "--settings", "zero-shot"]) == 0
    [record] = _records(work).values()
    assert record["status"] == "ok" and record["train_data"]["n_newly_generated"] == 0


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_generator_that_fails_at_run_time_fails_its_cell_only(tmp_path, tiny_coco, tiny_rn_cfg, capsys, jobs):
    """A pipeline folder that passes the check (it has a model_index.json) but will not load: the T2I-PAL cell is a
    failed record with its one-line reason, the others run, the run ends with a summary and exit 1; the report's
    failed-cells table shows it."""
    folder = tmp_path / "sd"
    folder.mkdir()
    (folder / "model_index.json").write_text("{ not json")
    config = _config(tmp_path, tiny_coco, tiny_rn_cfg, {"type": "diffusers", "pipeline": str(folder)})
    work = tmp_path / "w"
    code = main(["run", "--dataset", config, "--work-dir", str(work), "--quiet", "--methods", "zsclip,t2ipal,coop",
                 "--settings", "zero-shot,partial", "--jobs", jobs])
    _, out = _lines(capsys)
    assert code == 1
    records = _records(work)
    assert {k: r["status"] for k, r in records.items()} == {
        "zsclip__zero-shot__s1": "ok", "coop__partial_r0.5__s1": "ok", "t2ipal__zero-shot__s1": "failed",
        "t2ipal__partial_r0.5__s1": "failed"}
    reason = records["t2ipal__zero-shot__s1"]["error"]
    assert reason.startswith(f"GeneratorError: cannot load diffusers pipeline '{folder}' (OSError: ")
    assert "\n" not in reason
    assert "Traceback" in records["t2ipal__zero-shot__s1"]["traceback"]  # the where, kept for whoever debugs it
    assert reason.endswith("; write the folder again with pipeline.save_pretrained or huggingface-cli download ... "
                           "--local-dir, or pass another one (t2ipal.generator.pipeline)")
    summary = out[out.index("failed cells:\n"):].splitlines()
    assert sorted(summary[1:3]) == [
        f"  coco2014 t2ipal partial 0.5 s=1: {records['t2ipal__partial_r0.5__s1']['error']} "
        f"({work}/tiny/records/coco2014/t2ipal__partial_r0.5__s1.json)",
        f"  coco2014 t2ipal zero-shot s=1: {reason} ({work}/tiny/records/coco2014/t2ipal__zero-shot__s1.json)"]
    assert out.rstrip().endswith(f"2 cells done, 2 failed; records in {work}/tiny/records")

    assert main(["report", "--work-dir", str(work), "--out", str(tmp_path / "rep"), "--format", "md",
                 "--n-boot", "0"]) == 0
    failed = (tmp_path / "rep" / "failed.md").read_text()
    assert failed.count("GeneratorError: cannot load diffusers pipeline") == 2 and "t2ipal" in failed


def test_a_methods_own_backbone_that_will_not_load_fails_its_cells_only(tmp_path, tiny_config, tiny_vit_cfg, capsys):
    """The config's own backbone is every cell's (a checkpoint that does not fit it stops the run, test_cli.py); a
    method's own backbone is its cells' alone."""
    work = tmp_path / "w"
    code = main(["run", "--dataset", str(tiny_config), "--work-dir", str(work), "--quiet", "--methods", "zsclip,coop",
                 "--settings", "zero-shot,partial", "--cfg-options", "coop.train.epochs=1",
                 f"coop.backbone.model={tiny_vit_cfg['model']}",
                 f"coop.backbone.model_config={tiny_vit_cfg['model_config']}"])
    _, out = _lines(capsys)
    assert code == 1
    records = _records(work)
    assert records["zsclip__zero-shot__s1"]["status"] == "ok"
    failed = records["coop__partial_r0.5__s1"]
    assert failed["status"] == "failed" and failed["error"].startswith(
        "BackboneError: checkpoint ") and "does not fit model tiny-vit: " in failed["error"]
    assert out.rstrip().endswith(f"1 cells done, 1 failed; records in {work}/tiny/records")

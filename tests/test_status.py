"""`bench status` (bench/grid/status.py): cells done / todo / stale / failed / running per dataset, method and
setting, read from a work dir; the feature cache's entries and the generated images present or missing."""

import json
import os
import shutil

from bench.cli import main
from bench.locking import exclusive, is_held
from bench.registry import METHODS, list_names


def _run(config, work, *more):
    return ["run", "--dataset", str(config), "--work-dir", str(work), "--quiet", *more]


def _status(capsys, *more) -> list[str]:
    assert main(["status", *more]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.out.splitlines()


def test_status_of_a_run_with_a_failed_a_running_a_stale_and_a_todo_cell(tmp_path, tiny_config, probe, capsys):
    work = tmp_path / "w"
    # a probe record of another config (1 epoch), then the run whose config stays: probe's loss NaN from its first call
    assert main(_run(tiny_config, work, "--methods", "probe", "--settings", "partial", "--ratios", "0.3",
                     "--cfg-options", "probe.train.epochs=1")) == 0
    assert main(_run(tiny_config, work, "--methods", "zsclip,probe", "--settings", "zero-shot,partial", "--ratios",
                     "0.5,0.9", "--cfg-options", "probe.fail_at=1")) == 1
    records = work / "tiny" / "records" / "coco2014"
    (records / "probe__partial_r0.9__s1.json").unlink()  # never run: todo
    error = json.loads((records / "probe__partial_r0.5__s1.json").read_text())["error"]
    assert error.startswith("NonFiniteLoss: probe: non-finite training loss")
    capsys.readouterr()
    with exclusive(work / "tiny" / "cells" / "coco2014" / "zsclip__zero-shot__s1.lock", "test") as held:
        assert held
        lines = _status(capsys, "--work-dir", str(work))
        as_json = json.loads("\n".join(_status(capsys, "--work-dir", str(work), "--run", "tiny", "--json")))
    assert lines[0] == f"run tiny  ({work / 'tiny'}; cells: 2 cell selection(s) of bench run and the records)"
    table = [line.split() for line in lines[1:6]]
    assert set(lines[2]) == {"-", " "}
    assert [table[0], *table[2:]] == [
        ["dataset", "method", "setting", "cells", "done", "todo", "stale", "failed", "running"],
        ["coco2014", "probe", "partial", "3", "0", "1", "1", "1", "0"],
        ["coco2014", "zsclip", "zero-shot", "1", "0", "0", "0", "0", "1"],
        ["total", "4", "0", "1", "1", "1", "1"]]
    assert lines[6:13] == [
        "failed:", f"  coco2014  probe__partial_r0.5__s1  ({error})",
        "running:", f"  coco2014  zsclip__zero-shot__s1  (pid {os.getpid()})",
        "stale:", "  coco2014  probe__partial_r0.3__s1  (config changed since the record was written)",
        "derived records: 0 fused, 1 diagnostics"]
    assert lines[13] == "feature cache:"
    assert lines[14].startswith("  coco2014/test  (8 images, tiny-rn@") and lines[14].endswith("present: global")
    assert lines[15].startswith("  coco2014/train  (12 images, tiny-rn@") and lines[15].endswith("present: global")
    assert as_json["counts"][0] == {"dataset": "coco2014", "method": "probe", "setting": "partial", "cells": 3,
                                    "done": 0, "todo": 1, "stale": 1, "failed": 1, "running": 0}
    # the lock given back: the cell is done again
    lines = _status(capsys, "--work-dir", str(work), "--cells")
    assert "done:" in lines and "  coco2014  zsclip__zero-shot__s1" in lines and "running:" not in lines
    # a plug-in gone: its selections' and records' cells are left out, named once per reason
    METHODS.module_dict.pop("probe")
    lines = _status(capsys, "--work-dir", str(work))
    assert [line.split()[:3] for line in lines[3:5]] == [["coco2014", "zsclip", "zero-shot"], ["total", "1", "1"]]
    why = f"unknown method 'probe'; valid names: {', '.join(list_names(METHODS))}"
    assert f"left out ({why}): 3 file(s): sweeps.json, probe__partial_r0.3__s1.json, probe__partial_r0.5__s1.json" \
        in lines  # the selection once for both, and the two probe records


def _entry_of(cache, desc: str):
    """The cache entry folder whose manifest's desc is ``desc``."""
    found = [m.parent for m in cache.glob("features/*/*/manifest.json") if json.loads(m.read_text())["desc"] == desc]
    assert len(found) == 1, found
    return found[0]


def test_feature_entries_present_being_filled_and_missing(tmp_path, tiny_config, capsys):
    work = tmp_path / "w"
    assert main(_run(tiny_config, work, "--methods", "zsclip", "--settings", "zero-shot")) == 0
    capsys.readouterr()
    entry = _entry_of(work / "cache", "coco2014/test features")
    # as a run leaves an entry it is filling: a layout, one of two chunks written, no manifest yet
    (entry / "manifest.json").unlink()
    (entry / "chunks").mkdir()
    (entry / "chunks" / "0").touch()
    (entry / "layout.json").write_text(json.dumps({"chunk": 4, "rows": 8}))
    test_line = next(line for line in _status(capsys, "--work-dir", str(work)) if "coco2014/test" in line)
    assert test_line.endswith("being filled: global 1/2 chunks")
    shutil.rmtree(entry)
    test_line = next(line for line in _status(capsys, "--work-dir", str(work)) if "coco2014/test" in line)
    assert test_line.endswith("missing: global")
    shutil.rmtree(work / "cache")  # nothing cached: said without loading the backbone
    lines = _status(capsys, "--work-dir", str(work))
    test_line = next(line for line in lines if "coco2014/test" in line)
    assert test_line.endswith(f"missing: global  (no feature cache at {work / 'cache'} yet)")


def test_generated_images_present_and_missing(tmp_path, tiny_config, capsys):
    from bench.cell.generated import generation_plan
    from bench.cell.plan import Cell, plan_cell
    from bench.cell.session import Session
    from bench.config import load_config
    from bench.generation.generators import generate_all
    from bench.grid.selection import remember_selection, selection
    from bench.registry import construct

    synonyms = tmp_path / "colours.json"
    synonyms.write_text(json.dumps({"classes": [{"name": c, "synonyms": [c]} for c in
                                                ("red", "green", "blue", "yellow")]}))
    cfg = load_config(str(tiny_config), {"t2ipal.template_captions": False, "t2ipal.generator.size": 32,
                                         "dataset.synonyms": str(synonyms)})
    run_dir = tmp_path / "w" / "tiny"
    session = Session(cfg, run_dir, device="cpu", progress=False)  # writes the run's config.py, as bench run does
    remember_selection(run_dir, selection(cfg, "t2ipal", ["zero-shot"]))
    plan = plan_cell(cfg, Cell("t2ipal", "coco2014", "zero-shot", None, 1))
    generation = generation_plan(session, construct(plan.method_cls, plan.kwargs, "t2ipal"), "zero-shot")
    n = len(generation["paths"])
    assert n == 12
    lines = _status(capsys, "--work-dir", str(tmp_path / "w"))
    assert f"generated images of t2ipal: 0 present, {n} missing (of {n})" in lines
    assert [line for line in lines if "generated (t2ipal)" in line][0].startswith(f"  generated (t2ipal)  ({n} images")
    captions = [generation["captions"][i] for i in generation["caption_index"][:5]]
    generate_all(generation["generator"], captions, generation["seeds"][:5].tolist(), generation["root"],
                 progress=False)
    assert f"generated images of t2ipal: 5 present, {n - 5} missing (of {n})" in _status(capsys, "--work-dir",
                                                                                         str(tmp_path / "w"))


def test_status_without_a_run_is_one_line(tmp_path, capsys):
    assert main(["status", "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bench: error: no run under {tmp_path}: no {tmp_path}/<run>/config.py (bench run writes one per "
                   "run); pass the --work-dir bench run was given"]
    assert main(["status", "--work-dir", str(tmp_path), "--run", "nope"]) == 2
    assert capsys.readouterr().err.strip() == (f"bench: error: no run 'nope' under {tmp_path}: "
                                               f"{tmp_path / 'nope' / 'config.py'} is missing (bench run writes it "
                                               "when it starts)")


def test_is_held(tmp_path):
    lock = tmp_path / "cell.lock"
    assert not is_held(lock)  # no file
    with exclusive(lock, "cell"):
        assert is_held(lock)
    assert not is_held(lock) and lock.is_file()

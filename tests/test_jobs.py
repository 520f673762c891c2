"""`bench run --jobs N` (bench/grid/jobs.py): the same records as one process, errors as one line, images
rendered once in shares with the same bytes as the generator's own loop."""

import json
import os
import shutil

import pytest

from bench.cli import main
from bench.grid import jobs


def _records(work) -> dict:
    """Record file name -> (status, mAP, config hash) of every cell record under ``work``."""
    out = {}
    for path in sorted(work.glob("**/records/**/*.json")):
        record = json.loads(path.read_text())
        if "mAP" in record:
            out[path.name] = (record["status"], record["mAP"], record["config_hash"])
    return out


def _error(capsys, argv) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    err = captured.err.strip().splitlines()[-1]
    assert err.startswith("bench: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return err[len("bench: error: "):]


def test_resolve_jobs(monkeypatch):
    monkeypatch.setattr(jobs, "usable_cores", lambda: 4)
    assert jobs.resolve_jobs("auto", "cpu") == (4, 1)
    assert jobs.resolve_jobs("auto", "cuda") == (1, 4)
    assert jobs.resolve_jobs(2, "cpu") == (2, 2)
    assert jobs.resolve_jobs("3", "cpu") == (3, 1)
    assert jobs.resolve_jobs("2", "cpu", threads=3) == (2, 3)
    for bad in ("0", "two", "1.5", -1):
        with pytest.raises(ValueError, match=r"--jobs / runtime.jobs must be 'auto' or an integer >= 1, got"):
            jobs.resolve_jobs(bad, "cpu")


def test_two_jobs_write_the_records_of_one_process(tmp_path, tiny_config, capsys):
    run = ["run", "--dataset", str(tiny_config), "--quiet", "--threads", "1", "--methods",
           "zsclip,coop,linear_probe,tip_adapter", "--settings", "zero-shot,partial"]
    assert main(run + ["--work-dir", str(tmp_path / "one"), "--jobs", "1"]) == 0
    assert main(run + ["--work-dir", str(tmp_path / "two"), "--jobs", "2"]) == 0
    capsys.readouterr()
    one, two = _records(tmp_path / "one"), _records(tmp_path / "two")
    diagnostics = [json.loads(next(w.glob("**/records/**/diagnostics__real.json")).read_text())["modality_gap"]
                   for w in (tmp_path / "one", tmp_path / "two")]
    assert diagnostics[0] == diagnostics[1]  # written by a worker, beside the cells
    assert set(one) == {"zsclip__zero-shot__s1.json", "coop__partial_r0.5__s1.json",
                        "linear_probe__partial_r0.5__s1.json", "tip_adapter__partial_r0.5__s1.json"}
    assert one == two  # same status, mAP (exactly) and config hash per cell
    timings = json.loads(next((tmp_path / "two").glob("*/timings.json")).read_text())
    assert timings["jobs"]["jobs"] == 2 and timings["jobs"]["threads"] == 1 and timings["jobs"]["start"] == "fork"
    assert set(timings["jobs"]["tasks"]) == {"features of the real images and captions", "diagnostics",
                                             "zsclip__zero-shot__s1",
                                             "coop__partial_r0.5__s1", "linear_probe__partial_r0.5__s1",
                                             "tip_adapter__partial_r0.5__s1"}
    assert "jobs" not in json.loads(next((tmp_path / "one").glob("*/timings.json")).read_text())
    # a rerun with nothing left to do finds every record done
    assert main(run + ["--work-dir", str(tmp_path / "two"), "--jobs", "2"]) == 0
    assert _records(tmp_path / "two") == two


def test_an_error_in_a_worker_is_one_line(tmp_path, tiny_config, tiny_coco, capsys):
    root = tmp_path / "coco"
    shutil.copytree(tiny_coco[0], root)
    victim = sorted((root / "train2014").iterdir())[3]
    victim.write_bytes(b"garbage")
    err = _error(capsys, ["run", "--dataset", str(tiny_config), "--work-dir", str(tmp_path / "w"), "--quiet",
                          "--data-root", str(root), "--methods", "zsclip,coop", "--settings", "zero-shot,partial",
                          "--jobs", "2"])
    assert err.startswith(f"corrupt image {victim} (in coco2014/train): ")


def test_a_dead_worker_ends_the_run_with_one_line(tmp_path, tiny_config, capsys, monkeypatch):
    monkeypatch.setattr(jobs, "_worker", lambda *args: os._exit(7))  # forked workers run the patched function
    err = _error(capsys, ["run", "--dataset", str(tiny_config), "--work-dir", str(tmp_path / "w"), "--quiet",
                          "--methods", "zsclip,coop", "--settings", "zero-shot,partial", "--jobs", "2",
                          "--threads", "1"])
    assert err.startswith("worker process ") and "died (exit code 7) while running " in err
    assert err.endswith("rerun the same command to resume (or pass --jobs 1)")


def test_bad_jobs_value_is_one_line(tmp_path, tiny_config, capsys):
    err = _error(capsys, ["run", "--dataset", str(tiny_config), "--work-dir", str(tmp_path / "w"), "--quiet",
                          "--methods", "zsclip", "--jobs", "many"])
    assert err == "--jobs / runtime.jobs must be 'auto' or an integer >= 1, got 'many'"


def test_rendering_in_shares_gives_the_generators_bytes(tmp_path):
    from bench.generation.generators import ToyGenerator, generate_all, image_key, image_path, render_and_save

    generator = ToyGenerator(size=64)
    prompts = ["two red cars", "a dog near a tree", "a cat", "three birds and a person"]
    seeds = [1, 2, 3, 4]
    whole = generate_all(generator, prompts, seeds, tmp_path / "a", progress=False)
    items = [(generator, p, s, str(image_path(tmp_path / "b", image_key(generator.identity(), p, s))))
             for p, s in zip(prompts, seeds)]
    assert render_and_save(items[0::2]) + render_and_save(items[1::2], batch_size=1) == 4
    shared = generate_all(generator, prompts, seeds, tmp_path / "b", progress=False)  # renders nothing more
    assert [p for *_, p in items] == shared
    for a, b in zip(whole, shared):
        assert open(a, "rb").read() == open(b, "rb").read()


def test_spawned_workers_write_the_records_of_one_process(tmp_path, tiny_config, capsys):
    # two threads per job: workers are spawned (a forked OpenMP pool of several threads would hang)
    run = ["run", "--dataset", str(tiny_config), "--quiet", "--threads", "2", "--methods", "zsclip,coop",
           "--settings", "zero-shot,partial"]
    assert main(run + ["--work-dir", str(tmp_path / "one"), "--jobs", "1"]) == 0
    assert main(run + ["--work-dir", str(tmp_path / "two"), "--jobs", "2"]) == 0
    capsys.readouterr()
    one, two = _records(tmp_path / "one"), _records(tmp_path / "two")
    assert set(one) == {"zsclip__zero-shot__s1.json", "coop__partial_r0.5__s1.json"} and one == two
    timings = json.loads(next((tmp_path / "two").glob("*/timings.json")).read_text())
    assert timings["jobs"]["threads"] == 2 and timings["jobs"]["start"] == "spawn"

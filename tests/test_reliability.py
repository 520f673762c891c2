"""Reliability: resume after kills, determinism, non-finite losses, torchrun with 2 CPU ranks."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from bench.cli import main
from bench.testing import ProbeMethod

VOLATILE = {"seconds", "peak_memory_mb", "environment"}  # allowed to differ between identical runs


def _records(work) -> dict:
    return {p.name: json.loads(p.read_text()) for p in sorted(work.glob("**/records/**/*.json"))
            if not p.name.startswith("diagnostics__")}  # cell records only


def _stable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in VOLATILE}


def _run_args(config, work, *extra):
    return ["run", "--dataset", str(config), "--work-dir", str(work), "--quiet", *extra]


def test_resume_mid_training_equals_uninterrupted(tmp_path, tiny_config, probe, monkeypatch):
    args = ["--methods", "probe", "--settings", "partial", "--ratios", "0.5", "--cfg-options",
            "probe.train.epochs=4"]
    assert main(_run_args(tiny_config, tmp_path / "clean", *args)) == 0
    [clean] = _records(tmp_path / "clean").values()

    # 12 train images, batch 4: 3 iterations per epoch; killed in the 8th (epoch 3)
    monkeypatch.setenv("BENCH_PROBE_INTERRUPT_AT", str(ProbeMethod.loss_calls + 8))
    with pytest.raises(KeyboardInterrupt):
        main(_run_args(tiny_config, tmp_path / "killed", *args))
    [state] = (tmp_path / "killed" / "tiny" / "cells" / "coco2014" / "probe__partial_r0.5__s1").iterdir()
    assert state.name.startswith(clean["config_hash"] + "_")  # checkpoints belong to one config (and data)
    assert (state / "epoch_2.pth").is_file() and not _records(tmp_path / "killed")
    monkeypatch.delenv("BENCH_PROBE_INTERRUPT_AT")
    before = ProbeMethod.loss_calls
    assert main(_run_args(tiny_config, tmp_path / "killed", *args)) == 0
    assert ProbeMethod.loss_calls - before == 6  # resumed at epoch 3: only epochs 3 and 4 ran
    [resumed] = _records(tmp_path / "killed").values()
    assert resumed["mAP"] == clean["mAP"]
    assert resumed["per_class_AP"] == clean["per_class_AP"]


def test_same_seed_same_config_same_record(tmp_path, tiny_config, probe):
    args = ["--methods", "zsclip,probe", "--settings", "zero-shot,partial,fewshot", "--ratios", "0.3,0.7",
            "--seeds", "1,2", "--cfg-options", "sweep.shots=2"]
    for name in ("a", "b"):
        assert main(_run_args(tiny_config, tmp_path / name, *args)) == 0
    a, b = _records(tmp_path / "a"), _records(tmp_path / "b")
    assert len(a) == 1 + 2 * 2 + 2  # zsclip once; probe partial (2 ratios x 2 seeds) and few-shot (2 seeds)
    assert {k: _stable(v) for k, v in a.items()} == {k: _stable(v) for k, v in b.items()}
    known = {(r["seed"], r["label_ratio"]): r["train_data"]["known_label_fraction"]
             for r in a.values() if r["setting"] == "partial"}
    for seed in (1, 2):  # 48 label entries: the kept fraction is near the ratio, and nested masks grow with it
        assert known[seed, 0.3] == pytest.approx(0.3, abs=0.2) and known[seed, 0.7] == pytest.approx(0.7, abs=0.2)
        assert known[seed, 0.3] < known[seed, 0.7]


def test_nonfinite_loss_fails_its_cell_only(tmp_path, tiny_config, probe, capsys):
    work = tmp_path / "w"
    code = main(_run_args(tiny_config, work, "--methods", "zsclip,probe", "--settings", "zero-shot,partial",
                          "--ratios", "0.5", "--cfg-options", "probe.fail_at=2"))
    assert code == 1
    records = _records(work)
    assert records["zsclip__zero-shot__s1.json"]["status"] == "ok"
    failed = records["probe__partial_r0.5__s1.json"]
    assert failed["status"] == "failed" and "non-finite training loss (nan)" in failed["error"]
    capsys.readouterr()
    assert main(["report", "--work-dir", str(work)]) == 0
    assert "failed cells:" in capsys.readouterr().out


def test_malformed_record_named(tmp_path, capsys):
    bad = tmp_path / "run" / "records" / "toy" / "x__zero-shot__s1.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"method": "x"')
    assert main(["report", "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bench: error: no readable record under {tmp_path}: {bad} (malformed record: "
                          "JSONDecodeError: ") and len(err.splitlines()) == 1


def _bench(args, env):
    return subprocess.Popen([sys.executable, "-m", "bench.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def test_sigkill_at_random_points_loses_and_recomputes_nothing(tmp_path, tiny_config, probe):
    args = ["--methods", "zsclip,probe", "--settings", "zero-shot,partial", "--ratios", "0.3,0.6,0.9",
            "--seeds", "1,2", "--cfg-options", "probe.train.epochs=6"]
    assert main(_run_args(tiny_config, tmp_path / "ref", *args)) == 0
    reference = _records(tmp_path / "ref")
    assert len(reference) == 7

    env = dict(os.environ, OMP_NUM_THREADS="1")
    killed = _run_args(tiny_config, tmp_path / "k", *args, f"runtime.cache_dir={tmp_path / 'kcache'}")
    rng = random.Random(0)
    for delay in sorted(rng.uniform(4, 14) for _ in range(3)):
        before = {p: p.stat().st_mtime_ns for p in (tmp_path / "k").glob("**/records/**/*.json")}
        proc = _bench(killed, env)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for path, mtime in before.items():  # finished cells were neither lost nor recomputed
            assert path.stat().st_mtime_ns == mtime
        for record in _records(tmp_path / "k").values():  # whatever exists is whole
            assert record["status"] == "ok"
    proc = _bench(killed, env)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    final = _records(tmp_path / "k")
    assert final.keys() == reference.keys()
    for name, record in final.items():
        assert record["mAP"] == reference[name]["mAP"], name
        assert record["config_hash"] == reference[name]["config_hash"]


def test_torchrun_two_cpu_ranks(tmp_path, tiny_config, probe):
    args = ["--methods", "zsclip,probe", "--settings", "zero-shot,partial", "--ratios", "0.5", "--seeds", "1,2"]
    assert main(_run_args(tiny_config, tmp_path / "single", *args)) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           "-m", "bench.cli", *_run_args(tiny_config, tmp_path / "multi", *args, "--device", "cpu")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "rank 0/2: 2 cells done" in out.stdout and "rank 1/2: 1 cells done" in out.stdout
    single, multi = _records(tmp_path / "single"), _records(tmp_path / "multi")
    assert multi.keys() == single.keys()
    assert {k: v["mAP"] for k, v in multi.items()} == {k: v["mAP"] for k, v in single.items()}


def test_tensorboard_logging_and_config_dump(tmp_path, tiny_config, probe):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    work = tmp_path / "w"
    assert main(_run_args(tiny_config, work, "--methods", "probe", "--settings", "partial", "--ratios", "0.5",
                          "--cfg-options", "runtime.vis_backends=[TensorboardVisBackend]", "runtime.log_interval=1",
                          "probe.train.epochs=2")) == 0
    [events] = work.glob("tiny/cells/coco2014/probe__partial_r0.5__s1/*_*/*/vis_data/events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert {"loss", "lr"} <= set(accumulator.Tags()["scalars"])
    assert len(accumulator.Scalars("loss")) == 6  # 2 epochs x 3 iterations, logged every iteration
    from mmengine.config import Config

    dumped = Config.fromfile(str(work / "tiny" / "config.py"))  # the run's config, --cfg-options applied
    assert dumped.probe.train.epochs == 2 and dumped.runtime.vis_backends == ["TensorboardVisBackend"]

"""Two `bench run` processes on one work dir: a cell is run by one process at a time, and a checkpoint is
only ever resumed by the config that wrote it."""

import json
import logging
import os
import subprocess
import sys
import time

import pytest

from bench.cli import main
from bench.testing import ProbeMethod

CELL = "probe__partial_r0.5__s1"


def _args(config, work, epochs):
    return ["run", "--dataset", str(config), "--work-dir", str(work), "--quiet", "--methods", "probe",
            "--settings", "partial", "--ratios", "0.5", "--cfg-options", f"probe.train.epochs={epochs}"]


def _record(work):
    return json.loads((work / "tiny" / "records" / "coco2014" / f"{CELL}.json").read_text())


def test_another_configs_checkpoint_is_never_resumed(tmp_path, tiny_config, probe, monkeypatch):
    assert main(_args(tiny_config, tmp_path / "clean_b", 3)) == 0
    clean_b = _record(tmp_path / "clean_b")
    work = tmp_path / "w"
    # config A (4 epochs) killed in its 8th iteration (epoch 3): epochs 1 and 2 are checkpointed
    monkeypatch.setenv("BENCH_PROBE_INTERRUPT_AT", str(ProbeMethod.loss_calls + 8))
    with pytest.raises(KeyboardInterrupt):
        main(_args(tiny_config, work, 4))
    monkeypatch.delenv("BENCH_PROBE_INTERRUPT_AT")
    [state_a] = (work / "tiny" / "cells" / "coco2014" / CELL).iterdir()
    assert (state_a / "epoch_2.pth").is_file()
    before = ProbeMethod.loss_calls
    assert main(_args(tiny_config, work, 3)) == 0  # config B: trains from scratch, 3 epochs x 3 iterations
    assert ProbeMethod.loss_calls - before == 9
    record = _record(work)
    assert record["config_hash"] == clean_b["config_hash"] and record["mAP"] == clean_b["mAP"]
    assert record["per_class_AP"] == clean_b["per_class_AP"]
    assert (state_a / "epoch_2.pth").is_file()  # A's state is left for A
    before = ProbeMethod.loss_calls
    assert main(_args(tiny_config, work, 4)) == 0  # config A again: resumes its own epoch 2
    assert ProbeMethod.loss_calls - before == 6


def test_second_process_waits_and_never_mixes_configs(tmp_path, tiny_config, probe, caplog):
    assert main(_args(tiny_config, tmp_path / "clean_b", 3)) == 0
    clean_b = _record(tmp_path / "clean_b")
    work = tmp_path / "w"
    lock = work / "tiny" / "cells" / "coco2014" / f"{CELL}.lock"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.Popen([sys.executable, "-m", "bench.cli", *_args(tiny_config, work, 150)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (lock.is_file() and lock.read_text() == str(first.pid)):  # the first process holds the cell
            assert first.poll() is None and time.time() < deadline, first.stderr.read().decode()[-2000:]
            time.sleep(0.1)
        before = ProbeMethod.loss_calls
        with caplog.at_level(logging.WARNING, logger="bench"):
            assert main(_args(tiny_config, work, 3)) == 0  # the second: another config, same cell
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            first.kill()
        first.wait()
    assert caplog.messages == [  # one line each: skipped, come back to and waited for, then recomputed
        f"cell {CELL} is being run by another process (pid {first.pid}); coming back to it after the others",
        f"cell {CELL} is locked by another process (pid {first.pid}); waiting for it",
        f"{CELL}: stale: config changed since the record was written; recomputing"]
    assert ProbeMethod.loss_calls - before == 9  # trained from scratch: nothing resumed from the 150-epoch run
    record = _record(work)
    assert record["config"]["method"]["train"]["epochs"] == 3 and record["config_hash"] == clean_b["config_hash"]
    assert record["mAP"] == clean_b["mAP"] and record["per_class_AP"] == clean_b["per_class_AP"]
    states = sorted(p.name.split("_")[0] for p in (work / "tiny" / "cells" / "coco2014" / CELL).iterdir())
    assert len(states) == 2 and clean_b["config_hash"] in states  # one state folder per config

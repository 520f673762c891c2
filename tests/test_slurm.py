"""`bench run --slurm` (bench/grid/slurm.py): the jobs run as real local processes through submitit's LocalExecutor
write the records of a plain run, and a rerun after a killed shard submits only the missing cells; on Slurm, the
sbatch scripts submitit writes (captured by a stand-in `sbatch` on PATH) carry the asked resources and the
dependencies; bad options are one line."""

import json
import os
import stat

import pytest
from submitit.core.utils import DelayedSubmission

from bench.cli import _assignments, main
from bench.grid.slurm import job_parameters

CELLS = {"zsclip__zero-shot__s1.json", "probe__partial_r0.3__s1.json", "probe__partial_r0.5__s1.json",
         "probe__partial_r0.9__s1.json"}


def _args(config, work, *more):
    return ["run", "--dataset", str(config), "--work-dir", str(work), "--quiet", "--methods", "zsclip,probe",
            "--settings", "zero-shot,partial", "--ratios", "0.3,0.5,0.9", *more]


def _records(work) -> dict:
    """Cell record name -> (status, mAP, per-class AP, config hash)."""
    out = {}
    for path in sorted(work.glob("*/records/*/*.json")):
        record = json.loads(path.read_text())
        if "mAP" in record:
            out[path.name] = (record["status"], record["mAP"], record["per_class_AP"], record["config_hash"])
    return out


def _error(capsys, argv) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err + captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench: error: "), captured.err
    return err[0][len("bench: error: "):]


def test_local_jobs_write_a_plain_runs_records_and_a_rerun_submits_only_what_is_missing(
        tmp_path, tiny_config, probe, monkeypatch, capsys):
    assert main(_args(tiny_config, tmp_path / "plain")) == 0
    plain = _records(tmp_path / "plain")
    assert set(plain) == CELLS
    work = tmp_path / "w"
    run = _args(tiny_config, work, "--slurm", "cluster=local,prepare.tasks_per_node=2", "--shards", "2",
                "--cfg-options", "slurm.report_formats=[md]")
    # shard 0 runs zsclip and probe r0.5, shard 1 probe r0.3 then r0.9: a probe cell makes 9 loss calls (3 epochs
    # x 3 batches), so at the 10th loss call of its process shard 1 is killed, in its second cell; shard 0 never is
    monkeypatch.setenv("BENCH_PROBE_INTERRUPT_AT", "10")
    capsys.readouterr()
    assert main(run) == 1
    out = capsys.readouterr().out
    assert "4 cells: 0 done, 4 to run" in out
    assert "started cells (pids " in out and "the cells shard 1 job (pid " in out and " failed: " in out
    first = _records(work)
    assert set(first) == CELLS - {"probe__partial_r0.9__s1.json"}
    assert all(first[name] == plain[name] for name in first)
    run_dir = work / "tiny"
    # the prepare job ran on two tasks, ranks of one process group (gloo here)
    prepare_logs = sorted(p for p in (run_dir / "slurm").glob("*/*_log.err") if "prepare (task" in p.read_text())
    assert [p.name.split("_")[1] for p in prepare_logs] == ["0", "1"]
    assert "prepare (task 2 of 2): done" in prepare_logs[1].read_text()
    # the finishing job ran after every shard ended, the killed one included: diagnostics, report, its mark
    assert (run_dir / "records" / "coco2014" / "diagnostics__real.json").is_file()
    assert (run_dir / "report" / "README.md").is_file() and (run_dir / "finished.json").is_file()
    kept = {p.name: p.stat().st_mtime_ns for p in (run_dir / "records" / "coco2014").glob("*.json")}

    monkeypatch.delenv("BENCH_PROBE_INTERRUPT_AT")
    assert main(run) == 0
    out = capsys.readouterr().out
    assert "4 cells: 3 done, 1 to run" in out
    assert "started cells (pid " in out  # one shard: the one missing cell
    shard = [p for p in (run_dir / "slurm").glob("*/*_submitted.pkl")
             if DelayedSubmission.load(p).function.__name__ == "cells_job"]
    cells_run = [[c["method"], c["label_ratio"]] for p in shard for c in DelayedSubmission.load(p).args[1]]
    assert sorted(cells_run) == [["probe", 0.3], ["probe", 0.5], ["probe", 0.9], ["probe", 0.9], ["zsclip", None]]
    assert _records(work) == plain  # same status, mAP, per-class AP and config hash per cell
    for name, mtime in kept.items():  # nothing finished was written again
        if name != "diagnostics__real.json":
            assert (run_dir / "records" / "coco2014" / name).stat().st_mtime_ns == mtime, name
    # and once every cell is done and reported, the same command submits nothing
    assert main(run) == 0
    assert "nothing to submit" in capsys.readouterr().out


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """`sbatch` and `srun` stand-ins on PATH: sbatch keeps each script it is given as <n>.sh (n from 1001 on) and
    answers as Slurm does; SBATCH_FAIL=<message> makes it refuse with that message."""
    bin_dir, scripts = tmp_path / "bin", tmp_path / "sbatch"
    bin_dir.mkdir()
    scripts.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/bash\n"
        'if [ -n "$SBATCH_FAIL" ]; then echo "$SBATCH_FAIL" >&2; exit 1; fi\n'
        f'n=$(( $(cat {scripts}/count 2>/dev/null || echo 1000) + 1 )); echo $n > {scripts}/count\n'
        f'cp "$1" {scripts}/$n.sh; echo "Submitted batch job $n"\n')
    (bin_dir / "srun").write_text("#!/bin/bash\nexit 0\n")
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).chmod((bin_dir / tool).stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return scripts


def _flags(text: str) -> set[str]:
    return {line for line in text.splitlines() if line.startswith("#SBATCH")}


def test_sbatch_scripts_carry_the_resources_and_the_dependencies(tmp_path, tiny_config, probe, fake_slurm, capsys):
    asked = ("partition=gpu,gpus_per_task=1,cpus_per_task=8,time=240,account=lab,qos=high,mem=64G,"
             "prepare.tasks_per_node=4,finish.gpus_per_task=0,additional_parameters.constraint=a100")
    run = _args(tiny_config, tmp_path / "w", "--slurm", asked, "--shards", "2")
    assert main(run + ["--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert not (tmp_path / "w").exists()  # a dry run writes nothing
    assert main(run) == 0
    out = capsys.readouterr().out
    logs = tmp_path / "w" / "tiny" / "slurm"
    assert f"submitted prepare: job 1001; log: {logs}/1001/1001_0_log.out" in out
    assert "submitted cells: array job 1002 (2 shards), after job 1001 (afterok)" in out
    assert "submitted finish: job 1003, after job 1002 (afterany)" in out
    common = {"#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --qos=high", "#SBATCH --time=240",
              "#SBATCH --mem=64G", "#SBATCH --cpus-per-task=8", "#SBATCH --constraint=a100", "#SBATCH --nodes=1",
              "#SBATCH --open-mode=append", "#SBATCH --signal=USR2@90", "#SBATCH --wckey=submitit"}
    prepare, cells, finish = (_flags((fake_slurm / f"{n}.sh").read_text()) for n in (1001, 1002, 1003))
    assert prepare == common | {"#SBATCH --job-name=bench-tiny-prepare", "#SBATCH --ntasks-per-node=4",
                                "#SBATCH --gpus-per-task=1", f"#SBATCH --output={logs}/%j/%j_0_log.out",
                                f"#SBATCH --error={logs}/%j/%j_0_log.err"}
    assert cells == common | {"#SBATCH --job-name=bench-tiny-cells", "#SBATCH --ntasks-per-node=1",
                              "#SBATCH --gpus-per-task=1", "#SBATCH --array=0-1%2", "#SBATCH --dependency=afterok:1001",
                              "#SBATCH --kill-on-invalid-dep=yes", f"#SBATCH --output={logs}/%A_%a/%A_%a_0_log.out",
                              f"#SBATCH --error={logs}/%A_%a/%A_%a_0_log.err"}
    assert finish == common | {"#SBATCH --job-name=bench-tiny-finish", "#SBATCH --ntasks-per-node=1",
                               "#SBATCH --dependency=afterany:1002", f"#SBATCH --output={logs}/%j/%j_0_log.out",
                               f"#SBATCH --error={logs}/%j/%j_0_log.err"}  # no GPU for the finishing job
    # --dry-run printed the same flags, with placeholders for the job ids
    printed = {line.strip() for line in dry.splitlines() if line.strip().startswith("#SBATCH")}
    assert printed == (prepare | cells | finish) - {"#SBATCH --dependency=afterok:1001",
                                                    "#SBATCH --dependency=afterany:1002"} | {
        "#SBATCH --dependency=afterok:PREPARE_JOB_ID", "#SBATCH --dependency=afterany:CELLS_JOB_ID"}
    # each shard's pickled call holds every other cell, fixed when submitting; the run's config is plain data
    shards = [DelayedSubmission.load(logs / f"1002_{i}" / f"1002_{i}_submitted.pkl") for i in (0, 1)]
    assert [[c["method"] + str(c["label_ratio"]) for c in s.args[1]] for s in shards] == [
        ["zsclip" + "None", "probe0.5"], ["probe0.3", "probe0.9"]]
    spec = shards[0].args[0]
    assert type(spec["config"]) is dict and spec["config"]["slurm"]["partition"] == "gpu"
    assert json.loads((tmp_path / "w" / "tiny" / "sweeps.json").read_text())[0]["methods"] == ["zsclip", "probe"]


def test_sbatch_refusing_a_job_is_one_line(tmp_path, tiny_config, fake_slurm, monkeypatch, capsys):
    monkeypatch.setenv("SBATCH_FAIL", "sbatch: error: invalid partition specified: gpux")
    err = _error(capsys, ["run", "--dataset", str(tiny_config), "--work-dir", str(tmp_path / "w"), "--quiet",
                          "--methods", "zsclip", "--slurm", "partition=gpux"])
    assert err == "sbatch refused the prepare job: sbatch: error: invalid partition specified: gpux"


def test_slurm_without_srun_is_one_line(tmp_path, tiny_config, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    err = _error(capsys, ["run", "--dataset", str(tiny_config), "--work-dir", str(tmp_path / "w"), "--quiet",
                          "--methods", "zsclip", "--slurm", "partition=gpu"])
    assert err.startswith("slurm.cluster='slurm' but there is no `srun` on PATH: submit from a Slurm login node")


@pytest.mark.parametrize("more, message", [
    (["--slurm", "time=four"], "config value slurm.time='four' (str): expected int"),
    (["--slurm", "partitions=gpu"], "unknown config key 'slurm.partitions'; valid keys of slurm: "),
    (["--slurm", "cluster=lsf"], "config value slurm.cluster='lsf': expected one of ('slurm', 'local')"),
    (["--slurm", "prepare.tasks_per_node=0"], "slurm.prepare.tasks_per_node must be >= 1, got 0"),
    (["--slurm", "--shards", "0"], "--shards / slurm.shards must be >= 1, got 0"),
    (["--shards", "4"], "--shards needs --slurm (the jobs' resources: --slurm partition=...,time=...); to run one "
                        "task of an array of your own, use --shard i/n"),
    (["--slurm", "--shard", "0/2"], "--shard and --slurm do not go together: --slurm shares the cells out itself "
                                    "(--shards N)"),
])
def test_bad_slurm_options_are_one_line(tmp_path, tiny_config, capsys, more, message):
    err = _error(capsys, ["run", "--dataset", str(tiny_config), "--work-dir", str(tmp_path / "w"), "--quiet",
                          "--methods", "zsclip", *more])
    assert err.startswith(message), err


def test_slurm_flag_values():
    assert _assignments("partition=gpu,gpus_per_task=1,time=240") == {"partition": "gpu", "gpus_per_task": 1,
                                                                      "time": 240}
    assert _assignments("prepare.tasks_per_node=8,mem=64G,account=None,additional_parameters.exclusive=true") == {
        "prepare.tasks_per_node": 8, "mem": "64G", "account": None, "additional_parameters.exclusive": True}
    assert _assignments("") == {}
    with pytest.raises(Exception, match="expected key=value pairs separated by commas, got 'gpu'"):
        _assignments("partition=a,gpu")


def test_job_parameters_take_each_jobs_overrides():
    slurm = {"partition": "gpu", "time": 60, "gpus_per_task": 1, "cpus_per_task": 4, "mem": None, "setup": ["a b"],
             "additional_parameters": {"constraint": "a100"}, "prepare": {"nodes": 2, "tasks_per_node": 8},
             "finish": {"gpus_per_task": 0, "time": 30}}
    assert job_parameters(slurm, "prepare", "p") == {
        "job_name": "p", "time": 60, "nodes": 2, "ntasks_per_node": 8, "partition": "gpu", "cpus_per_task": 4,
        "gpus_per_task": 1, "setup": ["a b"], "additional_parameters": {"constraint": "a100"}}
    assert job_parameters(slurm, "finish", "f") == {
        "job_name": "f", "time": 30, "nodes": 1, "ntasks_per_node": 1, "partition": "gpu", "cpus_per_task": 4,
        "setup": ["a b"], "additional_parameters": {"constraint": "a100"}}
    assert job_parameters(slurm, "cells", "c")["ntasks_per_node"] == 1  # a shard is one process


def test_cells_running_now_are_not_submitted_again(tmp_path, tiny_config, capsys):
    from bench.locking import exclusive

    work = tmp_path / "w"
    lock = work / "tiny" / "cells" / "coco2014" / "zsclip__zero-shot__s1.lock"
    with exclusive(lock, "cell"):  # as a shard of an earlier submission would hold it
        assert main(["run", "--dataset", str(tiny_config), "--work-dir", str(work), "--quiet", "--methods",
                     "zsclip", "--slurm", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["1 cells: 0 done, 0 to run, 1 running now (their locks are held; not submitted again: "
                   "zsclip__zero-shot__s1)", "nothing to submit: rerun when the running cells are done"]


def test_a_job_on_a_node_without_a_gpu_refuses_amp(tmp_path, tiny_config):
    from bench.config import load_config
    from bench.grid import slurm_jobs

    cfg = load_config(str(tiny_config), {"runtime.amp": "fp16"})  # accepted where it was submitted (a login node)
    spec = {"config": cfg.to_dict(), "work_dir": str(tmp_path / "w" / "tiny"), "device": "cpu", "cells": []}
    with pytest.raises(ValueError, match=r"^--amp / runtime.amp=fp16 needs --device cuda \(autocast runs on CUDA "):
        slurm_jobs.cells_job(spec, [])
    assert not (tmp_path / "w").exists()  # refused before anything was written

"""A sweep submitted to Slurm through submitit: ``bench run ... --slurm [key=value,...] --shards N``.

Three jobs, in this order (the functions they run: :mod:`bench.grid.slurm_jobs`):

  prepare  every feature and generated image the cells will read, computed once, on as many tasks as
           ``slurm.prepare`` gives it (``nodes`` x ``tasks_per_node``: ranks that share the work, as under torchrun)
  cells    an array of ``--shards`` tasks (``slurm.shards``); shard i runs every n-th cell of those not done when
           submitting (the list is fixed then, so what one shard runs never depends on what the others finished)
  finish   the fused cells, the diagnostics and ``bench report`` of the run (``<run>/report``)

Each job is a plain function called with plain data (the config as a dict, cells as dicts), which submitit pickles
beside the job's sbatch script and logs (``<run>/slurm/<job id>/``, or ``slurm.logs``). Rerunning the command after
failures submits only what is not done: the cells without a done record (:func:`bench.cell.plan.stale_reason`), and
the finishing job unless it already ran after the last record was written.

On Slurm (``slurm.cluster="slurm"``) the jobs are chained by dependencies and the command returns once they are
queued. The array waits for the prepare job to *succeed* (``afterok``): a prepare job that failed (data that cannot
be read, weights that cannot be loaded) would fail every shard the same way, so the shards are cancelled with it
(``--kill-on-invalid-dep=yes``). The finishing job waits for every shard to *end* (``afterany``): a shard that fails
or runs out of time leaves the others' records, which are fused, diagnosed and reported; ``bench status`` names what
is missing and a rerun submits it. ``slurm.cluster="local"`` runs the same jobs as local processes (submitit's
``LocalExecutor``, for trying a submission without a cluster); it knows no dependencies, so this process waits for
each phase before it submits the next, and stops after a failed prepare job as Slurm would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path

from bench.cell.plan import Cell
from bench.errors import UsageError
from bench.grid.jobs import JobError, usable_cores

JOB_KEYS = ("partition", "account", "qos", "time", "mem", "cpus_per_task", "gpus_per_task", "setup",
            "additional_parameters")  # a job's resources; ``prepare`` also takes nodes and tasks_per_node


@dataclass
class SweepJob:
    """One submission: ``function`` (of :mod:`bench.grid.slurm_jobs`) called once per argument tuple of ``calls``
    (several: a job array), with SlurmExecutor's ``parameters`` (sbatch's names), after the previous job
    (``after``: ``afterok`` / ``afterany``, or None)."""

    kind: str
    function: object
    calls: list[tuple]
    parameters: dict
    after: str | None
    what: str


def check_slurm(slurm: dict, shards: int) -> None:
    """One-line errors for values the schema's types let through (bench.schema checks types)."""
    if shards < 1:
        raise UsageError(f"--shards / slurm.shards must be >= 1, got {shards}")
    for where, section in (("slurm", slurm), ("slurm.prepare", slurm.get("prepare") or {}),
                           ("slurm.finish", slurm.get("finish") or {})):
        for key in ("time", "nodes", "tasks_per_node", "cpus_per_task"):
            if section.get(key) is not None and section[key] < 1:
                raise UsageError(f"{where}.{key} must be >= 1, got {section[key]}")


def job_parameters(slurm: dict, kind: str, name: str) -> dict:
    """SlurmExecutor's parameters of one job: the section's resources, with ``slurm.<kind>``'s overrides for the
    prepare and finishing jobs. One task per node except for a prepare job given more (a shard or the finishing
    job run by several tasks would run twice); ``--gpus-per-task`` needs the task count written out."""
    own = {**{key: slurm.get(key) for key in JOB_KEYS}, **(slurm.get(kind) or {} if kind != "cells" else {})}
    params = {"job_name": name, "time": int(own["time"]), "nodes": int(own.get("nodes") or 1),
              "ntasks_per_node": int(own.get("tasks_per_node") or 1)}
    for key in ("partition", "account", "qos", "mem", "cpus_per_task", "gpus_per_task"):
        if own.get(key) not in (None, 0, ""):
            params[key] = own[key]
    if own.get("setup"):
        params["setup"] = [str(line) for line in own["setup"]]
    if own.get("additional_parameters"):
        params["additional_parameters"] = dict(own["additional_parameters"])
    return params


def plan_jobs(slurm: dict, spec: dict, todo: list[Cell], shards: int, finish: bool = True) -> list[SweepJob]:
    """The jobs of a submission: prepare and cells when ``todo`` has cells, then the finishing job (``finish``)."""
    run = Path(spec["work_dir"]).name
    from bench.grid import slurm_jobs

    jobs = []
    if todo:
        n = min(shards, len(todo))
        prepare = job_parameters(slurm, "prepare", f"bench-{run}-prepare")
        tasks = prepare["nodes"] * prepare["ntasks_per_node"]
        jobs.append(SweepJob("prepare", slurm_jobs.prepare_job, [(spec,)], prepare, None,
                             f"features and generated images of {len(todo)} cells to run, on {tasks} task(s)"))
        cells = job_parameters(slurm, "cells", f"bench-{run}-cells")
        cells["array_parallelism"] = int(slurm.get("array_parallelism") or n)
        cells["additional_parameters"] = {**cells.get("additional_parameters", {}), "kill_on_invalid_dep": "yes"}
        calls = [(spec, [dataclasses.asdict(c) for c in todo[i::n]]) for i in range(n)]
        jobs.append(SweepJob("cells", slurm_jobs.cells_job, calls, cells, "afterok",
                             f"{len(todo)} cells in {n} shard(s) of {-(-len(todo) // n)} at most, once the prepare "
                             "job succeeded"))
    if finish:
        report = Path(spec["work_dir"]) / "report"
        jobs.append(SweepJob("finish", slurm_jobs.finish_job, [(spec,)],
                             job_parameters(slurm, "finish", f"bench-{run}-finish"), "afterany" if todo else None,
                             f"fused cells, diagnostics and `bench report` into {report}"
                             + (", once every shard ended" if todo else "")))
    return jobs


def finish_due(run_dir: Path) -> bool:
    """Whether the finishing job has to run: it never did, or records were written or changed since."""
    from bench.grid.slurm_jobs import FINISH_MARK, records_fingerprint
    from bench.io import read_json

    try:
        return read_json(Path(run_dir) / FINISH_MARK).get("records") != records_fingerprint(run_dir)
    except (OSError, ValueError, AttributeError):
        return True


def logs_folder(slurm: dict, run_dir: Path) -> Path:
    """Where submitit writes each job's script, pickles and logs: ``<logs>/<job id>/``."""
    return Path(slurm.get("logs") or Path(run_dir) / "slurm").expanduser().resolve() / "%j"


def describe(jobs: list[SweepJob], slurm: dict, folder: Path) -> list[str]:
    """What ``--dry-run`` prints: each job, and the sbatch parameters SlurmExecutor would write for it (rendered by
    submitit's own function, so what is printed is what sbatch gets), or the local executor's parameters."""
    from submitit.slurm.slurm import _make_sbatch_string  # the text SlurmExecutor writes (no srun needed here)

    lines = []
    for number, job in enumerate(jobs, 1):
        array = f"array of {len(job.calls)}" if len(job.calls) > 1 else "job"
        lines.append(f"job {number}/{len(jobs)}  {job.kind}  ({array}): {job.what}")
        params = dict(job.parameters)
        if job.after:
            params["dependency"] = f"{job.after}:{jobs[number - 2].kind.upper()}_JOB_ID"
        if slurm.get("cluster") == "local":
            lines += [f"  {key}={value}" for key, value in local_parameters(params).items()]
            continue
        text = _make_sbatch_string(command="", folder=folder, map_count=len(job.calls) if len(job.calls) > 1 else None,
                                   **params)
        lines += [f"  {line}" for line in text.splitlines() if line.startswith("#SBATCH")]
        lines += [f"  (setup) {line}" for line in params.get("setup", [])]
    return lines


def local_parameters(params: dict) -> dict:
    """LocalExecutor's parameters for a job's SlurmExecutor ``params``: its time limit, tasks, GPUs (as many as it
    asks for: CUDA_VISIBLE_DEVICES is set to them, none when it asks for none) and setup lines."""
    tasks = params.get("nodes", 1) * params.get("ntasks_per_node", 1)
    return {"timeout_min": params["time"], "tasks_per_node": tasks,
            "gpus_per_node": int(params.get("gpus_per_task") or 0) * tasks, "setup": params.get("setup", [])}


def submit(jobs: list[SweepJob], slurm: dict, folder: Path, echo=print) -> int:
    """Submit ``jobs`` (see the module docstring); 0, or 1 when a local job failed or a local cell failed."""
    if slurm.get("cluster") == "local":
        return _run_locally(jobs, folder, echo)
    import submitit

    ids: list[str] = []
    for job in jobs:
        try:
            executor = submitit.SlurmExecutor(folder=folder)
        except RuntimeError:  # submitit's check for a Slurm cluster: srun on PATH
            raise JobError("slurm.cluster='slurm' but there is no `srun` on PATH: submit from a Slurm login node, "
                           "pass --slurm cluster=local to run the jobs as local processes, or --dry-run to see "
                           "them") from None
        params = dict(job.parameters)
        if job.after:
            params["dependency"] = f"{job.after}:{ids[-1].split('_')[0]}"
        executor.update_parameters(**params)
        submitted = _submitting(job, ids, lambda ex=executor, j=job: ex.map_array(j.function, *zip(*j.calls)))
        ids.append(submitted[0].job_id)
        array = f"array job {ids[-1].split('_')[0]} ({len(submitted)} shards)" if len(submitted) > 1 else \
            f"job {ids[-1]}"
        after = f", after job {ids[-2].split('_')[0]} ({job.after})" if job.after else ""
        echo(f"submitted {job.kind}: {array}{after}; log: {submitted[0].paths.stdout}")
    return 0


def _submitting(job: SweepJob, ids: list[str], call) -> list:
    """``call()`` (a submission), its sbatch failure as one line naming what was already queued."""
    from submitit.core.utils import FailedJobError

    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            return call()
    except FailedJobError as exc:
        why = (str(exc).strip() or captured.getvalue().strip() or "no message").splitlines()[0]
        queued = f"; already queued: {', '.join(ids)} (scancel them, or leave them and rerun)" if ids else ""
        raise JobError(f"sbatch refused the {job.kind} job: {why}{queued}") from None


def _run_locally(jobs: list[SweepJob], folder: Path, echo) -> int:
    """The jobs as local processes, each phase after the one before (LocalExecutor has no dependencies)."""
    import submitit

    failures = 0
    for job in jobs:
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(**local_parameters(job.parameters))
        calls = job.calls
        if len(calls) > 1:  # the shards run at once here: share the cores out unless --threads said otherwise
            threads = calls[0][0].get("threads") or max(1, usable_cores() // len(calls))
            calls = [({**spec, "threads": threads}, *rest) for spec, *rest in calls]
        submitted = executor.map_array(job.function, *zip(*calls))
        ids = ", ".join(j.job_id for j in submitted)
        echo(f"started {job.kind} ({'pids' if len(submitted) > 1 else 'pid'} {ids}); log: {submitted[0].paths.stdout}")
        for index, handle in enumerate(submitted):
            try:
                result = handle.results()[0]  # one per task (a prepare job may have several): the first speaks
            except Exception as exc:  # noqa: BLE001 -- a job that raised or died: named with its log
                lines = [line for line in str(exc).strip().splitlines() if line.strip()]
                what = f"{job.kind}" + (f" shard {index}" if len(submitted) > 1 else "")
                if job.kind == "prepare":
                    raise JobError(f"the {what} job (pid {handle.job_id}) failed: {lines[-1] if lines else exc}; "
                                   f"its log: {handle.paths.stderr}") from None
                echo(f"the {what} job (pid {handle.job_id}) failed: {lines[-1] if lines else exc}; "
                     f"its log: {handle.paths.stderr}")
                failures += 1
                continue
            failures += len((result or {}).get("failed", []))
            for name, error in (result or {}).get("failed", []):
                echo(f"cell {name} failed: {error}")
    pattern = folder  # submitit's local controller makes the folder pattern itself ("%j") as an empty folder
    if pattern.is_dir() and not any(pattern.iterdir()):
        pattern.rmdir()
    return 1 if failures else 0


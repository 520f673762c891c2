"""The functions the jobs of a Slurm submission run (:mod:`bench.grid.slurm`), in the job's own process.

Each takes plain data that pickles without bench's live objects: ``spec`` holds the run's config as a dict
(``Config.to_dict()``: ``--cfg-options``, ``--data-root`` and ``--amp`` already merged in), the run folder, the
device, torch threads, ``--jobs``, ``--force``, the methods asked for and every cell of the sweep (as dicts); a
shard also gets its own cells. Each returns a small dict (what submitit pickles as the job's result) and logs
what it does to the job's log.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("bench")
FINISH_MARK = "finished.json"  # in a run folder: the records the finishing job last reported on


def records_fingerprint(run_dir: Path) -> str:
    """A digest of every record file of a run folder (name, size, mtime): what the finishing job reported on."""
    h = hashlib.sha256()
    for path in sorted((Path(run_dir) / "records").glob("**/*.json")):
        st = path.stat()
        h.update(f"{path.relative_to(run_dir)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _open(spec: dict, rebuild_features: bool = False):
    """(session, cells) of the run in this job: the config rebuilt from its dict, the dataset ready, the features
    every cell and the diagnostics read planned (one encoder pass per image set)."""
    import torch
    from mmengine.config import Config

    from bench.cell.plan import Cell
    from bench.cell.session import Session
    from bench.config import to_plain
    from bench.grid.selection import feature_needs
    from bench.grid.sweep import check_device

    cfg = Config(spec["config"])
    device = spec.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    check_device(device, (cfg.get("runtime", {}) or {}).get("amp"))  # on the node the job got, not where it was sent
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)  # bench's own steps in the job's log; other libraries' warnings only
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    session = Session(cfg, spec["work_dir"], device=device, progress=False, rebuild_features=rebuild_features)
    session.split(session.eval_split)  # the dataset ready (the toy world is generated on first use)
    cells = [Cell(**c) for c in spec["cells"]]
    diagnostics = to_plain(cfg.get("diagnostics", {}) or {})
    session.feature_needs = feature_needs(session, cells, diagnostics=diagnostics.get("enabled", True))
    return session, cells


def _join_tasks() -> tuple[int, int]:
    """(rank, world size) of this task of the prepare job; with several tasks, a torch.distributed process group of
    them (the environment submitit's helper exports, as torchrun's), so they share the work as ranks do."""
    import os

    import submitit
    import torch
    from submitit.helpers import TorchDistributedEnvironment

    if submitit.JobEnvironment().num_tasks == 1:
        return 0, 1
    env = TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    if torch.cuda.is_available() and torch.cuda.device_count() <= env.local_rank:
        os.environ["LOCAL_RANK"] = "0"  # Slurm bound one GPU to this task (--gpus-per-task): it is device 0 here
    from bench.grid.sweep import distributed_context

    rank, world, _ = distributed_context()
    return rank, world


def prepare_job(spec: dict) -> dict:
    """Every feature and generated image the cells not done yet will read (their splits' planned kinds first, in
    one encoder pass each, then each method's training data), computed once into the cache; several tasks split
    every entry's chunks and the images to render between them."""
    import torch

    from bench.grid.jobs import prepare_splits
    from bench.grid.sweep import prepare_features

    start = time.perf_counter()
    rank, world = _join_tasks()
    session, cells = _open(spec, rebuild_features=bool(spec.get("rebuild_features")))
    if session.device == "cuda" and world > 1:
        session.device = f"cuda:{torch.cuda.current_device()}"
    session.cache.sharded = True  # every rank makes the same calls: chunks are shared out (no-op in one task)
    try:
        prepare_splits(session)
    finally:
        session.cache.sharded = False
    prepare_features(session, cells)
    if world > 1:
        torch.distributed.destroy_process_group()
    seconds = time.perf_counter() - start
    log.info("prepare (task %d of %d): done in %.1f s", rank + 1, world, seconds)
    return {"rank": rank, "world": world, "seconds": seconds}


def cells_job(spec: dict, cells: list[dict]) -> dict:
    """One shard: its cells in order (on ``--jobs`` worker processes when there are several), each under its lock
    and skipped when its record is done (:func:`bench.grid.sweep.run_cells`). Returns the records written and the
    failed cells with their one-line errors."""
    from bench.cell.plan import Cell
    from bench.grid.jobs import plan_tasks, resolve_jobs, run_pool
    from bench.grid.sweep import run_cells

    session, _ = _open(spec)
    mine = [Cell(**c) for c in cells]
    runtime = session.cfg.get("runtime", {}) or {}
    jobs, threads = resolve_jobs(spec.get("jobs") or runtime.get("jobs", 1), session.device, spec.get("threads"))
    force = bool(spec.get("force"))
    if jobs > 1 and len(mine) > 1:  # the diagnostics are the finishing job's
        tasks = plan_tasks(session, mine, jobs, None)
        outcome = run_pool(session, tasks, min(jobs, len(tasks)), threads, force, progress=False)
    else:
        outcome = run_cells(session, mine, force=force)
    failed = [(cell.name, error) for cell, error, _ in outcome["failed"]]
    log.info("shard: %d cells done, %d failed", len(outcome["records"]), len(failed))
    return {"records": [str(p) for p in outcome["records"]], "failed": failed}


def finish_job(spec: dict) -> dict:
    """The fused cells and the diagnostics from the finished cells, then ``bench report`` of the run into
    ``<run>/report`` (``slurm.report_formats``; in its own process: the run layer does not import the report), and
    the mark that says which records it reported on (a rerun with nothing new submits nothing)."""
    from bench.config import to_plain
    from bench.grid.diagnostics import write_diagnostics
    from bench.grid.fusion import fuse_finished
    from bench.io import write_json

    session, cells = _open(spec)
    run_dir = Path(spec["work_dir"])
    fused = fuse_finished(run_dir, session.cfg, spec["methods"])
    diagnostics = to_plain(session.cfg.get("diagnostics", {}) or {})
    if diagnostics.get("enabled", True):
        write_diagnostics(session, cells, threshold=diagnostics.get("leak_threshold", 0.95))
    formats = list((session.cfg.get("slurm", {}) or {}).get("report_formats") or [])
    code = None
    if formats:
        command = [sys.executable, "-m", "bench.cli", "report", "--work-dir", str(run_dir.parent), "--run",
                   run_dir.name, "--out", str(run_dir / "report"), "--format", ",".join(formats)]
        code = subprocess.run(command, check=False).returncode
        log.info("bench report exited with %s", code)
    if code in (None, 0):  # (a failed report leaves the mark out: a rerun submits the finishing job again)
        write_json(run_dir / FINISH_MARK, {"records": records_fingerprint(run_dir),
                                           "report": str(run_dir / "report") if formats else None})
    return {"fused": [str(p) for p in fused], "report_exit_code": code}

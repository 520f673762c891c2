"""``bench run ... --slurm [key=value,...] [--shards N]``: the sweep as a prepare job, an array of cell shards and a
finishing job, submitted through submitit (:mod:`bench.grid.slurm`); with ``--dry-run``, the jobs it would submit and
their sbatch parameters."""

from __future__ import annotations

from bench.errors import UsageError


def submit_sweep(args, cfg, cells: list, chosen: dict, work_dir) -> int:
    import dataclasses

    from bench.cell.datakey import dry_run_keys
    from bench.cell.plan import plan_cell, stale_reason
    from bench.cell.session import write_run_config
    from bench.config import to_plain
    from bench.grid.selection import remember_selection
    from bench.grid.slurm import check_slurm, describe, finish_due, logs_folder, plan_jobs, submit
    from bench.locking import is_held

    if args.slurm is None:
        raise UsageError("--shards needs --slurm (the jobs' resources: --slurm partition=...,time=...); to run one "
                         "task of an array of your own, use --shard i/n")
    if args.shard:
        raise UsageError("--shard and --slurm do not go together: --slurm shares the cells out itself (--shards N)")
    slurm = to_plain(cfg.get("slurm", {}) or {})
    shards = args.shards if args.shards is not None else int(slurm.get("shards", 8))
    check_slurm(slurm, shards)
    work_dir = work_dir.resolve()
    force = args.force or args.rebuild_features
    data = dry_run_keys(cfg, work_dir)  # hashes the data only where a record of the same config exists
    todo = list(cells) if force else \
        [cell for cell in cells if stale_reason(cell.record_path(work_dir), plan_cell(cfg, cell), data) is not None]
    running = [cell for cell in todo if is_held(cell.lock_path(work_dir))]  # by jobs of an earlier submission
    todo = [cell for cell in todo if cell not in running]
    print(f"{len(cells)} cells: {len(cells) - len(todo) - len(running)} done, {len(todo)} to run"
          + (f", {len(running)} running now (their locks are held; not submitted again: "
             f"{', '.join(c.name for c in running[:3])}{', ...' if running[3:] else ''})" if running else ""))
    spec = {"config": cfg.to_dict(), "work_dir": str(work_dir), "device": args.device, "threads": args.threads,
            "jobs": args.jobs, "force": force, "rebuild_features": args.rebuild_features,
            "methods": chosen["methods"], "cells": [dataclasses.asdict(cell) for cell in cells]}
    # a finishing job on its own only once nothing runs (the earlier submission's own finishing job follows its cells)
    jobs = plan_jobs(slurm, spec, todo, shards, finish=bool(todo) or (not running and finish_due(work_dir)))
    if not jobs:
        print("nothing to submit: " + ("rerun when the running cells are done" if running else
                                       "every cell is done and the finishing job ran after the last record was "
                                       f"written (report: {work_dir / 'report'})"))
        return 0
    folder = logs_folder(slurm, work_dir)
    where = "as local processes (slurm.cluster=local)" if slurm.get("cluster") == "local" else "to Slurm"
    if args.dry_run:
        print(f"would submit {len(jobs)} job(s) {where}; logs under {folder.parent}/<job id>/")
        for line in describe(jobs, slurm, folder):
            print(line)
        return 0
    write_run_config(cfg, work_dir)  # `bench status` reads the run's config and cell selections from the start
    remember_selection(work_dir, chosen)
    print(f"submitting {len(jobs)} job(s) {where}; logs under {folder.parent}/<job id>/")
    code = submit(jobs, slurm, folder)
    print(f"`bench status --work-dir {work_dir.parent} --run {work_dir.name}` shows how far the sweep has come; "
          "rerunning this command submits only what is not done")
    return code

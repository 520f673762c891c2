"""``bench run``: plan the cells of a sweep, prepare features, run the cells (in this process, in a pool of
worker processes, or as one rank of torchrun), then the fused cells, diagnostics and a summary table."""

from __future__ import annotations

import sys

from bench.errors import UsageError


def cmd_run(args) -> int:
    import torch

    from bench.cell.session import Session
    from bench.cli import options
    from bench.config import load_config
    from bench.data.base import SETTINGS
    from bench.grid.sweep import (
        distributed_context,
        feature_needs,
        parse_shard,
        plan_cells,
        prepare_features,
        resolve_methods,
        run_cells,
        shard_cells,
    )
    from bench.schema import check_config

    if options.at_least("--threads", args.threads, 1):
        torch.set_num_threads(args.threads)
    cfg = load_config(args.dataset, args.cfg_options)
    if args.data_root:
        cfg.merge_from_dict({"dataset.data_root": args.data_root})
    if args.amp:
        cfg.merge_from_dict({"runtime.amp": args.amp})
    check_config(cfg)
    sweep = cfg.get("sweep", {}) or {}
    # each list from its option when given (an empty one is an error, never the config's), else from the config;
    # either way checked, naming where it came from
    settings = options.choices(*_given(args.settings, "--settings", sweep, "settings", ["zero-shot", "partial"]),
                               SETTINGS, "settings")
    ratios = options.ratios(*_given(args.ratios, "--ratios", sweep, "ratios", [0.1, 0.5, 0.9]))
    seeds = options.seeds(*_given(args.seeds, "--seeds", sweep, "seeds", [1]))
    shots = options.shots(*_given(args.shots, "--shots", sweep, "shots", 16))
    check_run_options(args)
    methods = resolve_methods(args.methods, cfg)
    cells = plan_cells(methods, cfg.dataset.type, settings, ratios, seeds, cfg, shots=shots)
    if not cells:
        raise UsageError(f"nothing to run: none of the methods {', '.join(methods)} supports the settings "
                         f"{', '.join(settings)} (see `bench list methods`); choose other --settings or --methods")
    index, count = parse_shard(args.shard)
    cells = shard_cells(cells, index, count)
    from pathlib import Path

    eval_split = (cfg.get("runtime", {}) or {}).get("eval_split", "test")
    default_run = cfg.config_name if eval_split == "test" else f"{cfg.config_name}-{eval_split}"  # never mixed
    work_dir = Path(args.work_dir) / (args.run or default_run)
    if args.dry_run:
        from bench.cell.datakey import dry_run_keys
        from bench.cell.plan import plan_cell, stale_reason

        data = dry_run_keys(cfg, work_dir)  # hashes the data only where a record of the same config exists
        for cell in cells:  # done: a rerun skips it; stale (config or data changed), failed, unreadable: rerun
            reason = stale_reason(cell.record_path(work_dir), plan_cell(cfg, cell), data) or "done"
            state, _, why = reason.partition(": ")
            print(f"{state}  {cell.dataset}  {cell.name}" + (f"  ({why})" if why else ""))
        print(f"{len(cells)} cells")
        return 0
    rank, world, local_rank = distributed_context()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    runtime = cfg.get("runtime", {}) or {}
    check_device(device, runtime.get("amp"))
    from bench.grid.jobs import plan_tasks, resolve_jobs, run_pool

    jobs, threads = resolve_jobs(args.jobs if args.jobs is not None else runtime.get("jobs", 1), device, args.threads)
    if device == "cuda" and world > 1:
        device = f"cuda:{local_rank}"
    import time

    from bench.config import to_plain
    from bench.io import write_json

    timings, t0 = {}, time.perf_counter()
    session = Session(cfg, work_dir, device=device, progress=not args.quiet and rank == 0,
                      rebuild_features=args.rebuild_features)
    args.force = args.force or args.rebuild_features
    session.split(session.eval_split)  # the dataset ready (the toy world is generated on first use)
    timings["dataset"] = time.perf_counter() - t0
    diagnostics = to_plain(cfg.get("diagnostics", {}) or {})
    session.feature_needs = feature_needs(session, cells, diagnostics=diagnostics.get("enabled", True))
    from bench.grid.preflight import check_resources

    check_resources(session, cells)  # every missing weight, pipeline, corpus, word list or split file, in one line
    mark = time.perf_counter()
    if world > 1:
        # under torchrun: all ranks fill the feature cache together, then each runs every world-th
        # cell on its own (cells are independent; a cell's mmengine Runner is single-process)
        prepare_features(session, cells)
        torch.distributed.destroy_process_group()
    pool = jobs > 1 and world == 1 and not args.rebuild_features and len(cells) > 1
    if pool:  # prepare and render tasks, then cells, and the diagnostics beside the last cells (bench/grid/jobs.py)
        tasks = plan_tasks(session, cells, jobs, diagnostics if diagnostics.get("enabled", True) else None)
        outcome = run_pool(session, tasks, min(jobs, len(tasks)), threads, args.force, session.progress,
                           leak_threshold=diagnostics.get("leak_threshold", 0.95))
    else:
        outcome = run_cells(session, shard_cells(cells, rank, world), force=args.force)
    timings["cells"], mark = time.perf_counter() - mark, time.perf_counter()
    if "task_seconds" in outcome:  # --jobs: each task's seconds in its worker (prepare tasks, cells)
        timings["jobs"] = {"jobs": jobs, "threads": threads, "start": outcome.pop("start_method"),
                           "tasks": outcome.pop("task_seconds")}
    from bench.grid.fusion import fuse_sweep

    # derived cells (e.g. TaI-DPT + DualCoOp score fusion) and diagnostics: once, by rank 0 (a rerun
    # after all ranks finished fills in what a rank still had running)
    for spec in to_plain(cfg.get("fusions", [])) if rank == 0 else []:
        if spec.get("a") in methods and spec.get("b") in methods:
            outcome["records"] += fuse_sweep(work_dir, cfg.dataset.type, spec, force=args.force)
    timings["fusion"], mark = time.perf_counter() - mark, time.perf_counter()
    if diagnostics.get("enabled", True) and rank == 0 and not pool:  # modality / domain gaps and leakage
        from bench.grid.diagnostics import write_diagnostics

        try:
            write_diagnostics(session, cells, threshold=diagnostics.get("leak_threshold", 0.95), force=args.force)
        except Exception as exc:
            from bench.cell.runner import belongs_to_cell, one_line

            if not belongs_to_cell(exc):
                raise
            print(f"bench: warning: diagnostics not written: {one_line(exc)}", file=sys.stderr)
    timings["diagnostics"], mark = time.perf_counter() - mark, time.perf_counter()
    from bench.report import load_records, summary_table

    failed_records = [record for _, _, record in outcome["failed"] if record]  # the summary lists them with why
    records = load_records([str(p) for p in [*outcome["records"], *failed_records]])
    if len(records):
        print(summary_table(records))
    timings["summary"] = time.perf_counter() - mark
    timings["total_after_imports"] = time.perf_counter() - t0
    if rank == 0:  # wall seconds per phase of this command (benchmarks/bench_main_job.py reads them)
        try:
            write_json(work_dir / "timings.json", {k: round(v, 3) if isinstance(v, float) else v
                                                   for k, v in timings.items()})
        except OSError:  # a read-only work dir with nothing left to compute: timings are no result, skip them
            pass
    where = f"rank {rank}/{world}: " if world > 1 else ""
    print(f"{where}{len(outcome['records'])} cells done, {len(outcome['failed'])} failed; "
          f"records in {work_dir}/records")
    return 1 if outcome["failed"] else 0


def _given(value, option: str, sweep: dict, key: str, default) -> tuple[str, object]:
    """(where it came from, the value): the option when given on the command line, else ``sweep.<key>``."""
    return (option, value) if value is not None else (f"sweep.{key}", sweep.get(key, default))


def check_run_options(args) -> None:
    """One-line errors for run options that would otherwise plan nothing or fail deep inside."""
    if not [m for m in str(args.methods).split(",") if m.strip()]:
        raise UsageError("--methods is empty; give 'all' or a comma list of method names (see `bench list methods`)")


def check_device(device: str, amp: str | None) -> None:
    """--device cuda needs a visible GPU; AMP (--amp / runtime.amp) is CUDA-only, so on CPU it is refused
    rather than recorded as used."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is visible to torch (torch.cuda.is_available() is False); "
                         "use --device cpu")
    if amp and not device.startswith("cuda"):
        raise UsageError(f"--amp / runtime.amp={amp} needs --device cuda (autocast runs on CUDA only); "
                         "drop it on CPU")

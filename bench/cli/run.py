"""``bench run``: plan the cells of a sweep, prepare features, run the cells (in this process, in a pool of
worker processes, or as one rank of torchrun), then the fused cells, diagnostics and a summary table; or list
them and their cost (``--dry-run``), or submit them to Slurm (``--slurm``)."""

from __future__ import annotations

import sys

from bench.errors import UsageError


def plan_run(args, dataset: str):
    """(config, cells, work dir, selection) of ``bench run`` on one dataset config, with the flags applied."""
    from pathlib import Path

    from bench.cli import options
    from bench.config import load_config
    from bench.data.base import SETTINGS
    from bench.grid.selection import selection, selection_cells
    from bench.schema import check_config

    cfg = load_config(dataset, args.cfg_options)
    if args.data_root:
        cfg.merge_from_dict({"dataset.data_root": args.data_root})
    if args.amp:
        cfg.merge_from_dict({"runtime.amp": args.amp})
    if getattr(args, "slurm", None):  # --slurm key=value,...: the config's slurm section (checked with the rest)
        cfg.merge_from_dict({f"slurm.{key}": value for key, value in args.slurm.items()})
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
    chosen = selection(cfg, args.methods, settings, ratios, seeds, shots)
    methods = chosen["methods"]
    cells = selection_cells(cfg, chosen)
    if not cells:
        raise UsageError(f"nothing to run: none of the methods {', '.join(methods)} supports the settings "
                         f"{', '.join(settings)} (see `bench list methods`); choose other --settings or --methods")
    eval_split = (cfg.get("runtime", {}) or {}).get("eval_split", "test")
    default_run = cfg.config_name if eval_split == "test" else f"{cfg.config_name}-{eval_split}"  # never mixed
    work_dir = Path(args.work_dir) / (args.run or default_run)
    return cfg, cells, work_dir, chosen


def cmd_run(args) -> int:
    import torch

    from bench.cell.session import Session
    from bench.cli import options
    from bench.grid.selection import feature_needs, remember_selection
    from bench.grid.sweep import (
        check_device,
        distributed_context,
        parse_shard,
        prepare_features,
        run_cells,
        shard_cells,
    )

    if options.at_least("--threads", args.threads, 1):
        torch.set_num_threads(args.threads)
    datasets = [d.strip() for d in str(args.dataset).split(",") if d.strip()]
    slurm = getattr(args, "slurm", None) is not None or getattr(args, "shards", None) is not None
    if len(datasets) != 1 and (slurm or not args.dry_run):
        raise UsageError(f"--dataset {args.dataset}: a run takes one dataset (several only with --dry-run)")
    if slurm:  # submits (or with --dry-run prints) the prepare job, the shard array and the finishing job
        from bench.cli.submit import submit_sweep

        cfg, cells, work_dir, chosen = plan_run(args, datasets[0])
        return submit_sweep(args, cfg, cells, chosen, work_dir)
    planned = []
    for dataset in datasets:
        cfg, cells, work_dir, chosen = plan_run(args, dataset)
        index, count = parse_shard(args.shard)
        planned.append((cfg, shard_cells(cells, index, count), work_dir, chosen))
    if args.dry_run:
        from bench.cli.dryrun import dry_run

        return dry_run(args, planned)
    ((cfg, cells, work_dir, chosen),) = planned
    methods = chosen["methods"]
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
    if rank == 0:  # what `bench status` plans for this run folder
        remember_selection(work_dir, chosen)
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
    from bench.grid.fusion import fuse_finished

    # derived cells (e.g. TaI-DPT + DualCoOp score fusion) and diagnostics: once, by rank 0 (a rerun
    # after all ranks finished fills in what a rank still had running)
    if rank == 0:
        outcome["records"] += fuse_finished(work_dir, cfg, methods, force=args.force)
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
    from bench import phases

    timings["phases"] = phases.snapshot()  # named phases of this process (with --jobs: of the parent only)
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

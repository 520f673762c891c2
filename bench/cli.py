"""``bench``: run PEFT-for-CLIP sweeps, report them, list what is available.

The CLI is thin: it picks a config (one per dataset, ``configs/``), applies a few common
flags and ``--cfg-options``, and hands over to bench.sweep / bench.report. Heavy imports happen
after argument parsing, so ``--help`` is fast and ``--device cpu`` can hide GPUs first.
"""

from __future__ import annotations

import argparse
import os
import sys

EPILOG = """examples:
  bench run --methods all --dataset toy                 # the embedded toy world: offline, CPU, minutes
  bench run --methods coop,taidpt --dataset voc2007 --ratios 0.1,0.5,0.9 --seeds 1,2,3
  bench run --methods all --dataset coco --data-root /data/coco --cfg-options backbone.pretrained=/ckpt/RN50.pt
  bench report                                          # tables and plots from every finished cell
  bench list methods 'dual*'
"""


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _strings(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a sweep of cells (method x setting x label ratio x seed)",
                         description="Run every cell of a dataset's sweep that has no record yet. A cell is "
                         "(method, setting, label ratio, seed); its result is one JSON record under "
                         "<work-dir>/<run>/records/. Killing and rerunning loses and recomputes nothing.")
    run.add_argument("--methods", default="all",
                     help="'all' (default: every registered method plus the config's sweep.variants) or a "
                          "comma list of method names (see `bench list`) and config variants")
    run.add_argument("--dataset", default="toy",
                     help="dataset config name (toy, coco, voc2007, nuswide; default toy) or a path to a config .py")
    run.add_argument("--data-root", help="where the dataset lives (overrides dataset.data_root)")
    run.add_argument("--settings", type=_strings,
                     help="comma list of zero-shot, partial, fewshot, zsl (seen/unseen classes; split: "
                          "dataset.zsl_split) (default: config)")
    run.add_argument("--ratios", type=_floats, help="label ratios in (0, 1] for the partial setting (default: config)")
    run.add_argument("--shots", type=_ints, help="comma list of K (images per class) for the fewshot setting "
                                               "(default: config sweep.shots)")
    run.add_argument("--seeds", type=_ints, help="comma list of seeds (default: config)")
    run.add_argument("--work-dir", default="work_dirs",
                     help="where runs, records and the feature cache go (default: work_dirs)")
    run.add_argument("--run", help="run name: records go to <work-dir>/<run>/records (default: the config's name)")
    run.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    run.add_argument("--amp", choices=["fp16", "bf16"], help="autocast dtype on CUDA")
    run.add_argument("--threads", type=int, help="torch CPU threads (per job with --jobs; recorded with the results)")
    run.add_argument("--jobs", help="cells run at once, each in its own process: an integer or 'auto' (one per "
                                    "CPU core on CPU, 1 on a GPU); default: the config's runtime.jobs (toy: auto, "
                                    "others: 1). Features and generated images are still computed once")
    run.add_argument("--shard", help="i/n: run only every n-th cell starting at i (array jobs)")
    run.add_argument("--force", action="store_true", help="recompute cells that already have a record")
    run.add_argument("--rebuild-features", action="store_true",
                     help="delete and recompute every cached feature entry the cells read, then the cells "
                          "(implies --force; damaged entries are found and rebuilt without it)")
    run.add_argument("--dry-run", action="store_true", help="list the cells and exit")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                     help="override config values, e.g. coop.n_ctx=4 sweep.seeds=[1,2]")

    report = sub.add_parser("report", help="tables and plots from the finished cells' records",
                            description="Read every record under --work-dir (never recomputing anything) and "
                            "write tables, plots and an index to --out.")
    report.add_argument("--work-dir", default="work_dirs", help="where the runs are (default: work_dirs)")
    report.add_argument("--run", help="only this run (default: every run under --work-dir)")
    report.add_argument("--out", help="where the report goes (default: 'reports' beside --work-dir)")
    report.add_argument("--format", type=_strings, default=["md", "tex", "csv", "png", "pdf"],
                        help="comma list of md, tex, csv, png, pdf (default: all)")
    report.add_argument("--reference", help="method every other is tested against in each cell "
                                            "(default: the best mean mAP of the cell)")
    report.add_argument("--n-boot", type=int, default=1000,
                        help="bootstrap resamples of the test images for significance (default 1000; 0: skip)")

    lister = sub.add_parser("list", help="methods (built-in and plug-ins), datasets, generators, configs")
    lister.add_argument("what", nargs="?", default="all", choices=["all", "methods", "datasets", "generators",
                                                                   "configs"])
    lister.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'dual*'")

    toy = sub.add_parser("toy", help="the embedded toy world: generate the dataset, pretrain the tiny CLIP")
    toy.add_argument("action", choices=["generate", "pretrain"])
    toy.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the action (see --help of each)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "device", None) == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # mmengine picks its device from CUDA visibility
    from bench.backbone import BackboneError
    from bench.data.base import DataError
    from bench.jobs import JobError
    from bench.registry import PluginError

    try:
        return {"run": cmd_run, "report": cmd_report, "list": cmd_list, "toy": cmd_toy}[args.command](args)
    except (DataError, BackboneError, PluginError, JobError, KeyError, ValueError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"bench: error: {message}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only or unwritable folder: one line naming it
        message = write_fault(exc, getattr(args, "work_dir", None))
        if message is None:
            raise
        print(f"bench: error: {message}", file=sys.stderr)
        return 2


def write_fault(exc: OSError, work_dir: str | None = None) -> str | None:
    """One line for an OSError a user fixes on their side (a full disk, a read-only or unwritable folder),
    naming the file and its folder (or, when the error names none, the work dir); None for any other."""
    import errno
    from pathlib import Path

    space = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    if exc.errno not in (*space, errno.EROFS, errno.EACCES, errno.EPERM):
        return None
    hint = ("free space there, or put the work dir (--work-dir) or the feature cache (runtime.cache_dir) on "
            "another disk") if exc.errno in space else \
        "make it writable, or pass another --work-dir (and runtime.cache_dir for the feature cache)"
    what = exc.strerror or os.strerror(exc.errno)
    if not exc.filename:
        return f"{what} while writing under the work dir {work_dir} or the feature cache: {hint}"
    return f"{what}: cannot write {exc.filename} in {Path(exc.filename).parent}; {hint}"


def cmd_run(args) -> int:
    import torch

    from bench.config import load_config
    from bench.schema import check_config
    from bench.session import Session
    from bench.sweep import (
        distributed_context,
        feature_needs,
        parse_shard,
        plan_cells,
        prepare_features,
        resolve_methods,
        run_cells,
        shard_cells,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.dataset, args.cfg_options)
    if args.data_root:
        cfg.merge_from_dict({"dataset.data_root": args.data_root})
    if args.amp:
        cfg.merge_from_dict({"runtime.amp": args.amp})
    check_config(cfg)
    sweep = cfg.get("sweep", {})
    settings = args.settings if args.settings is not None else list(sweep.get("settings", ["zero-shot", "partial"]))
    ratios = args.ratios or list(sweep.get("ratios", [0.1, 0.5, 0.9]))
    seeds = args.seeds or list(sweep.get("seeds", [1]))
    check_run_options(args, settings)
    methods = resolve_methods(args.methods, cfg)
    cells = plan_cells(methods, cfg.dataset.type, settings, ratios, seeds, cfg, shots=args.shots)
    if not cells:
        raise ValueError(f"nothing to run: none of the methods {', '.join(methods)} supports the settings "
                         f"{', '.join(settings)} (see `bench list methods`); choose other --settings or --methods")
    index, count = parse_shard(args.shard)
    cells = shard_cells(cells, index, count)
    from pathlib import Path

    eval_split = (cfg.get("runtime", {}) or {}).get("eval_split", "test")
    default_run = cfg.config_name if eval_split == "test" else f"{cfg.config_name}-{eval_split}"  # never mixed
    work_dir = Path(args.work_dir) / (args.run or default_run)
    if args.dry_run:
        from bench.cell import plan_cell, stale_reason
        from bench.datakey import dry_run_keys

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
    from bench.jobs import plan_tasks, resolve_jobs, run_pool

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
    mark = time.perf_counter()
    if world > 1:
        # under torchrun: all ranks fill the feature cache together, then each runs every world-th
        # cell on its own (cells are independent; a cell's mmengine Runner is single-process)
        prepare_features(session, cells)
        torch.distributed.destroy_process_group()
    pool = jobs > 1 and world == 1 and not args.rebuild_features and len(cells) > 1
    if pool:  # prepare and render tasks, then cells, and the diagnostics beside the last cells (bench/jobs.py)
        tasks = plan_tasks(session, cells, jobs, diagnostics if diagnostics.get("enabled", True) else None)
        outcome = run_pool(session, tasks, min(jobs, len(tasks)), threads, args.force, session.progress,
                           leak_threshold=diagnostics.get("leak_threshold", 0.95))
    else:
        outcome = run_cells(session, shard_cells(cells, rank, world), force=args.force)
    timings["cells"], mark = time.perf_counter() - mark, time.perf_counter()
    if "task_seconds" in outcome:  # --jobs: each task's seconds in its worker (prepare tasks, cells)
        timings["jobs"] = {"jobs": jobs, "threads": threads, "start": outcome.pop("start_method"),
                           "tasks": outcome.pop("task_seconds")}
    from bench.fusion import fuse_sweep

    # derived cells (e.g. TaI-DPT + DualCoOp score fusion) and diagnostics: once, by rank 0 (a rerun
    # after all ranks finished fills in what a rank still had running)
    for spec in to_plain(cfg.get("fusions", [])) if rank == 0 else []:
        if spec.get("a") in methods and spec.get("b") in methods:
            outcome["records"] += fuse_sweep(work_dir, cfg.dataset.type, spec, force=args.force)
    timings["fusion"], mark = time.perf_counter() - mark, time.perf_counter()
    if diagnostics.get("enabled", True) and rank == 0 and not pool:  # modality / domain gaps and leakage
        from bench.diagnostics import write_diagnostics

        write_diagnostics(session, cells, threshold=diagnostics.get("leak_threshold", 0.95), force=args.force)
    timings["diagnostics"], mark = time.perf_counter() - mark, time.perf_counter()
    from bench.report import load_records, summary_table

    records = load_records([str(p) for p in outcome["records"]])
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


def check_run_options(args, settings: list[str]) -> None:
    """One-line errors for run options that would otherwise plan nothing or fail deep inside."""
    from bench.data.base import SETTINGS

    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        raise ValueError(f"unknown --settings {', '.join(unknown) or '(empty)'}; valid: {', '.join(SETTINGS)}")
    if not [m for m in str(args.methods).split(",") if m.strip()]:
        raise ValueError("--methods is empty; give 'all' or a comma list of method names (see `bench list methods`)")


def check_device(device: str, amp: str | None) -> None:
    """--device cuda needs a visible GPU; AMP (--amp / runtime.amp) is CUDA-only, so on CPU it is refused
    rather than recorded as used."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible to torch (torch.cuda.is_available() is False); "
                         "use --device cpu")
    if amp and not device.startswith("cuda"):
        raise ValueError(f"--amp / runtime.amp={amp} needs --device cuda (autocast runs on CUDA only); "
                         "drop it on CPU")


def cmd_report(args) -> int:
    from pathlib import Path

    from bench.report import find_records, read_records, summary_table, write_report

    paths = find_records(Path(args.work_dir), args.run)
    if not paths:
        print(f"bench: no records under {args.work_dir}" + (f"/{args.run}" if args.run else ""), file=sys.stderr)
        return 2
    records = read_records(paths, skip_bad=True)  # a damaged file is named, left out and listed in the report
    if records.cells.empty and not records.diagnostics:
        print(f"bench: error: no readable record under {args.work_dir}: "
              + "; ".join(f"{path} ({why})" for path, why in records.bad.items()), file=sys.stderr)
        return 2
    methods = sorted(set(records.cells["method"]))
    if args.reference and args.reference not in methods:
        raise ValueError(f"--reference {args.reference} names no method of these records; methods: "
                         f"{', '.join(methods)}")
    print(summary_table(records.cells))
    out = Path(args.out) if args.out else Path(args.work_dir).parent / "reports"
    written = write_report(records, out, tuple(args.format), reference=args.reference, n_boot=args.n_boot)
    for path, why in sorted(records.bad.items()):
        print(f"bench: warning: left out {path} ({why})", file=sys.stderr)
    print(f"wrote {len(written)} files to {out} (index: {written[-1]})"
          + (f"; {len(records.bad)} unreadable files left out, listed there" if records.bad else ""))
    return 1 if records.bad else 0


def cmd_list(args) -> int:
    from bench.config import CONFIG_DIR, config_names
    from bench.registry import DATASETS, GENERATORS, METHODS, list_names, lookup

    groups = {"methods": METHODS, "datasets": DATASETS, "generators": GENERATORS}
    import fnmatch

    for what, registry in groups.items():
        if args.what not in ("all", what):
            continue
        print(f"{what}:")
        for name in list_names(registry, args.pattern):
            cls = lookup(registry, name)
            origin = "built-in" if cls.__module__.split(".")[0] in ("bench", "methods") else f"plug-in {cls.__module__}"
            extra = ""
            if what == "methods":
                zsl = "yes" if "zsl" in cls.settings and cls.supports_unseen else "no"
                extra = (f"  trains on: {cls.trains_on or 'nothing (zero-shot)'}  settings: {', '.join(cls.settings)}"
                         f"  unseen classes (zsl): {zsl} ({cls.unseen_note})")
            print(f"  {name:<12} {origin}{extra}")
    if args.what in ("all", "configs"):
        print(f"configs: (in {CONFIG_DIR}; --dataset NAME, or --dataset path/to/your_config.py)")
        for name in config_names():
            if fnmatch.fnmatch(name, args.pattern):
                print(f"  {name:<12} {CONFIG_DIR / (name + '.py')}")
    return 0


def cmd_toy(args) -> int:
    if args.action == "pretrain":
        from bench.toy.pretrain import main as pretrain_main

        return pretrain_main(args.rest) or 0
    from bench.toy.build import ensure_toy_dataset

    parser = argparse.ArgumentParser(prog="bench toy generate", description="write the toy world to --root")
    parser.add_argument("--root", default="data/toy")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(args.rest)
    print(ensure_toy_dataset(opts.root, seed=opts.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

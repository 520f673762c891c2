"""``bench``: run PEFT-for-CLIP sweeps, report them, list what is available.

The CLI is thin: it picks a config (one per dataset, ``configs/``), applies a few common
flags and ``--cfg-options``, and hands over to the grid (:mod:`bench.grid`) or the report
(:mod:`bench.report`). One module per command: ``run`` (with ``dryrun``: ``--dry-run``; ``submit``: ``--slurm``),
``report``, ``status``, ``listing`` (``bench list``); ``options`` checks the comma-list options; the parser, the
error handling (every :class:`bench.errors.BenchError` is one line) and ``bench toy`` are here. Heavy imports
happen after argument parsing, so ``--help`` is fast and ``--device cpu`` can hide GPUs first. The CLI may import
every package; none imports it.
"""

from __future__ import annotations

import argparse
import os
import sys

EPILOG = """examples:
  bench run --methods all --dataset toy                 # the embedded toy world: offline, CPU, minutes
  bench run --methods coop,taidpt --dataset voc2007 --ratios 0.1,0.5,0.9 --seeds 1,2,3
  bench run --methods all --dataset coco --data-root /data/coco --cfg-options backbone.pretrained=/ckpt/RN50.pt
  bench run --methods all --dataset coco --data-root /data/coco --slurm partition=gpu,gpus_per_task=1 --shards 16
  bench status                                          # cells done / todo / stale / failed / running per method
  bench report                                          # tables and plots from every finished cell
  bench list methods 'dual*'
"""


def _assignment_value(text: str):
    """A ``--slurm`` value: an integer, true / false, None, else the text as it is (mmengine's DictAction parsing
    would drop the spaces of a value such as ``"module load cuda"``)."""
    text = text.strip().strip("'\"")
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text in ("None", "none", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        return text


def _assignments(text: str) -> dict:
    """``partition=gpu,time=240,prepare.tasks_per_node=4`` -> ``{"partition": "gpu", "time": 240, ...}``."""
    out = {}
    for part in [p for p in text.split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected key=value pairs separated by commas, got {part!r}")
        out[key.strip()] = _assignment_value(value)
    return out


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
    run.add_argument("--settings",
                     help="comma list of zero-shot, partial, fewshot, zsl (seen/unseen classes; split: "
                          "dataset.zsl_split) (default: config sweep.settings)")
    run.add_argument("--ratios", help="comma list of label ratios in (0, 1] for the partial setting "
                                      "(default: config sweep.ratios)")
    run.add_argument("--shots", help="comma list of K >= 1 (images per class) for the fewshot setting "
                                     "(default: config sweep.shots)")
    run.add_argument("--seeds", help="comma list of seeds, whole numbers in 0 .. 2**32-1 (default: config "
                                     "sweep.seeds). An empty, out-of-range or repeated value is an error")
    run.add_argument("--work-dir", default="work_dirs",
                     help="where runs, records and the feature cache go (default: work_dirs)")
    run.add_argument("--run", help="run name: records go to <work-dir>/<run>/records (default: the config's name)")
    run.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    run.add_argument("--amp", choices=["fp16", "bf16"], help="autocast dtype on CUDA")
    run.add_argument("--threads", type=int, help="torch CPU threads, >= 1 (per job with --jobs; recorded with the "
                                                 "results)")
    run.add_argument("--jobs", help="cells run at once, each in its own process: an integer or 'auto' (one per "
                                    "CPU core on CPU, 1 on a GPU); default: the config's runtime.jobs (toy: auto, "
                                    "others: 1). Features and generated images are still computed once")
    run.add_argument("--shard", help="i/n: run only every n-th cell starting at i (array jobs)")
    run.add_argument("--slurm", nargs="?", const={}, type=_assignments, metavar="KEY=VALUE,...",
                     help="submit the sweep through submitit instead of running it here: a prepare job (features, "
                          "generated images), an array of cell shards after it, a finishing job (fused cells, "
                          "diagnostics, bench report) after the array. Values override the config's slurm section: "
                          "cluster (slurm, or local: the same jobs as local processes), partition, account, qos, "
                          "time (minutes), mem, cpus_per_task, gpus_per_task, additional_parameters.<sbatch option>, "
                          "prepare.<key> / finish.<key> for one job (prepare.tasks_per_node=4: extract on 4 tasks), "
                          "e.g. --slurm partition=gpu,gpus_per_task=1,cpus_per_task=8,time=240. Rerunning submits "
                          "only what is not done; with --dry-run, prints the jobs and their sbatch parameters")
    run.add_argument("--shards", type=int, help="array tasks the cells are shared out to with --slurm (default: the "
                                                "config's slurm.shards, 8)")
    run.add_argument("--force", action="store_true", help="recompute cells that already have a record")
    run.add_argument("--rebuild-features", action="store_true",
                     help="delete and recompute every cached feature entry the cells read, then the cells "
                          "(implies --force; damaged entries are found and rebuilt without it)")
    run.add_argument("--dry-run", action="store_true",
                     help="list the cells (done / todo / stale: what changed / failed) and what the ones to run will "
                          "cost: images to encode, cache bytes, images to generate, training steps, text-tower "
                          "prompt passes, record bytes, per dataset and in total (--dataset may then be a comma "
                          "list); with --slurm, the jobs it would submit and their sbatch flags")
    run.add_argument("--calibrate", action="store_true",
                     help="with --dry-run: measure the encoder, the text tower and one training step per method on "
                          "this device (about a minute, random weights) and estimate the hours")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--cfg-options", nargs="+", action=DictAction, default={},
                     help="override config values, e.g. coop.n_ctx=4 sweep.seeds=[1,2]")

    report = sub.add_parser("report", help="tables and plots from the finished cells' records",
                            description="Read every record under --work-dir (never recomputing anything) and "
                            "write tables, plots, an index (README.md) and an interactive page (index.html) to --out.")
    report.add_argument("--work-dir", default="work_dirs", help="where the runs are (default: work_dirs)")
    report.add_argument("--run", help="only this run (default: every run under --work-dir)")
    report.add_argument("--out", help="where the report goes (default: 'reports' beside --work-dir)")
    report.add_argument("--format", default="md,tex,csv,png,pdf,html",
                        help="comma list of md, tex, csv (tables), png, pdf (plots), html (index.html: one "
                        "self-contained interactive page, offline; sortable, filterable leaderboards, plots "
                        "with hover, two-method comparison, per-class AP, every record) (default: all)")
    report.add_argument("--reference", help="method every other is tested against in each cell "
                                            "(default: the best mean mAP of the cell)")
    report.add_argument("--force", action="store_true",
                        help="write the report even when nothing changed since the last one in --out")
    report.add_argument("--timings", help="also write the seconds of each reading and report phase to this JSON file "
                                          "(benchmarks/bench_scale.py)")
    report.add_argument("--n-boot", type=int, default=1000,
                        help="bootstrap resamples of the test images for significance, >= 0 (default 1000; 0: skip)")

    status = sub.add_parser("status", help="how far a run has come: cells done / todo / stale / failed / running, "
                                           "feature cache and generated images present / missing",
                            description="Read a work dir's runs (the config each `bench run` wrote there, the cell "
                            "selections it was given, records, cell locks, the feature cache) and say per dataset, "
                            "method and setting how many cells are done, todo, stale (with what changed), failed (with "
                            "their one-line error) or running (a held cell lock), and which feature entries and "
                            "generated images are present or missing. Nothing is trained, encoded or rendered; an "
                            "image is read only to key a record's data when it changed since a run hashed it (as "
                            "--dry-run).")
    status.add_argument("--work-dir", default="work_dirs", help="the work dir bench run was given (default: work_dirs)")
    status.add_argument("--run", help="only this run (default: every run folder under --work-dir)")
    status.add_argument("--cells", action="store_true", help="list every cell with its state (default: the counts, "
                                                             "and the failed, running and stale cells)")
    status.add_argument("--json", action="store_true", help="print the status as JSON")

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
    from bench.cli.listing import cmd_list
    from bench.cli.report import cmd_report
    from bench.cli.run import cmd_run
    from bench.cli.status import cmd_status
    from bench.errors import BenchError

    try:
        return {"run": cmd_run, "report": cmd_report, "list": cmd_list, "toy": cmd_toy,
                "status": cmd_status}[args.command](args)
    except BenchError as exc:  # every error bench raises for its user (bench/errors.py): one line
        print(f"bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a full disk, a read-only or unwritable folder: one line naming it
        message = write_fault(exc, getattr(args, "work_dir", None))
        if message is None:
            return unexpected(exc)
        print(f"bench: error: {message}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 -- a bug, or an input bench does not check yet
        return unexpected(exc)


def unexpected(exc: Exception) -> int:
    """One line for an exception that is no :class:`bench.errors.BenchError` (a bug in bench or a plug-in, or an
    input it does not check yet), with how to see where it came from: ``BENCH_TRACEBACK=1`` prints the traceback."""
    if os.environ.get("BENCH_TRACEBACK", "") not in ("", "0"):
        import traceback

        traceback.print_exception(exc)
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    print(f"bench: error: unexpected {type(exc).__name__}: {first} (a bug in bench or a plug-in, or an input it "
          "does not check yet; rerun with BENCH_TRACEBACK=1 to see where)", file=sys.stderr)
    return 1


def write_fault(exc: OSError, work_dir: str | None = None) -> str | None:
    """One line for an OSError a user fixes on their side (a full disk, a read-only or unwritable folder),
    naming the file and its folder (or, when the error names none, the work dir); None for any other."""
    import errno
    from pathlib import Path

    from bench.io import is_write_fault

    space = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    if not is_write_fault(exc):
        return None
    hint = ("free space there, or put the work dir (--work-dir) or the feature cache (runtime.cache_dir) on "
            "another disk") if exc.errno in space else \
        "make it writable, or pass another --work-dir (and runtime.cache_dir for the feature cache)"
    what = exc.strerror or os.strerror(exc.errno)
    if not exc.filename:
        return f"{what} while writing under the work dir {work_dir} or the feature cache: {hint}"
    return f"{what}: cannot write {exc.filename} in {Path(exc.filename).parent}; {hint}"


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

"""The README's main job from nothing, timed phase by phase, with the machine's load while it ran.

    python benchmarks/bench_main_job.py [--scratch DIR] [--methods all] [--keep] [-- extra `bench run` args]

Runs ``bench run --methods all --dataset toy`` in a fresh scratch folder: the toy world is generated
into ``<scratch>/data/toy`` (``--data-root``) and every feature, generated image and record goes to
``<scratch>/work_dirs`` (so nothing is reused from an earlier run), then ``bench report`` on it. Prints:
  - the wall time of the main job (the number the README quotes) and of ``bench report``;
  - the job's wall clock by phase (startup, toy world, cells, fusion, diagnostics, summary), from the
    timings the CLI writes (``<run>/timings.json``);
  - inside the cells phase: with ``--jobs`` (the toy default), each task's seconds in its worker process,
    grouped (rendering generated images, the prepare tasks' feature extraction, each method's cells) and
    how busy the workers were; with one process, the records' ``seconds`` by phase and method;
  - the load: ``os.getloadavg()`` before, every few seconds during (min / mean / max of the 1-minute
    figure) and after, and the CPU count. The machine is quiet when the 1-minute load stays near the
    job's own (about the thread count); judge a total against the load it ran under.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class LoadSampler:
    """The 1-minute load average, sampled every ``every`` seconds in a background thread."""

    def __init__(self, every: float = 5.0):
        self.every, self.samples, self._stop = every, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def bench_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.cli", *args]


def job_env(threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_timed(cmd: list[str], env: dict, log_path: Path) -> float:
    """Run ``cmd`` with its output in ``log_path``; its wall seconds. A failure prints the log's tail and exits."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        print("".join(log_path.read_text().splitlines(keepends=True)[-30:]), file=sys.stderr)
        sys.exit(f"{' '.join(cmd[2:])} failed with exit code {code} (log: {log_path})")
    return seconds


def record_phases(records_dir: Path) -> tuple[dict, dict]:
    """(phase -> seconds, method -> training seconds) summed over the cell records in ``records_dir``."""
    phases: dict[str, float] = defaultdict(float)
    train: dict[str, float] = defaultdict(float)
    for path in sorted(records_dir.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("kind") == "diagnostics" or "derived_from" in record or record.get("status") != "ok":
            continue
        seconds = record.get("seconds", {})
        generation = float((record.get("train_data") or {}).get("generation_seconds", 0.0))
        phases["feature extraction (+ caption parsing)"] += seconds.get("extract_test", 0.0) \
            + seconds.get("prepare_train", 0.0) - generation
        phases["generation (toy renderer)"] += generation
        phases["training"] += seconds.get("train", 0.0)
        phases["evaluation"] += seconds.get("eval", 0.0)
        train[record["method"]] += seconds.get("train", 0.0)
    return dict(phases), dict(train)


def cli_timings(run_dir: Path, start_wall: float) -> dict:
    """The CLI's own phase timings (``timings.json``); without it (older code), estimates from file times."""
    path = run_dir / "timings.json"
    if path.is_file():
        return {k: v if isinstance(v, dict) else float(v) for k, v in json.loads(path.read_text()).items()}
    out = {}
    manifest = run_dir.parent.parent / "data" / "toy" / "toy_manifest.json"
    if manifest.is_file():
        out["dataset"] = manifest.stat().st_mtime - start_wall
    records = list((run_dir / "records").rglob("*.json"))
    diag = [p.stat().st_mtime for p in records if p.name.startswith("diagnostics__")]
    cells = [p.stat().st_mtime for p in records if not p.name.startswith("diagnostics__")]
    if diag and cells:
        out["diagnostics"] = max(diag) - max(cells)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", help="scratch folder (default: a new temporary folder, removed unless --keep)")
    parser.add_argument("--methods", default="all")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS for the job (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--data-root", help="an existing toy world to reuse (default: generate one in the scratch "
                                            "folder, as a first run does)")
    parser.add_argument("--no-report", action="store_true", help="skip `bench report` after the job")
    parser.add_argument("extra", nargs="*", help="more `bench run` arguments (after --)")
    args = parser.parse_args(argv)
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="bench_main_job_"))
    if scratch.exists() and any(scratch.iterdir()):
        sys.exit(f"--scratch {scratch} is not empty: the job must start from nothing")
    scratch.mkdir(parents=True, exist_ok=True)
    env = job_env(args.threads)
    work_dir = scratch / "work_dirs"
    data_root = args.data_root or str(scratch / "data" / "toy")
    cmd = bench_command("run", "--methods", args.methods, "--dataset", "toy", "--data-root", data_root,
                        "--work-dir", str(work_dir), "--quiet", *args.extra)
    load_before = os.getloadavg()
    start_wall = time.time()
    with LoadSampler() as sampler:
        total = run_timed(cmd, env, scratch / "run.log")
        report = None if args.no_report else run_timed(
            bench_command("report", "--work-dir", str(work_dir), "--out", str(scratch / "reports"), "--n-boot", "200"),
            env, scratch / "report.log")
    load_after = os.getloadavg()
    run_dir = next(p for p in work_dir.iterdir() if (p / "records").is_dir())
    records_dir = run_dir / "records" / "toy"
    phases, train = record_phases(records_dir)
    timings = cli_timings(run_dir, start_wall)
    n_cells = sum(1 for p in records_dir.glob("*.json") if not p.name.startswith("diagnostics__"))

    during = sampler.samples or [load_before[0]]
    print(f"main job: {' '.join(cmd[2:])}")
    print(f"cpus {os.cpu_count()}, OMP_NUM_THREADS {args.threads}; load (1/5/15 min) before "
          f"{'/'.join(f'{x:.2f}' for x in load_before)}, during (1 min, {len(during)} samples) min "
          f"{min(during):.2f} mean {sum(during) / len(during):.2f} max {max(during):.2f}, after "
          f"{'/'.join(f'{x:.2f}' for x in load_after)}")
    print("wall clock of the job:\n| phase | seconds | share |\n|---|---|---|")
    jobs = timings.get("jobs")
    if "cells" in timings:
        timed = ("dataset", "cells", "fusion", "diagnostics", "summary")
        cells_name = f"cells ({jobs['jobs']} worker processes x {jobs['threads']} thread(s), {jobs.get('start')})" \
            if jobs else "cells"
        rows = [("startup (imports, config, planning)", total - sum(timings[k] for k in timed)),
                ("toy world (generated, eval split loaded)", timings["dataset"]), (cells_name, timings["cells"]),
                ("fusion", timings["fusion"]), ("diagnostics", timings["diagnostics"]),
                ("summary table", timings["summary"])]
        for name, seconds in rows:
            print(f"| {name} | {seconds:.1f} | {seconds / total:.0%} |")
    print(f"| **main job total ({n_cells} records)** | **{total:.1f}** | 100% |")
    if jobs:  # what the workers did: each task's seconds in its worker, summed over workers
        tasks = jobs["tasks"]
        groups: dict[str, float] = defaultdict(float)
        for label, seconds in tasks.items():
            group = label if not label.startswith("rendering") else "rendering generated images"
            if "__" in label:  # a cell: method__setting__seed
                group = f"cells: {label.split('__')[0]}"
            groups[group] += seconds
        busy = sum(groups.values())
        print(f"\ninside the cells phase: seconds in the workers (summed: {busy:.1f} s of {jobs['jobs']} x "
              f"{timings['cells']:.1f} s = {busy / (jobs['jobs'] * timings['cells']):.0%} busy)")
        print("| task | worker seconds |\n|---|---|")
        for group, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
            print(f"| {group} | {seconds:.1f} |")
    else:
        print("\ninside the cells phase (the records' seconds):\n| phase | seconds |\n|---|---|")
        rows = [(name, phases.get(name)) for name in ("feature extraction (+ caption parsing)",
                                                       "generation (toy renderer)", "evaluation")]
        rows += [(f"training: {m}", s) for m, s in sorted(train.items(), key=lambda kv: -kv[1])]
        for name, seconds in rows:
            if seconds is not None:
                print(f"| {name} | {seconds:.1f} |")
    if report is not None:
        print(f"| bench report (after the job, not in the total) | {report:.1f} | |")
    if args.keep or args.scratch:
        print(f"scratch kept: {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

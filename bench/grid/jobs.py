"""Several cells at once on one machine: ``bench run --jobs N`` (``runtime.jobs``).

On CPUs, one process with two threads runs the small operations of a cached-feature training step hardly
faster than one thread does, while two processes with one thread each run two steps in the same time
(``benchmarks/bench_jobs.py`` measures both). So a run with N jobs starts N worker processes, each with
``cores // N`` torch threads, and a scheduler in the parent process hands them tasks one at a time:

- **prepare tasks** first: every feature and generated image the cells will read, computed once. One task for
  the real images and captions (every split's planned feature kinds in one encoder pass, then each other
  method's training data), the images still to render shared out in N equal tasks, then per *generation
  family* (the generated-image cells that share a generator) one task for their features, nested
  images-per-caption variants such as T2I-PAL x1 / x2 / x4 in that order so each encodes only what is new;
- then the **cells**, each as soon as the prepare tasks it depends on are done (every cell depends on the
  real-image task, a generated-image cell also on its family's), training methods before zero-shot ones;
- the **diagnostics** last, once the generated-image cells are done, beside the last cells.

Cells keep their locks, records and resume exactly as in one process (:func:`bench.cell.runner.run_cell`); the
parent shows the progress and runs what comes after the cells (fusion, the table). A cell that fails
is a failed record and the run goes on, as in one process; a prepare task that fails the way a cell fails (a
generator that will not load) leaves its cells to fail with that reason; a worker that raises anything else
ends the run with its error; a worker that dies ends it with one line naming the task, and a
rerun resumes. Workers are forked when each has one thread on CPU (they inherit the imported modules:
no start-up cost); otherwise, and always with CUDA, they are spawned (a forked OpenMP pool with more than
one thread hangs, as does CUDA after fork).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass, field

from bench.cell.plan import Cell, plan_cell
from bench.cell.runner import belongs_to_cell, one_line
from bench.errors import JobError, UsageError

log = logging.getLogger("bench")


REAL_TASK = 0  # the id of the prepare task of the real images and captions


@dataclass
class Task:
    """A prepare task (``cells`` whose features and generated images to compute, in order), a share of the
    images to render, or one cell."""

    id: int
    kind: str  # "prepare", "render", "cell" or "diagnostics"
    cells: list[Cell]
    deps: set[int] = field(default_factory=set)
    label: str = ""
    renders: list[tuple] = field(default_factory=list)  # render tasks: (generator, prompt, seed, path)


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_jobs(value, device: str, threads: int | None = None) -> tuple[int, int]:
    """(jobs, torch threads per job) for ``--jobs`` / ``runtime.jobs``: an int >= 1 or "auto" (one job per
    usable core on CPU, one on a GPU). ``threads`` (``--threads``) fixes the threads per job; else the
    cores are shared out (at least one each)."""
    if value in (None, "auto"):
        jobs = 1 if str(device).startswith("cuda") else usable_cores()
    else:
        try:
            jobs = int(value)
        except (TypeError, ValueError):
            jobs = 0
        if jobs < 1 or str(value) != str(jobs):
            raise UsageError(f"--jobs / runtime.jobs must be 'auto' or an integer >= 1, got {value!r}")
    return jobs, threads or max(1, usable_cores() // jobs)


def plan_tasks(session, cells: list[Cell], jobs: int, diagnostics: dict | None = None) -> list[Task]:
    """The run's tasks in the order they are handed out: the real images' prepare task, the rendering of every
    generated image not on disk yet in ``jobs`` equal shares, one prepare task per generation family (after the
    rendering; largest first), then one task per cell (training methods first), each cell depending on the
    prepare tasks whose work it reads; with ``diagnostics`` (the config's section, enabled), their records last."""
    from bench.grid.sweep import plans_to_prepare

    families: dict[str, list] = {}  # generator config -> plans of the generated-image cells using it
    real: list = []
    for plan in plans_to_prepare(session, cells):
        if plan.method_cls.trains_on == "generated":
            families.setdefault(_generator_key(plan), []).append(plan)
        else:
            real.append(plan)
    tasks = [Task(REAL_TASK, "prepare", [p.cell for p in real], label="features of the real images and captions")]
    renders = missing_images([p for plans in families.values() for p in plans], session)
    shares = min(jobs, len(renders))
    for i in range(shares):
        tasks.append(Task(len(tasks), "render", [], renders=renders[i::shares],
                          label=f"rendering {len(renders[i::shares])} generated images ({i + 1}/{shares})"))
    rendering = {t.id for t in tasks if t.kind == "render"}
    family_of: dict[str, int] = {}
    for generator, plans in sorted(families.items(), key=lambda kv: -len(kv[1])):
        # zero-shot first (generated images only), then the nested variants by images per caption, and the
        # settings that also read real training images last (by then the real-image task has encoded them)
        plans.sort(key=lambda p: (p.cell.setting != "zero-shot", int(p.kwargs.get("images_per_caption", 1))))
        family_of[generator] = len(tasks)
        tasks.append(Task(len(tasks), "prepare", [p.cell for p in plans], set(rendering),
                          label=f"features of the generated images ({plans[0].cell.method})"))
    plans = [plan_cell(session.cfg, cell) for cell in cells]
    after_cells = set()  # the generated-image cells: the diagnostics read their records
    for plan in sorted(plans, key=lambda p: p.method_cls.trains_on is None):  # training methods first
        deps = {REAL_TASK}
        if plan.method_cls.trains_on == "generated":
            deps |= {family_of[_generator_key(plan)]} if _generator_key(plan) in family_of else set()
            after_cells.add(len(tasks))
        tasks.append(Task(len(tasks), "cell", [plan.cell], deps, label=plan.cell.name))
    if diagnostics:  # after the prepare tasks and the generated-image cells, beside the last cells
        after = {t.id for t in tasks if t.kind != "cell"} | after_cells
        tasks.append(Task(len(tasks), "diagnostics", list(cells), after, label="diagnostics"))
    return tasks


def _generator_key(plan) -> str:
    return json.dumps(plan.kwargs.get("generator"), sort_keys=True, default=str)


def missing_images(plans, session) -> list[tuple]:
    """(generator, prompt, seed, path) of every image the generated-image cells ``plans`` read that is not on
    disk yet, each once (nested variants share images), in the order the cells list them."""
    from bench.cell.generated import generation_plan
    from bench.registry import construct

    todo: dict[str, tuple] = {}
    for plan in plans:
        method = construct(plan.method_cls, plan.kwargs, f"method {plan.cell.method!r}")
        generation = generation_plan(session, method, plan.cell.setting)
        captions = generation["captions"]
        for c, seed, path in zip(generation["caption_index"], generation["seeds"], generation["paths"], strict=True):
            if path not in todo and not os.path.isfile(path):
                todo[path] = (generation["generator"], captions[c], int(seed), path)
    return list(todo.values())


def run_pool(session, tasks: list[Task], jobs: int, threads: int, force: bool, progress: bool,
             leak_threshold: float = 0.95) -> dict[str, list]:
    """Run ``tasks`` on ``jobs`` worker processes; the record paths of the cells, and the failures."""
    from tqdm import tqdm

    method = "fork" if threads == 1 and session.device == "cpu" and "fork" in mp.get_all_start_methods() \
        else "spawn"
    ctx = mp.get_context(method)
    results = ctx.Queue()
    spec = dict(cfg=session.cfg, work_dir=str(session.work_dir), device=session.device,
                needs=session.feature_needs, threads=threads, force=force, state=session.shared_state(),
                leak_threshold=leak_threshold)
    inboxes = [ctx.Queue() for _ in range(jobs)]
    workers = [ctx.Process(target=_worker, args=(i, spec, inboxes[i], results), daemon=True,
                           name=f"bench-job-{i}") for i in range(jobs)]
    log.info("running %d tasks on %d worker processes (%s, %d torch thread(s) each)", len(tasks), jobs, method,
             threads)
    for w in workers:
        w.start()
    pending, running, finished = list(tasks), {}, set()
    outcome = {"records": [], "failed": [], "task_seconds": {}, "start_method": method}
    shown = None
    bar = tqdm(total=sum(t.kind == "cell" for t in tasks), desc="cells", unit="cell", disable=not progress)
    try:
        while pending or running:
            for i in range(jobs):
                if i in running:
                    continue
                task = next((t for t in pending if t.deps <= finished), None)
                if task is None:
                    break
                pending.remove(task)
                running[i] = task
                inboxes[i].put(task)
            now = ", ".join(t.label for t in running.values())[:120]
            if now != shown:
                bar.set_postfix_str(now, refresh=False)
                shown = now
            try:
                i, task_id, result = results.get(timeout=1.0)
            except queue.Empty:
                for i, task in running.items():
                    if not workers[i].is_alive():
                        raise JobError(f"worker process {workers[i].pid} died (exit code {workers[i].exitcode}) "
                                       f"while running {task.label}; rerun the same command to resume "
                                       f"(or pass --jobs 1)") from None
                continue
            task = running.pop(i)
            if isinstance(result, BaseException):
                if task.kind == "cell" or not belongs_to_cell(result):  # (a cell's own failure is a failed record)
                    raise result
                # a prepare, render or diagnostics task that failed the way a cell fails (e.g. a generator that will
                # not load): the cells that read its work run and fail with their own records; the others go on
                log.warning("%s failed (%s); the cells that need it will fail with that reason", task.label,
                            one_line(result))
                result = {"seconds": 0.0}
            finished.add(task_id)
            outcome["task_seconds"][task.label] = round(result["seconds"], 3)
            if task.kind == "cell":
                outcome["records"] += result["records"]
                outcome["failed"] += result["failed"]
                bar.update(1)
    finally:
        bar.close()
        for inbox in inboxes:
            inbox.put(None)
        for w in workers:
            w.join(timeout=5 if not running else 0)
            if w.is_alive():
                w.terminate()
    return outcome


def prepare_splits(session) -> None:
    """Encode every split of the dataset the run reads (evaluation, training, validation images), with every
    feature kind planned for it (``session.feature_needs``), in one pass each."""
    for (spec, image_set, views), kinds in session.feature_needs.items():
        if image_set == "generated" or views != 1:  # generated sets: their family's task; augmented views: the cell
            continue
        split = session.split(session.eval_split if image_set == "eval" else image_set)
        session.split_features(session.backbone(spec=spec), split, sorted(kinds))


def _worker(index: int, spec: dict, inbox, results) -> None:
    """A worker process: its own session on the same work dir and cache; runs tasks until it gets None or its
    parent process is gone (killed: the worker finishes the task at hand, then exits)."""
    import torch

    from bench.cell.runner import prepare_cell
    from bench.cell.session import Session
    from bench.generation.generators import render_and_save
    from bench.grid.sweep import _run_one

    torch.set_num_threads(spec["threads"])
    os.environ["OMP_NUM_THREADS"] = str(spec["threads"])  # the CPU budget of renderers and loaders started here
    session = Session(spec["cfg"], spec["work_dir"], device=spec["device"], progress=False)
    session.feature_needs = spec["needs"]
    session.adopt(spec["state"])
    parent = os.getppid()
    while True:
        try:
            task = inbox.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the parent was killed: no one hands out tasks or reads results any more
                return
            continue
        if task is None:
            break
        start, result = time.perf_counter(), {}
        try:
            if task.kind == "diagnostics":
                from bench.grid.diagnostics import write_diagnostics

                write_diagnostics(session, task.cells, threshold=spec["leak_threshold"], force=spec["force"])
            elif task.kind == "render":
                render_and_save(task.renders)
            elif task.kind == "prepare":
                if task.id == REAL_TASK:
                    prepare_splits(session)
                for cell in task.cells:
                    prepare_cell(session, plan_cell(session.cfg, cell))
            else:
                result = {"records": [], "failed": []}
                _run_one(session, task.cells[0], spec["force"], result["records"], result["failed"], wait=True)
        except BaseException as exc:  # noqa: BLE001 -- handed to the parent, which raises it or goes on
            results.put((index, task.id, _picklable(exc)))
            if belongs_to_cell(exc):  # the parent goes on: so does this worker
                continue
            return
        results.put((index, task.id, {**result, "seconds": time.perf_counter() - start}))


def _picklable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (the parent re-raises it as is), else a RuntimeError with its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(exc).__name__}: {exc}")

"""Running the grid of cells of a sweep: sharding across array jobs or ranks, the prepare phase of a distributed
job, the cells in order with resume. Which cells there are and what they read: :mod:`bench.grid.selection`."""

from __future__ import annotations

import json
import logging
import os

import torch

from bench.cell.plan import Cell, plan_cell, record_state
from bench.cell.runner import prepare_cell, run_cell
from bench.cell.session import Session
from bench.errors import CellFailed, UsageError
from bench.grid.selection import (  # noqa: F401 -- planning, importable from here as before the split
    as_shot_list,
    feature_needs,
    plan_cells,
    resolve_methods,
)
from bench.locking import holder

log = logging.getLogger("bench")


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n (e.g. a Slurm array task id over the array size)."""
    if not text:
        return 0, 1
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= index < count:
        raise UsageError(f"--shard {text}: need 0 <= i < n")
    return index, count


def shard_cells(cells: list[Cell], index: int, count: int) -> list[Cell]:
    return cells[index::count]


def distributed_context() -> tuple[int, int, int]:
    """(rank, world size, local rank). Under torchrun (WORLD_SIZE > 1) the process group is
    initialised here: NCCL on GPUs, gloo on CPUs (mmengine's ``init_dist`` assumes CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return torch.distributed.get_rank(), world, local_rank


def check_device(device: str, amp: str | None) -> None:
    """--device cuda needs a visible GPU; AMP (--amp / runtime.amp) is CUDA-only, so on CPU it is refused
    rather than recorded as used."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is visible to torch (torch.cuda.is_available() is False); "
                         "use --device cpu")
    if amp and not device.startswith("cuda"):
        raise UsageError(f"--amp / runtime.amp={amp} needs --device cuda (autocast runs on CUDA only); "
                         "drop it on CPU")


def prepare_features(session: Session, cells: list[Cell]) -> None:
    """Compute every feature the cells need before any cell runs, split across the ranks of a
    distributed job (each rank fills every n-th chunk). All ranks must call this with the same
    cells. Cells then read the cache, so ranks can run different cells without waiting."""
    session.cache.sharded = True
    try:
        for plan in plans_to_prepare(session, cells):
            prepare_cell(session, plan)
    finally:
        session.cache.sharded = False


def plans_to_prepare(session: Session, cells: list[Cell]) -> list:
    """The plans of ``cells`` whose features a prepare phase computes: one per method config and data (cells
    that share them read the same features), leaving out cells whose record is done; in the cells' order."""
    seen: set[str] = set()
    plans = []
    for cell in cells:
        plan = plan_cell(session.cfg, cell)
        # the setting matters where real train images are read: image methods, and T2I-PAL beyond zero-shot
        reads_real = plan.method_cls.trains_on in ("images", "generated")
        key = json.dumps([cell.method, cell.setting if reads_real else None, plan.config], sort_keys=True,
                         default=str)
        if key not in seen and record_state(cell.record_path(session.work_dir), plan, session.data) != "done":
            seen.add(key)
            plans.append(plan)
    return plans


def run_cells(session: Session, cells: list[Cell], force: bool = False) -> dict[str, list]:
    """Run cells in order with a progress bar; a cell that fails at run time is recorded as failed (its
    one-line reason in its record) and the sweep goes on. A cell another process is running (its lock is
    held) is skipped, with one line, and come back to after the others: then this process waits for it, and
    runs it only if the record it finds is not done. Returns the record paths, and the failures (cell, reason,
    failed record)."""
    from tqdm import tqdm

    done, failed, later = [], [], []
    bar = tqdm(cells, desc="cells", unit="cell", disable=not session.progress)
    for cell in bar:
        bar.set_postfix_str(cell.name)
        if not _run_one(session, cell, force, done, failed, wait=False):
            log.warning("cell %s is being run by another process (pid %s); coming back to it after the others",
                        cell.name, holder(cell.lock_path(session.work_dir)))
            later.append(cell)
    for cell in later:
        _run_one(session, cell, force, done, failed, wait=True)
    return {"records": done, "failed": failed}


def _run_one(session: Session, cell: Cell, force: bool, done: list, failed: list, wait: bool) -> bool:
    """Run a cell into ``done`` or ``failed``; False when skipped (another process holds it, ``wait`` off)."""
    try:
        path = run_cell(session, cell, force=force, wait=wait)
    except CellFailed as exc:  # its failed record is written (bench.cell.runner.run_cell); the sweep goes on
        log.error("cell %s failed: %s", cell.name, exc)
        failed.append((cell, str(exc), exc.record))
        return True
    if path is not None:
        done.append(path)
    return path is not None

"""The grid of cells for a sweep, sharding across array jobs or ranks, and running it with resume."""

from __future__ import annotations

import json
import logging
import os

import torch

from bench.cell.plan import Cell, plan_cell, record_state
from bench.cell.runner import prepare_cell, run_cell
from bench.cell.session import Session
from bench.cell.zsl import zsl_skip_reason
from bench.config import method_class
from bench.data.base import SETTINGS, check_label_ratio, check_shots
from bench.errors import CellFailed, UsageError
from bench.locking import holder
from bench.registry import METHODS, list_names

log = logging.getLogger("bench")


def resolve_methods(spec: str | list[str], cfg=None) -> list[str]:
    """'all' -> every registered method (built-in and plug-in) plus the config's ``sweep.variants``
    (e.g. T2I-PAL's ablation rows); else the comma list, each checked (registered or a config variant)."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip()]
    if names == ["all"]:
        variants = list((cfg.get("sweep", {}) or {}).get("variants", [])) if cfg is not None else []
        names = list_names(METHODS) + [v for v in variants if v not in list_names(METHODS)]
    for name in names:
        method_class(cfg, name)  # KeyError with the valid names
    return names


def as_shot_list(shots) -> list[int]:
    """``sweep.shots`` as a list of K: one number (``16``) or a list (``[1, 2, 4, 8, 16]``), each checked."""
    values = shots if isinstance(shots, (list, tuple)) else [shots]
    return [check_shots(k) for k in values]


def plan_cells(methods: list[str], dataset: str, settings: list[str], ratios: list[float],
               seeds: list[int], cfg=None, shots: list[int] | None = None) -> list[Cell]:
    """Methods x the settings each supports x points (label ratios for partial, shot counts K for
    few-shot, one cell otherwise) x seeds.

    ``shots``: default the config's ``sweep.shots`` (16). ``sweep.method_settings`` (``{method: [settings]}``)
    restricts a method to some of its settings (e.g. ablation variants to zero-shot on the toy world).
    A method with nothing to train (zero-shot CLIP) gives the same numbers for every seed, so it
    runs once, with the first seed. In the zsl setting a method that cannot score unseen classes
    (as configured: e.g. class-specific contexts) is left out with a one-line warning saying why.
    """
    sweep = (cfg.get("sweep", {}) or {}) if cfg is not None else {}
    ratios = [check_label_ratio(r) for r in ratios]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise UsageError(f"unknown setting(s) {unknown}; valid: {', '.join(SETTINGS)}")
    shots = as_shot_list(sweep.get("shots", 16) if shots is None else shots)
    only = sweep.get("method_settings", {}) or {}
    cells = []
    for name in methods:
        cls = method_class(cfg, name)
        method_seeds = seeds[:1] if cls.trains_on is None else seeds
        for setting in settings:
            if name in only and setting not in only[name]:
                continue
            if setting == "zsl":
                reason = zsl_skip_reason(cfg, name, cls)
                if reason:
                    log.warning("%s: skipped in the zsl setting: %s", name, reason)
                    continue
            elif setting not in cls.settings:
                continue
            points = [(r, None) for r in ratios] if setting == "partial" else \
                [(None, k) for k in shots] if setting == "fewshot" else [(None, None)]
            cells += [Cell(name, dataset, setting, ratio, seed, shots=k) for ratio, k in points
                      for seed in method_seeds]
    return cells


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


def feature_needs(session: Session, cells: list[Cell], diagnostics: bool = True) -> dict[tuple, set[str]]:
    """(backbone spec, image set, views) -> every image feature kind the cells, and the diagnostics after
    them, read from that set ("eval": the evaluation split, "train": the train split, "generated": a
    generated-image method's images). The first encoder pass over a set stores all of them
    (:meth:`Session.image_features`), so no image goes through the encoder twice for another kind."""
    from bench.cell.validation import tunes, uses_val_split
    from bench.registry import construct

    views = int((session.cfg.get("features", {}) or {}).get("views", 1))
    needs: dict[tuple, set[str]] = {}
    generated = False
    for cell in cells:
        plan = plan_cell(session.cfg, cell)
        method = construct(plan.method_cls, plan.kwargs, f"method {cell.method!r}")  # kinds may depend on kwargs
        spec, kinds = session.backbone_spec(plan.backbone_overrides), set(method.image_features.values())
        needs.setdefault((spec, "eval", 1), set()).update(kinds)
        if method.trains_on == "images":
            needs.setdefault((spec, "train", views), set()).update(kinds)
        if method.trains_on == "generated":
            needs.setdefault((spec, "generated", 1), set()).update(kinds)
            generated = True
        if getattr(method, "fits_features", False) or tunes(method):  # validation images (bench/cell/validation.py)
            needs.setdefault((spec, "val" if uses_val_split(session) else "train", 1), set()).update(kinds)
    if diagnostics:  # global features of the real images, and (with generated images) of the rest (bench/diagnostics)
        spec = session.backbone_spec()
        for image_set in ("eval", "train", "generated") if generated else ("eval",):
            needs.setdefault((spec, image_set, 1), set()).add("global")
    return needs


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

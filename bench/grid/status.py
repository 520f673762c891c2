"""How far a run has come (``bench status``), read from what exists: nothing is trained, encoded or rendered.

A run folder is ``<work-dir>/<run>/`` with the ``config.py`` ``bench run`` wrote there (the config as run,
``--cfg-options`` applied). Its cells are those of every cell selection ``bench run`` was given there
(``sweeps.json``; the config's own grid when none is recorded) plus every cell that has a record. Each cell is

  done     its record holds this config on the data as it is now (a rerun skips it)
  todo     no record yet
  stale    a record of another config or of other data, or an unreadable one (a rerun recomputes it; what changed)
  failed   an error record (its one-line error)
  running  some process holds its lock now (:func:`bench.locking.is_held`; seen where the locks are: this machine,
           or a shared file system whose server keeps ``flock`` locks)

The prepare state: for each image set the cells and the diagnostics read (:func:`bench.grid.selection.feature_needs`),
which feature kinds have a complete entry in the cache, which are being filled (chunks written of all), and which
are missing; for each generated-image method, its images on disk. An entry's key needs the images' content hashes:
they are taken from the cache's memo (path, size, mtime) without reading an image, so images no run has hashed
since they last changed count as missing; and the backbone's weights hash: the backbone is loaded once (on the CPU)
when some set has hashed images. Checks that read whole files (an entry's crc32) are left to the runs.

What it costs (``benchmarks/bench_status.py``): loading the dataset's annotations and the config, one ``stat`` per
image of each image set, one read of each record file, the data digests of the cells whose record holds the current
config (as ``bench run --dry-run``: an image is read only if it changed since a run hashed it), and the caption
parse of the generated-image methods' plans.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.cell.plan import Cell, plan_cell, read_record, stale_reason
from bench.config import to_plain
from bench.errors import UsageError
from bench.io import read_json, sha256_json
from bench.locking import holder, is_held

STATES = ("done", "todo", "stale", "failed", "running")


@dataclass
class CellState:
    cell: Cell
    state: str  # one of STATES
    detail: str = ""  # stale: what changed; failed: the error; running: the pid in the lock file


@dataclass
class RunStatus:
    run_dir: Path
    cells: list[CellState] = field(default_factory=list)
    unplanned: list[tuple[str, str]] = field(default_factory=list)  # (file, why its cells are left out)
    derived: dict[str, int] = field(default_factory=dict)  # "fused", "diagnostics" -> records present
    features: list[dict] = field(default_factory=list)  # one per (image set, backbone, views)
    generated: list[dict] = field(default_factory=list)  # one per generated-image method
    selections: int = 0

    def counts(self) -> list[dict]:
        """Cells per (dataset, method, setting) and state, in the cells' order."""
        rows: dict[tuple, dict] = {}
        for c in self.cells:
            key = (c.cell.dataset, c.cell.method, c.cell.setting)
            row = rows.setdefault(key, {"dataset": key[0], "method": key[1], "setting": key[2], "cells": 0,
                                        **dict.fromkeys(STATES, 0)})
            row["cells"] += 1
            row[c.state] += 1
        return list(rows.values())


def find_runs(work_dir: Path, run: str | None = None) -> list[Path]:
    """The run folders under ``work_dir`` (those with a ``config.py``), or the one named ``run``."""
    work_dir = Path(work_dir)
    if run:
        if not (work_dir / run / "config.py").is_file():
            raise UsageError(f"no run {run!r} under {work_dir}: {work_dir / run / 'config.py'} is missing "
                                    "(bench run writes it when it starts)")
        return [work_dir / run]
    runs = sorted(p.parent for p in work_dir.glob("*/config.py"))
    if not runs:
        raise UsageError(f"no run under {work_dir}: no {work_dir}/<run>/config.py (bench run writes one per "
                                "run); pass the --work-dir bench run was given")
    return runs


def run_status(run_dir: Path) -> RunStatus:
    """The status of one run folder (see the module docstring)."""
    from mmengine.config import Config

    from bench.cell.session import Session
    from bench.grid.selection import remembered_selections, selection, selection_cells

    try:
        cfg = Config.fromfile(str(run_dir / "config.py"))
    except Exception as exc:  # mmengine raises many kinds on a malformed file
        raise UsageError(f"cannot read the run's config {run_dir / 'config.py'}: {type(exc).__name__}: {exc}") from exc
    session = Session(cfg, run_dir, device="cpu", progress=False, record_config=False)
    status = RunStatus(run_dir)
    chosen = remembered_selections(run_dir)
    status.selections = len(chosen)
    cells: dict[Cell, None] = {}
    if chosen:
        for one in chosen:
            known = [name for name in one["methods"] if _known(cfg, name, status)]
            cells.update(dict.fromkeys(selection_cells(cfg, {**one, "methods": known})))
    else:  # what `bench run --methods all` plans with this config
        cells.update(dict.fromkeys(selection_cells(cfg, selection(cfg))))
    cells.update(dict.fromkeys(_record_cells(session, status)))
    status.cells = [_cell_state(session, cell) for cell in cells]
    diagnostics = to_plain(cfg.get("diagnostics", {}) or {})
    status.features, status.generated = prepare_state(session, list(cells), diagnostics.get("enabled", True))
    return status


def _known(cfg, method: str, status: RunStatus) -> bool:
    """Whether a method of a remembered selection is registered (a plug-in may be gone); if not, say so once."""
    from bench.config import method_class
    from bench.grid.selection import SWEEPS_FILE

    try:
        method_class(cfg, method)
        return True
    except KeyError as exc:
        where = str(status.run_dir / SWEEPS_FILE)
        if (where, exc.args[0]) not in status.unplanned:
            status.unplanned.append((where, exc.args[0]))
        return False


def _record_cells(session, status: RunStatus) -> list[Cell]:
    """The cells of the records in the run folder that plan under its config; fused and diagnostics records are
    counted in ``status.derived``, other records that name no cell of the config in ``status.unplanned``."""
    found = []
    status.derived = {"fused": 0, "diagnostics": 0}
    for path in sorted((session.work_dir / "records").glob("*/*.json")):
        try:
            raw = read_json(path)
        except (OSError, ValueError):
            continue  # unreadable: a cell of a selection shows it as stale, or a rerun replaces it
        if isinstance(raw, dict) and (raw.get("kind") == "diagnostics" or raw.get("derived_from")):
            status.derived["diagnostics" if raw.get("kind") == "diagnostics" else "fused"] += 1
            continue
        record = read_record(path)  # a cell record, checked against the record contract
        if record is None:
            continue
        try:
            cell = Cell(record["method"], record["dataset"], record["setting"], record.get("label_ratio"),
                        int(record["seed"]), shots=record.get("shots"))
            plan_cell(session.cfg, cell)
        except (KeyError, ValueError, TypeError) as exc:
            status.unplanned.append((str(path), str(exc.args[0] if exc.args else exc)))
            continue
        found.append(cell)
    return found


def _cell_state(session, cell: Cell) -> CellState:
    lock = cell.lock_path(session.work_dir)
    if is_held(lock):
        return CellState(cell, "running", f"pid {holder(lock)}")
    path = cell.record_path(session.work_dir)
    reason = stale_reason(path, plan_cell(session.cfg, cell), session.data)
    if reason is None:
        return CellState(cell, "done")
    if reason == "failed":
        return CellState(cell, "failed", str((read_record(path) or {}).get("error", "no error recorded")))
    if reason == "unreadable":
        return CellState(cell, "stale", "the record cannot be read")
    state, _, why = reason.partition(": ")
    return CellState(cell, state, why)


def prepare_state(session, cells: list[Cell], diagnostics: bool = True) -> tuple[list[dict], list[dict]]:
    """(feature entries per image set, generated images per method) of what ``cells`` read (module docstring)."""
    from bench.grid.selection import feature_needs

    needs = feature_needs(session, cells, diagnostics=diagnostics)
    generated = _generated_sets(session, cells)
    views_augment = to_plain((session.cfg.get("features", {}) or {}).get("augment"))
    features = []
    for (spec, image_set, views), kinds in needs.items():
        if image_set == "generated":
            sets = [(f"generated ({g['method']})", g["paths"]) for g in generated if g["spec"] == spec]
        else:
            split = session.split(session.eval_split if image_set == "eval" else image_set)
            sets = [(f"{split.dataset}/{split.split}", split.image_paths)]
        for label, paths in sets:
            features.append(_entries(session, spec, label, list(paths), sorted(kinds), views,
                                     views_augment if views > 1 else None))
    for g in generated:
        g["present"] = sum(Path(p).is_file() for p in g.pop("paths"))
        g.pop("spec")
    return features, generated


def _generated_sets(session, cells: list[Cell]) -> list[dict]:
    """One per generated-image method among ``cells`` (and per zsl or not): its backbone spec and image paths."""
    from bench.cell.generated import generation_plan
    from bench.registry import construct

    out, seen = [], set()
    for cell in cells:
        plan = plan_cell(session.cfg, cell)
        if plan.method_cls.trains_on != "generated" or (cell.method, cell.setting == "zsl") in seen:
            continue
        seen.add((cell.method, cell.setting == "zsl"))
        method = construct(plan.method_cls, plan.kwargs, f"method {cell.method!r}")
        paths = generation_plan(session, method, cell.setting)["paths"]
        out.append({"method": cell.method + (" zsl" if cell.setting == "zsl" else ""), "images": len(paths),
                    "paths": paths, "spec": session.backbone_spec(plan.backbone_overrides)})
    return out


def _entries(session, spec, label: str, paths: list[str], kinds: list[str], views: int, augment) -> dict:
    """Which ``kinds`` of an image set have a complete entry, a partly filled one, or none."""
    from bench.features.cache_entry import fill_progress, image_entry_key
    from bench.features.hashes import memoised_hashes

    row = {"set": label, "backbone": spec.describe(), "views": views, "images": len(paths), "present": [],
           "filling": {}, "missing": [], "note": ""}
    cache = session.cache
    if not (cache.root / "features").is_dir():
        return {**row, "missing": kinds, "note": f"no feature cache at {cache.root} yet"}
    hashes = memoised_hashes(cache.root / "file_hashes.sqlite", paths)
    unhashed = sum(h is None for h in hashes)
    if unhashed:
        return {**row, "missing": kinds, "note": f"{unhashed} of {len(paths)} images not hashed by a run since they "
                                                 "last changed"}
    identity = _identity(session, spec)
    if isinstance(identity, str):
        return {**row, "missing": kinds, "note": identity}
    images_key = sha256_json(hashes)
    for kind in kinds:
        key = image_entry_key(identity, images_key, kind, views, augment)
        progress = None if cache.is_complete(key) else fill_progress(cache.entry_dir(key))
        if cache.is_complete(key):
            row["present"].append(kind)
        elif progress is not None:
            row["filling"][kind] = progress
        else:
            row["missing"].append(kind)
    return row


def _identity(session, spec) -> dict | str:
    """The backbone's cache identity (loaded on the CPU once per spec), or one line saying why it cannot be had."""
    from bench.features.spec import BackboneError

    try:
        return session.backbone(spec=spec).cache_identity()
    except (BackboneError, OSError, ValueError) as exc:
        return f"unknown: the backbone cannot be loaded to compute the cache keys ({exc})"


def as_json(status: RunStatus) -> str:
    """The status as JSON (``bench status --json``)."""
    out = dataclasses.asdict(status)
    out["run_dir"] = str(status.run_dir)
    out["counts"] = status.counts()
    return json.dumps(out, indent=1, default=str)

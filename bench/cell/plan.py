"""What a cell is: (method, dataset, setting, label ratio or shot count, seed), its name and paths (record,
lock, the state folder of one config and data); its plan (method class, arguments, schedule and the cell
config its record is keyed by); and the state of its record (done, stale, failed, unreadable, todo). No
torch: the CLI's ``--dry-run`` and the sweep plan with it.

A record is keyed by its config hash and by the content of the data it read (:mod:`bench.cell.datakey`); its
checkpoints live in a folder named by both (:meth:`Cell.state_dir`), so training is only ever resumed by
the config, on the data, that wrote them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench.config import cell_config, config_hash, method_class, method_config
from bench.data.base import SETTINGS, check_label_ratio, check_shots
from bench.errors import RecordError, UsageError
from bench.io import read_json
from bench.records import check_record


@dataclass(frozen=True)
class Cell:
    """One point of a sweep; ``label_ratio`` is set for the partial setting only, ``shots`` (K images per
    class) for the few-shot setting only."""

    method: str
    dataset: str
    setting: str
    label_ratio: float | None
    seed: int
    shots: int | None = None

    def __post_init__(self):
        if self.setting not in SETTINGS:
            raise UsageError(f"unknown setting {self.setting!r}; valid: {SETTINGS}")
        if self.setting == "partial":
            check_label_ratio(self.label_ratio)
        if self.setting == "fewshot":
            object.__setattr__(self, "shots", check_shots(self.shots))
        elif self.shots is not None:
            raise UsageError(f"shots={self.shots} is only for the fewshot setting, not {self.setting!r}")

    @property
    def name(self) -> str:
        """``<method>__<setting>[_r<ratio>][_k<shots>]__s<seed>``: the record's file stem."""
        ratio = f"_r{self.label_ratio:g}" if self.label_ratio is not None else ""
        shots = f"_k{self.shots}" if self.shots is not None else ""
        return f"{self.method}__{self.setting}{ratio}{shots}__s{self.seed}"

    def record_path(self, work_dir: Path) -> Path:
        """Where the cell's record goes in a run folder."""
        return Path(work_dir) / "records" / self.dataset / f"{self.name}.json"

    def lock_path(self, work_dir: Path) -> Path:
        """The file one process locks while it runs the cell (:func:`bench.locking.exclusive`)."""
        return Path(work_dir) / "cells" / self.dataset / f"{self.name}.lock"

    def state_dir(self, work_dir: Path, key: str) -> Path:
        """Checkpoints and logs of the cell run with one config and data (``key``: :func:`record_key`)."""
        return Path(work_dir) / "cells" / self.dataset / self.name / key


@dataclass
class CellPlan:
    """A cell with its method class and resolved configuration (what the record's hash covers)."""

    cell: Cell
    method_cls: type
    kwargs: dict
    train: dict
    backbone_overrides: dict
    config: dict


def plan_cell(cfg, cell: Cell) -> CellPlan:
    """The cell's method, its arguments and schedule, and the cell config its record is keyed by."""
    method_cls = method_class(cfg, cell.method)
    if cell.setting not in method_cls.settings:
        raise UsageError(f"method {cell.method} does not support the {cell.setting!r} setting "
                         f"(supports: {', '.join(method_cls.settings)})")
    kwargs, train, backbone_overrides = method_config(cfg, cell.method, method_cls, cell.setting)
    method_type = method_cls.name or cell.method  # a variant's base method (e.g. t2ipal for an ablation row)
    config = cell_config(cfg, cell.method, method_type, kwargs, train, backbone_overrides)
    if cell.setting == "zsl":  # the seen/unseen split file shapes the result: its hash is part of the key
        from bench.cell.zsl import split_identity

        config["zsl_split"] = split_identity(cfg)
    return CellPlan(cell, method_cls, kwargs, train, backbone_overrides, config)


def record_key(plan: CellPlan, data_key: str) -> str:
    """``<config hash>_<data key>``: what a record and the checkpoints of its cell belong to."""
    return f"{config_hash(plan.config)}_{data_key}"


def read_record(record_path: Path) -> dict | None:
    """The record, or None when there is none or it cannot be read (a rerun recomputes it)."""
    if not record_path.is_file():
        return None
    try:
        record = read_json(record_path)
        check_record(record)  # the record contract: a record with a bad field is recomputed, never taken as done
    except (OSError, json.JSONDecodeError, RecordError):
        return None
    return record


def record_state(record_path: Path, plan: CellPlan, data) -> str:
    """"done" (an ok record made with this plan's config on the data as it is now: a rerun skips the
    cell), "stale" (an ok record of another config or of other data: a rerun recomputes it), "failed"
    (an error record), "unreadable" (a damaged file: recomputed) or "todo" (none).

    ``data``: the session's :class:`bench.cell.datakey.DataKeys`; the data is hashed only for a record whose
    config matches."""
    return (stale_reason(record_path, plan, data) or "done").partition(":")[0]


def stale_reason(record_path: Path, plan: CellPlan, data) -> str | None:
    """None when the record is done; else its state, "stale" with what changed (e.g. "stale: data
    (eval:test) changed since the record was written")."""
    if not record_path.is_file():
        return "todo"
    record = read_record(record_path)
    if record is None:
        return "unreadable"
    if record.get("status") != "ok":
        return "failed"
    if record.get("config_hash") != config_hash(plan.config):
        return "stale: config changed since the record was written"
    now = data.for_cell(plan.method_cls.trains_on, plan.config.get("eval_split", "test"), plan.cell.setting)
    if record.get("data_key") != now["key"]:
        before = record.get("data_digests") or {}
        parts = [part for part in now if part != "key" and before.get(part) != now[part]] or ["not recorded"]
        return f"stale: data ({', '.join(parts)}) changed since the record was written"
    return None

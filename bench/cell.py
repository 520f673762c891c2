"""What a cell is: (method, dataset, setting, label ratio or few-shot, seed), its name and record path; its
plan (method class, arguments, schedule and the cell config its record is keyed by); and the state of its
record (done, stale, failed, todo). No torch: the CLI's ``--dry-run`` and the sweep plan with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.config import cell_config, config_hash, method_class, method_config
from bench.data.base import SETTINGS, check_label_ratio
from bench.io import read_json


@dataclass(frozen=True)
class Cell:
    """One point of a sweep; ``label_ratio`` is set for the partial setting only."""

    method: str
    dataset: str
    setting: str
    label_ratio: float | None
    seed: int

    def __post_init__(self):
        if self.setting not in SETTINGS:
            raise ValueError(f"unknown setting {self.setting!r}; valid: {SETTINGS}")
        if self.setting == "partial":
            check_label_ratio(self.label_ratio)

    @property
    def name(self) -> str:
        """``<method>__<setting>[_r<ratio>]__s<seed>``: the record's file stem."""
        ratio = f"_r{self.label_ratio:g}" if self.label_ratio is not None else ""
        return f"{self.method}__{self.setting}{ratio}__s{self.seed}"

    def record_path(self, work_dir: Path) -> Path:
        """Where the cell's record goes in a run folder."""
        return Path(work_dir) / "records" / self.dataset / f"{self.name}.json"


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
        raise ValueError(f"method {cell.method} does not support the {cell.setting!r} setting "
                         f"(supports: {', '.join(method_cls.settings)})")
    kwargs, train, backbone_overrides = method_config(cfg, cell.method, method_cls, cell.setting)
    method_type = method_cls.name or cell.method  # a variant's base method (e.g. t2ipal for an ablation row)
    return CellPlan(cell, method_cls, kwargs, train, backbone_overrides,
                    cell_config(cfg, cell.method, method_type, kwargs, train, backbone_overrides))


def record_state(record_path: Path, plan: CellPlan) -> str:
    """"done" (an ok record made with this plan's config: a rerun skips the cell), "stale" (an ok
    record of another config: a rerun recomputes it), "failed" (an error record) or "todo" (none)."""
    if not record_path.is_file():
        return "todo"
    record = read_json(record_path)
    if record.get("status") != "ok":
        return "failed"
    return "done" if record.get("config_hash") == config_hash(plan.config) else "stale"

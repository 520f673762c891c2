"""Which cells a sweep has, and what they read: the methods asked for, the cells of a config's grid (methods x the
settings each supports x label ratios or shot counts x seeds), the cell selections a run folder was given
(``sweeps.json``), and the image features the cells and the diagnostics read from each image set.

Planning only (no training, no encoder): ``bench status`` and ``bench run --slurm`` read it without importing the
training loop; :mod:`bench.grid.sweep` runs the cells it plans.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bench.cell.plan import Cell, plan_cell
from bench.cell.session import Session
from bench.cell.zsl import zsl_skip_reason
from bench.config import method_class
from bench.data.base import SETTINGS, check_label_ratio, check_shots
from bench.errors import UsageError
from bench.io import read_json, write_json
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


SWEEPS_FILE = "sweeps.json"  # in a run folder: the cell selections `bench run` was given there


def selection(cfg, methods: str | list[str] = "all", settings: list[str] | None = None, ratios: list | None = None,
              seeds: list[int] | None = None, shots: list[int] | None = None) -> dict:
    """What a ``bench run`` asks for besides the config, as plain data (:func:`selection_cells` plans its cells):
    the methods (:func:`resolve_methods`), the settings, label ratios and seeds given, else the config's ``sweep``
    ones, and the shot counts given (None: the config's ``sweep.shots``)."""
    sweep = cfg.get("sweep", {}) or {}
    settings = settings if settings is not None else list(sweep.get("settings", ["zero-shot", "partial"]))
    return {"methods": resolve_methods(methods, cfg), "settings": list(settings),
            "ratios": [float(r) for r in ratios or sweep.get("ratios", [0.1, 0.5, 0.9])],
            "seeds": [int(s) for s in seeds or sweep.get("seeds", [1])],
            "shots": [int(k) for k in shots] if shots else None}


def selection_cells(cfg, chosen: dict) -> list[Cell]:
    """The cells of a :func:`selection` under ``cfg``."""
    return plan_cells(chosen["methods"], cfg.dataset.type, chosen["settings"], chosen["ratios"], chosen["seeds"],
                      cfg, shots=chosen.get("shots"))


def remember_selection(work_dir: Path, chosen: dict) -> None:
    """Add a run's :func:`selection` to ``<run>/sweeps.json`` unless it is there already (``bench status`` plans
    the cells of every selection run in a run folder). Nothing is written when nothing changes; a folder that
    cannot be written is left as it is (the selection only serves ``bench status``)."""
    known = remembered_selections(work_dir)
    if chosen in known:
        return
    try:
        write_json(Path(work_dir) / SWEEPS_FILE, known + [chosen])
    except OSError as exc:
        log.debug("not remembering the cell selection in %s: %s", work_dir, exc)


def remembered_selections(work_dir: Path) -> list[dict]:
    """The selections of ``<run>/sweeps.json`` ([] when there is none or it cannot be read)."""
    try:
        chosen = read_json(Path(work_dir) / SWEEPS_FILE)
    except (OSError, ValueError):
        return []
    return [c for c in chosen if isinstance(c, dict) and "methods" in c] if isinstance(chosen, list) else []


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

"""Configs: mmengine python config files shipped in ``configs/`` (installed as ``bench/configs``) or given by path.

A dataset sweep config (``configs/<dataset>.py``) holds, as plain data:
  ``dataset``   the reader: ``dict(type='coco2014', data_root=...)``
  ``backbone``  the CLIP model: ``dict(model='RN50', pretrained='openai')``
  ``features``  image feature protocol: ``mode`` 'cached' (K=``views``) or 'online', batch size, workers
  ``sweep``     the grid: ``settings``, ``ratios``, ``seeds``, ``shots``
  ``<method>``  one dict per method (from ``_base_/methods/<method>.py``), overriding the method's
                constructor defaults; its ``train`` entry overrides the method's default schedule.
Every value can be overridden from the command line with ``--cfg-options key=value`` (mmengine's
``DictAction``), e.g. ``--cfg-options coop.n_ctx=4 sweep.seeds=[1,2]``.
"""

from __future__ import annotations

import copy
from pathlib import Path

from mmengine.config import Config

from bench.errors import ConfigError, UnknownNameError, UsageError
from bench.features.spec import planned_quick_gelu
from bench.io import sha256_json


def _config_dir() -> Path:
    """Where the shipped configs are: ``configs/`` at the top of a checkout (also an editable install), or
    ``bench/configs`` inside an installed wheel (pyproject maps the one onto the other)."""
    package = Path(__file__).resolve().parent
    for folder in (package / "configs", package.parent / "configs"):
        if (folder / "_base_" / "default_runtime.py").is_file():
            return folder
    raise FileNotFoundError(f"no configs folder beside {package} (checkout) or inside it (installed wheel)")


CONFIG_DIR = _config_dir()
ALIASES = {"coco2014": "coco", "voc": "voc2007", "nus-wide": "nuswide", "nus_wide": "nuswide"}
CELL_KEYS = ("dataset", "backbone", "features")  # what besides the method and runtime.amp shapes a cell's result


def config_names() -> list[str]:
    """The shipped dataset configs' names (``toy``, ``coco``, ...)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.py"))


def config_path(name_or_path: str) -> Path:
    """A config file by dataset name ('coco', 'toy') or by path."""
    path = Path(name_or_path).expanduser()
    if path.suffix == ".py":
        if not path.is_file():
            raise UsageError(f"config file not found: {path} (--dataset takes a dataset name or a config .py path)")
        return path
    name = ALIASES.get(name_or_path, name_or_path)
    path = CONFIG_DIR / f"{name}.py"
    if not path.is_file():
        raise UnknownNameError(f"unknown dataset {name_or_path!r}; valid names: {', '.join(config_names())} "
                       "(or a path to your own config .py)")
    return path


def load_config(name_or_path: str, cfg_options: dict | None = None) -> Config:
    """The config, with ``--cfg-options`` merged in (mmengine ``merge_from_dict``)."""
    path = config_path(name_or_path)
    try:
        cfg = Config.fromfile(str(path))
    except Exception as exc:  # mmengine raises many kinds on a malformed file; name the file
        raise ConfigError(f"cannot read config {path}: {type(exc).__name__}: {exc}") from exc
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.config_name = path.stem
    return cfg


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` merged into ``base`` recursively; a dict with ``_delete_=True`` replaces instead
    (mmengine's convention, which mmengine itself applies only between a file and its bases)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and value.get("_delete_"):
            out[key] = {k: copy.deepcopy(v) for k, v in value.items() if k != "_delete_"}
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def to_plain(value):
    """mmengine ConfigDicts and tuples -> plain dicts and lists (for JSON and hashing)."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def method_class(cfg: Config | None, name: str) -> type:
    """The method class for a name: a registered method, or a *variant* -- a config section with a
    ``type`` naming a registered method, e.g. ``t2ipal_no_adapter = dict(type="t2ipal", adapter=None)``
    (how ablation rows are declared: as data)."""
    from bench.registry import METHODS, list_names, lookup

    base = variant_base(cfg, name)
    if base:
        return lookup(METHODS, base)
    if name not in list_names(METHODS):
        variants = variant_names(cfg) if cfg is not None else []
        raise UnknownNameError(f"unknown method {name!r}; valid names: {', '.join(list_names(METHODS) + variants)}")
    return lookup(METHODS, name)


def variant_base(cfg: Config | None, name: str) -> str | None:
    """The method the config section ``name`` is a variant of (its ``type``, another name), else None."""
    section = cfg.get(name) if cfg is not None else None
    if isinstance(section, dict) and isinstance(section.get("type"), str) and section["type"] != name:
        return section["type"]
    return None


def variant_names(cfg: Config) -> list[str]:
    """Config sections that declare a method variant (a dict whose ``type`` is another name)."""
    return sorted(k for k in cfg if k != "dataset" and not k.startswith("_") and variant_base(cfg, k))


def method_config(cfg: Config, name: str, method_cls, setting: str | None = None) -> tuple[dict, dict, dict]:
    """(constructor kwargs, train schedule, backbone overrides) of a method: class defaults < config.

    ``train.per_setting.<setting>`` overrides the schedule for one setting (e.g. CoOp's 16-shot
    runs train for 200 epochs: ``coop.train.per_setting.fewshot.epochs=200``), and the section's own
    ``per_setting.<setting>`` overrides constructor arguments (and ``train``) for one setting (e.g.
    DualCoOp's zero-shot protocol: ``dualcoop.per_setting.zsl.csc=False``).

    All methods share the dataset's ``backbone`` unless their section sets ``backbone`` (e.g. the
    DualCoOp reference's RN101 at 448 px); every record states the backbone it used.
    """
    section = to_plain(cfg.get(name, {}) or {})
    section.pop("type", None)
    base = variant_base(cfg, name)
    if base:  # a variant starts from its base method's section
        section = deep_merge(to_plain(cfg.get(base, {}) or {}), section)
        section.pop("type", None)
    section = deep_merge(section, (section.pop("per_setting", {}) or {}).get(setting, {}) or {})
    train = deep_merge(to_plain(method_cls.default_train), section.pop("train", {}) or {})
    per_setting = train.pop("per_setting", {}) or {}
    train = deep_merge(train, per_setting.get(setting, {}) or {})
    backbone = section.pop("backbone", {}) or {}
    section.pop("features", None)  # the image protocol: method_features
    section.pop("protocol", None)  # "shared" or "reference": method_protocol
    return section, train, backbone


def method_features(cfg: Config, name: str) -> dict:
    """The image protocol of a method: the config's ``features`` with the method section's own
    ``features`` merged in (a variant's over its base method's), e.g. DualCoOp's reference protocol
    ``dualcoop_ref = dict(type="dualcoop", features=dict(mode="online", augment=dict(crop="squash", ...)))``."""
    features = to_plain(cfg.get("features", {}) or {})
    base = variant_base(cfg, name)
    for section in ([base] if base else []) + [name]:
        own = to_plain(cfg.get(section, {}) or {}).get("features") or {}
        if own.get("augment") is not None:  # an augment dict replaces the shared one: its keys are one transform
            features.pop("augment", None)
        features = deep_merge(features, own)
    return features


def method_protocol(cfg: Config, name: str) -> str:
    """"reference" when the method's section reproduces its reference's own backbone, transforms and
    protocol (e.g. ``dualcoop_ref``), else "shared" (the dataset's backbone and features: the comparison)."""
    base = variant_base(cfg, name)
    for section in [name] + ([base] if base else []):  # a variant's own entry first
        protocol = (to_plain(cfg.get(section, {}) or {})).get("protocol")
        if protocol:
            return protocol
    return "shared"


def cell_config(cfg: Config, method: str, method_type: str, method_kwargs: dict, train: dict, backbone: dict) -> dict:
    """Everything that determines one cell's numbers, as plain data (hashed into the record)."""
    out = {key: to_plain(cfg.get(key)) for key in CELL_KEYS}
    out["backbone"] = {**(out["backbone"] or {}), **backbone}
    if "quick_gelu" not in out["backbone"] and planned_quick_gelu(out["backbone"]):
        out["backbone"]["quick_gelu"] = True  # OpenAI weights: records made before bench built QuickGELU are stale
    out["features"] = method_features(cfg, method)
    if method_protocol(cfg, method) != "shared":  # (shared rows keep the hash their records were written with)
        out["protocol"] = method_protocol(cfg, method)
    runtime = cfg.get("runtime", {}) or {}
    out["amp"] = runtime.get("amp")  # cache dir, logging: no effect on numbers
    out["eval_split"] = runtime.get("eval_split", "test")
    out["method"] = {"name": method, "type": method_type, "kwargs": method_kwargs, "train": train}
    return out


def config_hash(cell_cfg: dict) -> str:
    """The first 16 hex digits of the cell config's :func:`bench.io.sha256_json`: a record's key."""
    return sha256_json(cell_cfg)[:16]

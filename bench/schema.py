"""Every config key and value checked against what the code accepts, at every depth.

The schema is read from the code, not written twice:
  ``dataset``            the reader's constructor (``DATASETS[type].__init__``): names, annotations
  ``backbone``           the fields of :class:`bench.features.spec.BackboneSpec`
  ``features``, ``sweep``, ``runtime``, ``diagnostics``, ``slurm``
                         the keys of ``_base_/default_runtime.py`` (the documented defaults), typed by
                         their default values; ``features.augment`` by :func:`bench.features.augment.augmentation`;
                         a Slurm job's resources by ``SLURM_JOB`` where the default (None) says no type
  ``<method>``           the method's constructor over its class hierarchy (as ``Method.hparams``), plus
                         ``train`` (``Method.default_train``'s keys; ``train.optimizer`` by the torch
                         optimizer's own signature), ``backbone``, ``features``, ``protocol``, ``type``,
                         ``per_setting.<setting>`` (a method section of its own, checked likewise)
A bad key names its path and the valid keys; a bad value names its path, the value and the type.
"""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path

from bench.config import to_plain
from bench.errors import ConfigError

TOP_LEVEL = ("dataset", "backbone", "features", "sweep", "runtime", "fusions", "diagnostics", "slurm", "config_name")
METHOD_EXTRAS = {"train": dict, "backbone": dict, "features": dict, "protocol": str, "type": str, "per_setting": dict}
TRAIN_EXTRAS = {"per_setting": dict, "paramwise_cfg": dict, "clip_grad": dict, "num_workers": int,
                "steps_per_epoch": int}  # an epoch's first N batches only (benchmarks/bench_scale.py)
SWEEP_EXTRAS = {"variants": list,  # declared by dataset configs (toy.py), not by the defaults
                "shots": (int, list),  # one K or a list of them (bench.grid.selection.as_shot_list)
                "method_settings": dict}  # {method: [settings]}: open keys (method names)
# the resources of one Slurm job (bench.grid.slurm.JOB_KEYS) where the defaults (None) say no type
SLURM_JOB = {"partition": (str, type(None)), "account": (str, type(None)), "qos": (str, type(None)), "time": int,
             "mem": (str, type(None)), "cpus_per_task": (int, type(None)), "gpus_per_task": (int, type(None)),
             "setup": list, "additional_parameters": dict}
SLURM_EXTRAS = {**SLURM_JOB, "array_parallelism": (int, type(None)), "logs": (str, type(None)),
                "prepare": {**SLURM_JOB, "nodes": int, "tasks_per_node": int}, "finish": SLURM_JOB}
PROTOCOLS = ("shared", "reference")
# values with a fixed set of choices (a default of None says no type): key path (or its tail) -> choices
CHOICES = {"features.mode": ("cached", "online"), "runtime.amp": (None, "fp16", "bf16"), "protocol": PROTOCOLS,
           "runtime.cache_dir": "path", "backbone.resize_mode": (None, "shortest", "longest", "squash"),
           "backbone.interpolation": (None, "bicubic", "bilinear", "nearest"),
           "augment.crop": ("random_resized", "squash"), "slurm.cluster": ("slurm", "local")}


def _fail_key(path: str, key: str, valid) -> None:
    where = f"{path}.{key}" if path else key
    raise ConfigError(f"unknown config key {where!r}; valid keys{' of ' + path if path else ''}: "
                      f"{', '.join(sorted(valid))}")


def _type_name(expected) -> str:
    if isinstance(expected, tuple):
        return " or ".join(_type_name(t) for t in expected)
    return "None" if expected is type(None) else getattr(expected, "__name__", str(expected))


def _accepts(expected, value) -> bool:
    if expected is None:  # no type known
        return True
    if isinstance(expected, tuple):
        return any(_accepts(t, value) for t in expected)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, expected)


def check_value(path: str, value, expected) -> None:
    """A ConfigError naming ``path``, ``value`` and the expected type when ``value`` is not of it."""
    if not _accepts(expected, value):
        raise ConfigError(f"config value {path}={value!r} ({type(value).__name__}): expected {_type_name(expected)}")


def _plain_type(annotation) -> type | tuple | None:
    """An annotation as isinstance-able type(s); None when it says nothing checkable (Any, a bare name)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [_plain_type(a) for a in typing.get_args(annotation)]
        if any(p is None for p in parts):
            return None
        flat = []
        for p in parts:
            flat += list(p) if isinstance(p, tuple) else [p]
        return tuple(flat)
    if origin is not None:
        return origin if isinstance(origin, type) else None
    return annotation if isinstance(annotation, type) else None


def signature_schema(*functions) -> dict[str, type | tuple | None]:
    """Parameter name -> expected type from annotations (else the default's type; None: unknown)."""
    out = {}
    for fn in functions:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # an annotation that does not resolve: fall back to defaults
            hints = {}
        for name, param in inspect.signature(fn).parameters.items():
            if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if name in hints:
                out[name] = _plain_type(hints[name])
            elif param.default is not inspect.Parameter.empty and param.default is not None:
                out[name] = float if type(param.default) is float else type(param.default)
            else:
                out[name] = None
    return out


def defaults_schema(defaults: dict) -> dict:
    """Key -> expected type from a dict of default values (nested dicts stay dicts of their own schema)."""
    out = {}
    for key, value in defaults.items():
        if isinstance(value, dict):
            out[key] = defaults_schema(value)
        elif value is None:
            out[key] = None
        else:
            out[key] = (list, tuple) if isinstance(value, (list, tuple)) else (float if type(value) is float
                                                                                else type(value))
    return out


def check_dict(path: str, section, schema: dict, open_keys: bool = False) -> None:
    """Every key of ``section`` in ``schema`` (unless ``open_keys``) and every value of its type;
    nested schema dicts are checked recursively."""
    check_value(path, section, dict)
    for key, value in section.items():
        if key not in schema:
            if open_keys:
                continue
            _fail_key(path, key, schema)
        expected = schema[key]
        where = f"{path}.{key}"
        choices = next((c for k, c in CHOICES.items() if where == k or where.endswith("." + k)), None)
        if choices == "path":
            check_value(f"{path}.{key}", value, (str, type(None)))
        elif choices is not None and value not in choices:
            raise ConfigError(f"config value {path}.{key}={value!r}: expected one of {choices}")
        if isinstance(expected, dict):
            if value is not None:
                check_dict(f"{path}.{key}", value, expected)
        else:
            check_value(f"{path}.{key}", value, expected)


def runtime_defaults() -> dict:
    from mmengine.config import Config

    from bench.config import CONFIG_DIR

    return to_plain(Config.fromfile(str(Path(CONFIG_DIR) / "_base_" / "default_runtime.py")).to_dict())


def features_schema() -> dict:
    from bench.features.augment import augmentation

    schema = defaults_schema(runtime_defaults()["features"])
    schema["augment"] = {k: v for k, v in signature_schema(augmentation).items() if k != "backbone"}
    return schema


def method_schema(cls) -> dict:
    """Constructor parameters over the class hierarchy, plus the runner-owned entries."""
    from bench.method import Method

    schema = signature_schema(*[c.__init__ for c in reversed(cls.__mro__) if "__init__" in vars(c)
                                and issubclass(c, Method)])
    schema.update(METHOD_EXTRAS)
    return schema


def train_schema(cls, train: dict) -> dict:
    schema = defaults_schema(to_plain(cls.default_train))
    schema.update(TRAIN_EXTRAS)
    schema["optimizer"] = optimizer_schema((train.get("optimizer") or {}).get("type")
                                           or cls.default_train.get("optimizer", {}).get("type", "SGD"))
    return schema


def optimizer_schema(name: str) -> dict:
    import torch

    optimizer = getattr(torch.optim, str(name), None)
    if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
        valid = sorted(n for n, o in vars(torch.optim).items() if isinstance(o, type)
                       and issubclass(o, torch.optim.Optimizer) and o is not torch.optim.Optimizer)
        raise ConfigError(f"unknown optimizer type {name!r}; valid: {', '.join(valid)}")
    schema = {k: None for k in signature_schema(optimizer.__init__) if k != "params"}  # torch's own checks
    schema["type"] = str
    return schema


def check_train(path: str, train: dict, cls) -> None:
    from bench.data.base import SETTINGS

    check_value(path, train, dict)
    check_dict(path, train, train_schema(cls, train))
    for setting, override in (train.get("per_setting") or {}).items():
        if setting not in SETTINGS:
            _fail_key(f"{path}.per_setting", setting, SETTINGS)
        check_train(f"{path}.per_setting.{setting}", override or {}, cls)


def check_method_section(name: str, section: dict, cls) -> None:
    from bench.data.base import SETTINGS
    from bench.features.spec import BackboneSpec

    check_dict(name, section, method_schema(cls))
    if "train" in section:
        check_train(f"{name}.train", section["train"] or {}, cls)
    if section.get("backbone"):
        check_dict(f"{name}.backbone", section["backbone"], signature_schema(BackboneSpec))
    if section.get("features"):
        check_dict(f"{name}.features", section["features"], features_schema())
    for setting, override in (section.get("per_setting") or {}).items():  # bench.config.method_config
        if setting not in SETTINGS:
            _fail_key(f"{name}.per_setting", setting, SETTINGS)
        check_method_section(f"{name}.per_setting.{setting}", override or {}, cls)


def check_slurm_section(slurm: dict, defaults: dict) -> None:
    """``slurm``: the defaults' keys and types, the job resources typed where a default is None; the keys of
    ``additional_parameters`` are sbatch's (any), its values strings, numbers or booleans."""
    check_dict("slurm", slurm, {**defaults, **SLURM_EXTRAS})
    for where, section in (("slurm", slurm), ("slurm.prepare", slurm.get("prepare") or {}),
                           ("slurm.finish", slurm.get("finish") or {})):
        for key, value in (section.get("additional_parameters") or {}).items():
            check_value(f"{where}.additional_parameters.{key}", value, (str, int, bool))
        for i, line in enumerate(section.get("setup") or []):
            check_value(f"{where}.setup[{i}]", line, str)


def check_config(cfg) -> None:
    """Check every section of a sweep config (see the module docstring); ConfigError on the first problem."""
    from bench.features.spec import BackboneSpec
    from bench.registry import DATASETS, METHODS, list_names, lookup

    plain = to_plain({k: v for k, v in cfg.items()})
    source = getattr(cfg, "filename", None) or "the config"  # the file the user wrote, for the sections it lacks
    if not isinstance(plain.get("dataset"), dict):
        raise ConfigError(f"config {source} has no dataset section; add dataset = dict(type=..., data_root=...) "
                          f"(valid types: {', '.join(list_names(DATASETS))})")
    methods = set(list_names(METHODS))
    variants = {k for k, v in plain.items() if isinstance(v, dict) and isinstance(v.get("type"), str)
                and k not in TOP_LEVEL and v["type"] in methods}
    for key in plain:
        if key not in TOP_LEVEL and key not in methods and key not in variants:
            _fail_key("", key, [*TOP_LEVEL[:-1], *sorted(methods), *sorted(variants)])
    dataset = plain["dataset"]
    if "type" not in dataset:
        raise ConfigError(f"the dataset section of config {source} needs a type; valid: "
                          f"{', '.join(list_names(DATASETS))}")
    reader = lookup(DATASETS, dataset["type"])
    check_dict("dataset", dataset, {**signature_schema(reader.__init__), "type": str})
    check_dict("backbone", plain.get("backbone") or {}, signature_schema(BackboneSpec))
    defaults = defaults_schema(runtime_defaults())
    check_dict("features", plain.get("features") or {}, features_schema())
    check_dict("sweep", plain.get("sweep") or {}, {**defaults["sweep"], **SWEEP_EXTRAS})
    check_dict("runtime", plain.get("runtime") or {}, {**defaults["runtime"], "jobs": (int, str)})  # or "auto"
    check_dict("diagnostics", plain.get("diagnostics") or {}, defaults["diagnostics"])
    check_slurm_section(plain.get("slurm") or {}, defaults["slurm"])
    for name in sorted((methods | variants) & set(plain)):
        section = plain[name]
        check_value(name, section, dict)
        cls = lookup(METHODS, section["type"] if name in variants else name)
        check_method_section(name, section, cls)

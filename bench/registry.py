"""Every registry of bench, declared in one place (as mmengine's ``registry/root.py`` does).

Built-in entries register themselves when their module is imported; :func:`load_plugins`
imports the built-in ``bench.methods`` package and every external plug-in named in the
``bench.methods`` entry-point group.
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from importlib.metadata import entry_points

from mmengine.registry import Registry

from bench.errors import PluginError, UnknownNameError, UsageError

METHODS = Registry("method")  # PEFT methods: zsclip, coop, dualcoop, taidpt, t2ipal, plug-ins
DATASETS = Registry("dataset")  # dataset readers: coco2014, voc2007, nuswide, toy
GENERATORS = Registry("generator")  # text-to-image generators: diffusers pipelines, the toy renderer

ENTRY_POINT_GROUP = "bench.methods"
_BUILTIN_MODULES = ("bench.methods", "bench.data", "bench.generation")
_plugins_loaded = False


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_names(registry: Registry, pattern: str = "*") -> list[str]:
    """Registered names matching a shell pattern (``'dual*'``), naturally sorted (timm ``list_models``)."""
    load_plugins()
    return sorted((n for n in registry.module_dict if fnmatch.fnmatch(n, pattern)), key=_natural_key)


def lookup(registry: Registry, name: str) -> type:
    """The class registered under ``name``; a KeyError naming the valid names otherwise."""
    load_plugins()
    cls = registry.get(name)
    if cls is None:
        raise UnknownNameError(f"unknown {registry.name} {name!r}; valid names: {', '.join(list_names(registry))}")
    return cls


def build(registry: Registry, cfg: dict, **extra):
    """Build ``cfg['type']`` with the remaining keys as keyword arguments (mmengine ``build_from_cfg``)."""
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise TypeError(f"a {registry.name} config must be a dict with a 'type' key, got {cfg!r}")
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    kwargs.update(extra)
    return construct(lookup(registry, cfg["type"]), kwargs, f"{registry.name} {cfg['type']!r}")


def construct(cls: type, kwargs: dict, what: str):
    """``cls(**kwargs)``, turning a wrong keyword into a ValueError that names the config entry."""
    import inspect

    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        raise UsageError(f"bad arguments for {what}: {exc}; check its config section") from None
    return cls(**kwargs)


def load_plugins(force: bool = False) -> None:
    """Import the built-in modules, then every ``bench.methods`` entry point.

    A plug-in whose name is already taken by another class is an error naming both places,
    as mmengine does for duplicate registrations.
    """
    global _plugins_loaded
    if _plugins_loaded and not force:
        return
    _plugins_loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plug-in must not hide which one broke
            raise PluginError(f"plug-in {ep.name!r} ({ep.value}) failed to import: {exc}") from exc
        register_plugin(ep.name, cls, source=ep.value)


def register_plugin(name: str, cls: type, source: str = "") -> None:
    """Register an external method class under ``name``; clashes are errors."""
    existing = METHODS.get(name) if name in METHODS.module_dict else None
    if existing is not None and existing is not cls:
        raise PluginError(
            f"plug-in method {name!r} from {source or cls.__module__} clashes with the method already "
            f"registered from {existing.__module__}.{existing.__qualname__}; rename the entry point"
        )
    if existing is None:
        METHODS.register_module(name=name, module=cls)

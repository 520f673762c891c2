"""``bench list``: methods (built-in and plug-ins), datasets, generators, configs."""

from __future__ import annotations


def cmd_list(args) -> int:
    from bench.config import CONFIG_DIR, config_names
    from bench.registry import DATASETS, GENERATORS, METHODS, list_names, lookup

    groups = {"methods": METHODS, "datasets": DATASETS, "generators": GENERATORS}
    import fnmatch

    for what, registry in groups.items():
        if args.what not in ("all", what):
            continue
        print(f"{what}:")
        for name in list_names(registry, args.pattern):
            cls = lookup(registry, name)
            origin = "built-in" if cls.__module__.split(".")[0] == "bench" else f"plug-in {cls.__module__}"
            extra = ""
            if what == "methods":
                zsl = "yes" if "zsl" in cls.settings and cls.supports_unseen else "no"
                extra = (f"  trains on: {cls.trains_on or 'nothing (zero-shot)'}  settings: {', '.join(cls.settings)}"
                         f"  unseen classes (zsl): {zsl} ({cls.unseen_note})")
            print(f"  {name:<12} {origin}{extra}")
    if args.what in ("all", "configs"):
        print(f"configs: (in {CONFIG_DIR}; --dataset NAME, or --dataset path/to/your_config.py)")
        for name in config_names():
            if fnmatch.fnmatch(name, args.pattern):
                print(f"  {name:<12} {CONFIG_DIR / (name + '.py')}")
    return 0

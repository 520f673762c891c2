"""Built-in methods, one file each. Importing this package registers them in bench.registry.METHODS."""

from methods import coop, dualcoop, linear_probe, t2ipal, taidpt, tip_adapter, zsclip  # noqa: F401

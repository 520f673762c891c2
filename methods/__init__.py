"""Built-in methods, one file each. Importing this package registers them in bench.registry.METHODS."""

from methods import zsclip  # noqa: F401

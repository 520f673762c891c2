"""Built-in methods, one file each. Importing this package registers them in bench.registry.METHODS."""

from methods import clip_adapter, clip_lora, cocoop, coop, dualcoop, t2ipal, taidpt, zsclip  # noqa: F401

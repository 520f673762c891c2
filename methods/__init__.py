"""Built-in methods, one file each. Importing this package registers them in bench.registry.METHODS."""

from methods import (  # noqa: F401
    clip_adapter,
    clip_lora,
    cocoop,
    coop,
    dualcoop,
    linear_probe,
    t2ipal,
    taidpt,
    tip_adapter,
    zsclip,
)

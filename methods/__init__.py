"""Built-in methods, one file each, installed as ``bench.methods`` (the repository's top-level ``methods/``).
Importing this package registers them in ``bench.registry.METHODS``; ``_parts/`` holds what several share
(prompt learner, losses, adapters, LoRA, prompt names).

May import: the contracts (``bench.method``, ``bench.registry``), ``bench.features``, ``bench.data`` and
``bench.analysis``. Never the run layer (``bench.cell``, ``bench.grid``), the report or the CLI.
"""

from bench.methods import (  # noqa: F401
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

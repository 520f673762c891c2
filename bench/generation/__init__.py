"""Text-to-image generation: the registered generators (diffusers pipelines, the toy renderer) and the
resumable on-disk image cache they write to (:mod:`bench.generation.generators`). Importing this package
registers the generators in ``bench.registry.GENERATORS``.

What a cell generates (its captions, seeds and image paths) is planned by the run layer
(:func:`bench.cell.generated.generation_plan`). May import: the contracts, ``bench.data`` and
``bench.toy``. Never the run layer, the methods, the report or the CLI.
"""

from bench.generation import generators  # noqa: F401

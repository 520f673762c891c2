"""The sweep: many cells, and the cells derived from finished ones.

``sweep``        the grid of cells from a config, resume and sharding, feature planning, running in order
``preflight``    before any work: every weight, pipeline, corpus, word list and split file the cells need
``jobs``         several cells at once in worker processes (``--jobs``), prepare tasks first
``fusion``       derived cells: score fusion of two finished cells (TaI-DPT + DualCoOp)
``diagnostics``  derived records: modality and domain gaps, near-duplicates of test images

May import: the run layer (``bench.cell``) and everything below it. Never the report or the CLI.
"""

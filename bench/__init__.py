"""bench: a benchmark harness for parameter-efficient fine-tuning of CLIP for multi-label recognition.

The folders follow the data flow (README, "Development"; DESIGN.md "Layers"):

  contracts (this folder)  what a plug-in relies on: ``method`` (Method), ``registry`` (every registry),
                           ``config`` and ``schema`` (configs as data, checked), ``records`` (result records
                           and scores), ``io``, ``locking``, ``provenance``, ``testing`` (toy parts for tests)
  data/                    dataset readers -> image paths, labels in {1, 0, -1}, captions; caption parser
  features/                the frozen CLIP backbone and its verified on-disk feature cache
  generation/              text-to-image generators and their on-disk image cache
  analysis/                metrics and statistics on score matrices (pure numpy)
  cell/                    one cell's life: its plan and record state, the run's session, training sets,
                           training loop, validation, zsl, the runner that writes its record
  grid/                    the sweep of cells: planning, worker pools, sharding, and the derived cells
                           (score fusion, diagnostics)
  report/                  records -> tables, plots and pages
  cli/                     the ``bench`` command
  toy/                     the embedded toy world
  methods/                 one file per method (the repository's top-level ``methods/``)

Imports go one way: cli -> grid -> cell -> (features, generation, data, analysis, methods) -> contracts;
report reads records only. tests/test_imports.py holds these rules and the absence of import cycles.
"""

__version__ = "0.1.0"

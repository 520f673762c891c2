"""The sweep: many cells, and the cells derived from finished ones.

``selection``    which cells a sweep has (methods x settings x points x seeds) and what features they read; the
                 cell selections a run folder was given (planning only: no training loop imported)
``sweep``        running the cells: sharding, the distributed prepare phase, cells in order with resume
``preflight``    before any work: every weight, pipeline, corpus, word list and split file the cells need
``jobs``         several cells at once in worker processes (``--jobs``), prepare tasks first
``fusion``       derived cells: score fusion of two finished cells (TaI-DPT + DualCoOp)
``diagnostics``  derived records: modality and domain gaps, near-duplicates of test images
``slurm``        the sweep submitted through submitit (``bench run --slurm``): prepare job, shard array, finishing
                 job; ``slurm_jobs``: the functions those jobs run
``status``       how far a run has come (``bench status``): cell states, feature entries, generated images

May import: the run layer (``bench.cell``) and everything below it. Never the report or the CLI.
"""

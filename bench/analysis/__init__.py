"""Numbers computed from score matrices and feature sets, pure numpy/scipy (no torch, no records):

``metrics``    mAP, per-class AP, CF1/OF1, top-k F1 (checked against scikit-learn)
``mmmetric``   the same metrics as an mmengine metric (imports mmengine; kept apart so the report does not)
``stats``      bootstrap over seeds and test images, paired differences, Pareto fronts
``gaps``       Fréchet distance, modality gap, near-duplicate search

May import: nothing of bench but this package. Everything may import it.
"""

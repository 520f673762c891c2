"""One cell's life: (method, dataset, setting, ratio or K, seed) from plan to record.

``plan``        the cell, its config and the state of its record (done / stale / failed)
``session``     what the cells of one run share: config, dataset splits, backbone, feature cache, data keys
``datakey``     the digest of the data a cell reads (records are keyed by it and the config hash)
``trainsets``   training sets from the cache: labelled images (partial, few-shot), captions
``generated``   T2I-PAL's set: images generated from captions, captions, real images; its generation plan
``online``      the online image protocol (images re-encoded with augmentation every step)
``zsl``         seen/unseen classes: training views and the ZSL / GZSL evaluation
``fitdata``     labelled features and validation splits for methods that fit from features
``validation``  values tuned on validation images (never test)
``train``       the training loop (mmengine Runner) and prediction
``checkpoints`` epoch checkpoints as plain data: written atomically, read with ``weights_only=True``
``runner``      plan -> prepare -> train -> evaluate -> the record, under the cell's lock; a run-time failure
                becomes the cell's failed record

May import: the contracts, features, generation, data, analysis, toy. Never the grid, the methods (a
method is built through the registry), the report or the CLI.
"""

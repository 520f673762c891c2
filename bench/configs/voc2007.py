# Sweep over voc2007: every built-in method with its reference hyperparameters (see _base_/methods).
_base_ = ["_base_/default_runtime.py", "_base_/datasets/voc2007.py", "_base_/methods/zsclip.py"]

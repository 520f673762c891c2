# Sweep over nuswide: every built-in method with its reference hyperparameters (see _base_/methods).
_base_ = ["_base_/default_runtime.py", "_base_/datasets/nuswide.py", "_base_/methods/zsclip.py"]

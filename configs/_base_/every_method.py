# Every built-in method's reference section (one file per method in _base_/methods/), for the dataset
# configs to inherit in one line instead of repeating the list.
_base_ = [
    "methods/zsclip.py",
    "methods/taidpt.py",
    "methods/coop.py",
    "methods/dualcoop.py",
    "methods/t2ipal.py",
    "methods/tip_adapter.py",
    "methods/linear_probe.py",
    "methods/cocoop.py",
    "methods/clip_adapter.py",
    "methods/clip_lora.py",
]

# Sweep over voc2007: every built-in method with its reference hyperparameters (see _base_/methods).
_base_ = [
    "_base_/default_runtime.py",
    "_base_/datasets/voc2007.py",
    "_base_/methods/zsclip.py",
    "_base_/methods/taidpt.py",
    "_base_/methods/coop.py",
    "_base_/methods/dualcoop.py",
    "_base_/methods/t2ipal.py",
    "_base_/methods/tip_adapter.py",
    "_base_/methods/linear_probe.py",
]
# DualCoOp on VOC2007: lr 0.001 (DualCoOp README, "0.001 for VOC2007"); loss_w 0.03 as the base file (reported to
# reproduce VOC at 50% labels, sunxm2357/DualCoOp issue #7). CoOp keeps its base values (one schedule for all).
dualcoop = dict(train=dict(optimizer=dict(lr=1e-3)))

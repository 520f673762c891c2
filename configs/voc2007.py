# Sweep over voc2007: every built-in method with its reference hyperparameters (see _base_/methods).
_base_ = [
    "_base_/default_runtime.py",
    "_base_/datasets/voc2007.py",
    "_base_/every_method.py",
]
# DualCoOp on VOC2007: lr 0.001 (DualCoOp README, "0.001 for VOC2007"); loss_w 0.03 as the base file (reported to
# reproduce VOC at 50% labels, sunxm2357/DualCoOp issue #7). CoOp keeps its base values (one schedule for all).
dualcoop = dict(train=dict(optimizer=dict(lr=1e-3)))
# CLIP-LoRA on VOC2007: about the reference's 256k training samples (8,000 iterations x 32) over the 5,011 trainval
# images = 50 epochs (the base file's 3 epochs are COCO's).
clip_lora = dict(train=dict(epochs=50, per_setting=dict(fewshot=dict(epochs=800))))  # 16-shot: 256k / (16 x 20)

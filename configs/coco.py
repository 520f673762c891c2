# Sweep over coco: every built-in method with its reference hyperparameters (see _base_/methods).
_base_ = [
    "_base_/default_runtime.py",
    "_base_/datasets/coco.py",
    "_base_/every_method.py",
]
# TaI-DPT: the reference's COCO values are the base file's (rn50_coco2014.yaml); prompts use the COCO names
# ("motorcycle", "airplane") unless taidpt.prompt_names="coco" (TaI-DPT's first synonyms "motor bike", "aeroplane").
taidpt_ref = dict(type="taidpt", protocol="reference", prompt_names="coco")  # TaI-DPT's own COCO prompt names
# CoOp / DualCoOp on COCO: the base files are the reference's COCO values (lr 0.002; DualCoOp loss_w 0.03,
# the README's example for -pp 0.5).
# CoCoOp, CLIP-Adapter, CLIP-LoRA: the base files' values (CLIP-LoRA's 3 epochs are COCO's share of the reference's
# 8,000 x 32 training samples). CoCoOp at batch 1 runs the text tower 80 times per image: see methods/cocoop.py.

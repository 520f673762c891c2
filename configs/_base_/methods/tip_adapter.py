# Tip-Adapter and Tip-Adapter-F (methods.md sec. 5b; methods/tip_adapter.py explains the multi-label choices).
# Reference: gaopengcuhk/Tip-Adapter @d0e2d6f main.py, utils.py, configs/imagenet.yaml (the general-object
# dataset; oxford_pets.yaml and ucf101.yaml share its grid). alpha/beta are searched on a validation set, never
# on test (bench/cell/fitdata.py); the runner does no gradient training (train.epochs 0), Tip-Adapter-F's fine-tuning
# runs inside the method with the reference's own schedule.
tip_adapter = dict(
    templates="a photo of a {}.",  # utils.py:18-35 clip_classifier; datasets/caltech101.py:7 template
    clip_scale=100.0,  # main.py:32 clip_logits = 100. * features @ clip_weights
    init_alpha=1.17,  # configs/imagenet.yaml:21 init_alpha
    init_beta=1.0,  # configs/imagenet.yaml:20 init_beta
    search=True,  # configs/imagenet.yaml:14 search_hp
    search_scale=[7.0, 3.0],  # configs/imagenet.yaml:17 search_scale (beta, alpha); grid utils.py:103-104
    search_step=[200, 20],  # configs/imagenet.yaml:18 search_step (beta, alpha)
)
tip_adapter_f = dict(
    tip_adapter,
    epochs=20,  # configs/imagenet.yaml:31 train_epoch
    batch_size=256,  # main.py:181 train_loader_F batch_size=256, shuffle=True
    lr=1e-3,  # configs/imagenet.yaml:29 lr
    eps=1e-4,  # main.py:72 AdamW(..., eps=1e-4)
    weight_decay=0.01,  # main.py:72 sets none: torch AdamW's default 0.01
    # multi-label loss instead of main.py:96 cross-entropy: bench's CoOp ranking loss (TaI-DPT trainers/utils.py:85-93)
    ranking_margin=1.0,
)

# CLIP-Adapter as a multi-label baseline (methods.md sec. 5b; methods/clip_adapter.py).
# Reference: gaopengcuhk/CLIP-Adapter clip_adapter.py (the repository's only code file; its README runs it with
# CoOp's commands, so the schedule is CoOp's configs/trainers/CoOp/rn50_ep50.yaml). Loss: bench's CoOp default
# (ranking loss on 4 * cos); the reference is single-label cross-entropy (clip_adapter.py:158).
clip_adapter = dict(
    alpha=0.2,  # clip_adapter.py:104 ratio = 0.2 (residual ratio)
    reduction=4,  # clip_adapter.py:56, 97 Adapter(1024, 4): bottleneck D/4
    templates="a photo of a {}.",  # clip_adapter.py:18-34 CUSTOM_TEMPLATES (ImageNet and most datasets)
    logit_scale=4.0,  # as bench's CoOp; reference: CLIP's exp(logit_scale) (clip_adapter.py:112)
    ranking_margin=1.0,  # TaI-DPT trainers/Caption_distill_double.py:474
    train=dict(
        epochs=50,  # CoOp rn50_ep50.yaml OPTIM.MAX_EPOCH
        batch_size=32,  # rn50_ep50.yaml DATALOADER.TRAIN_X.BATCH_SIZE
        optimizer=dict(type="SGD", lr=2e-3,  # rn50_ep50.yaml OPTIM.NAME / LR
                       momentum=0.9, weight_decay=5e-4),  # Dassl config/defaults.py:152-153
        scheduler="cosine",  # rn50_ep50.yaml OPTIM.LR_SCHEDULER
        warmup_epochs=1,  # rn50_ep50.yaml OPTIM.WARMUP_EPOCH (constant)
        warmup_lr=1e-5,  # rn50_ep50.yaml OPTIM.WARMUP_CONS_LR
    ),
)

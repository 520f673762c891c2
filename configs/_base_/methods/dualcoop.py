# DualCoOp (methods.md sec. 3; methods/dualcoop.py). Reference: sunxm2357/DualCoOp, partial-label setup of the
# README (train.py --config_file configs/models/rn101_ep50.yaml --input_size 448 --csc), opts.py, utils/build_cfg.py.
#
# Backbone: not set here, so DualCoOp shares the dataset's backbone with every other method and the sweep's
# columns compare. The reference's own protocol (RN101 at 448 px, squash resize, online Cutout + RandAugment) is the
# `dualcoop_ref` variant at the end of this file: `bench run --methods dualcoop_ref`.
dualcoop = dict(
    n_ctx_pos=16,  # utils/build_cfg.py:22 TRAINER.COOP_MLC.N_CTX_POS (zero-shot runs use 64)
    n_ctx_neg=16,  # utils/build_cfg.py:23 TRAINER.COOP_MLC.N_CTX_NEG
    csc=True,  # README partial-label command --csc (build_cfg.py:24 default False; README: generic for tiny pp)
    ctx_init_pos=None,  # opts.py --positive_prompt; None: N(0, 0.02) (models/dualcoop.py:99)
    ctx_init_neg=None,  # opts.py --negative_prompt; None: N(0, 0.02) (models/dualcoop.py:100)
    init_std=0.02,  # models/dualcoop.py:99-100
    spatial_scale=20.0,  # models/dualcoop.py:232 (inside the softmax over locations)
    aggregate_scale=5.0,  # models/dualcoop.py:237 (outside)
    loss_w=0.03,  # README example for COCO at -pp 0.5 (opts.py:49 default 1; "larger loss_w for smaller pp")
    gamma_neg=2.0,  # opts.py:57 (overrides AsymmetricLoss's class default 4)
    gamma_pos=1.0,  # opts.py:60
    clip=0.05,  # utils/asymmetric_loss.py:6
    eps=1e-6,  # utils/asymmetric_loss.py:6
    train=dict(
        epochs=50,  # configs/models/rn101_ep50.yaml OPTIM.MAX_EPOCH
        batch_size=32,  # rn101_ep50.yaml DATALOADER.TRAIN_X.BATCH_SIZE
        optimizer=dict(type="SGD",  # rn101_ep50.yaml OPTIM.NAME "sgd"; train.py:72-76
                       lr=2e-3,  # rn101_ep50.yaml OPTIM.LR; README: 0.002 for COCO, 0.001 for VOC2007
                       momentum=0.9,  # Dassl config/defaults.py OPTIM.MOMENTUM
                       weight_decay=5e-4),  # Dassl config/defaults.py OPTIM.WEIGHT_DECAY (dampening 0, no nesterov)
        scheduler="cosine",  # rn101_ep50.yaml OPTIM.LR_SCHEDULER, stepped per epoch (utils/trainers.py:182)
        warmup_epochs=1,  # rn101_ep50.yaml OPTIM.WARMUP_EPOCH (opts.py --warmup_epochs default 1)
        warmup_lr=1e-5,  # rn101_ep50.yaml WARMUP_TYPE "constant", WARMUP_CONS_LR
    ),
    # The zero-shot protocol (setting zsl: seen classes for training, unseen / all for evaluation): README
    # "Zero-Shot MLR" (train_zsl.py --config_file configs/models/rn50_ep50.yaml --input_size 224 --lr 0.002
    # --loss_w 0.01 --n_ctx_pos 64 --n_ctx_neg 64); "csc does not work for zero-shot MLR" (README). Backbone RN50 at
    # 224 px = the dataset's default here. rn50_ep50.yaml has the same OPTIM as rn101_ep50.yaml (lr 0.002, 50
    # epochs, cosine, 1 constant warm-up epoch at 1e-5) and batch 32.
    per_setting=dict(zsl=dict(
        csc=False,  # README: class-agnostic prompts for unseen classes
        n_ctx_pos=64,  # README --n_ctx_pos 64
        n_ctx_neg=64,  # README --n_ctx_neg 64
        loss_w=0.01,  # README --loss_w 0.01
        num_train_cls=100,  # opts.py:18 --num_train_cls default 100 (classes drawn per batch when there are more)
        train=dict(optimizer=dict(lr=2e-3)),  # README: 0.002 for MS-COCO (0.001 for NUS-WIDE: configs/nuswide.py)
    )),
)
# DualCoOp's own protocol, one variant away (`bench run --methods dualcoop_ref`), beside the shared-backbone row above:
# RN101 (README partial-label command; rn101_ep50.yaml MODEL.BACKBONE.NAME) at 448 px (--input_size 448), test images
# squashed to 448x448 with torchvision's default bilinear Resize, no centre crop (dataloaders/coco_detection.py:58-62,
# pascal_voc.py:50-54), and training on images augmented afresh every step (features.mode "online"): Resize((448, 448)),
# CutoutPIL(0.5), RandAugment, no flip (coco_detection.py:50-56; bench/features/augment.py says how its RandAugment differs).
# lr / loss_w / epochs / batch: this file's values and the dataset config's (VOC2007: lr 0.001), as for `dualcoop`.
# Not reproduced: the reference's fp16 autocast (set runtime.amp=fp16 on CUDA) and its best-epoch-on-test selection.
# Records and tables say protocol "reference".
dualcoop_ref = dict(
    type="dualcoop",
    protocol="reference",
    backbone=dict(model="RN101", image_size=448, resize_mode="squash", interpolation="bilinear"),
    features=dict(mode="online", augment=dict(crop="squash", cutout=0.5, randaugment=True, flip=False)),
)

# DualCoOp (methods.md sec. 3; methods/dualcoop.py). Reference: sunxm2357/DualCoOp, partial-label setup of the
# README (train.py --config_file configs/models/rn101_ep50.yaml --input_size 448 --csc), opts.py, utils/build_cfg.py.
#
# Backbone: not set here, so DualCoOp shares the dataset's backbone with every other method and the sweep's
# columns compare. The reference's partial-label backbone is RN101 at 448 px (README; rn101_ep50.yaml
# MODEL.BACKBONE.NAME); to reproduce it add `backbone=dict(model="RN101", image_size=448)` to this dict, or run
#   bench run --methods dualcoop --cfg-options dualcoop.backbone.model=RN101 dualcoop.backbone.image_size=448
# (the record then states RN101@448; its features are cached separately).
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
)

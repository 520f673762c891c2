# CoOp as a multi-label baseline (methods.md sec. 2; methods/coop.py explains the loss and scale choice).
# Reference: KaiyangZhou/CoOp trainers/coop.py, configs/trainers/CoOp/rn50_ep50.yaml, scripts/coop/main.sh;
# the default loss is TaI-DPT's ranking loss (guozix/TaI-DPT); the ASL option uses DualCoOp's settings
# (sunxm2357/DualCoOp).
coop = dict(
    n_ctx=16,  # scripts/coop/main.sh NCTX (16 for the paper's main results)
    ctx_init=None,  # None: random N(0, 0.02) (trainers/coop.py:84-91); CoOp *_ctxv1.yaml: "a photo of a" (n_ctx 4)
    csc=False,  # scripts/coop/main.sh CSC False (generic context); True = class-specific contexts
    class_token_position="end",  # scripts/coop/main.sh CTP end ("middle", "front" also supported)
    init_std=0.02,  # trainers/coop.py:90 nn.init.normal_(std=0.02)
    # Loss and scale: TaI-DPT's recipe for its CoOp-shaped global prompt (methods/coop.py says why not ASL):
    # ranking loss (trainers/utils.py:85-93) on logits 4 * cos (trainers/Caption_distill_double.py:320), not
    # CoOp's CLIP scale 100 (trainers/coop.py:205). logit_scale=None = CLIP's own scale.
    logit_scale=4.0,
    objective="ranking",  # "asl": DualCoOp's ASL on sigmoid of the one logit (utils/asymmetric_loss.py:64-110)
    loss_w=1.0,  # multiplies either loss (DualCoOp opts.py:49 default)
    gamma_neg=2.0,  # objective="asl" only: DualCoOp opts.py:57 (overrides the class default 4)
    gamma_pos=1.0,  # DualCoOp opts.py:60
    clip=0.05,  # DualCoOp utils/asymmetric_loss.py:65
    eps=1e-6,  # DualCoOp utils/asymmetric_loss.py:65
    ranking_margin=1.0,  # TaI-DPT trainers/Caption_distill_double.py:474 margin_ = 1
    train=dict(
        epochs=50,  # configs/trainers/CoOp/rn50_ep50.yaml OPTIM.MAX_EPOCH (16-shot CoOp: 200, rn50.yaml)
        batch_size=32,  # rn50_ep50.yaml DATALOADER.TRAIN_X.BATCH_SIZE
        optimizer=dict(type="SGD",  # rn50_ep50.yaml OPTIM.NAME "sgd"
                       lr=2e-3,  # rn50_ep50.yaml OPTIM.LR
                       momentum=0.9,  # Dassl config/defaults.py:153 OPTIM.MOMENTUM
                       weight_decay=5e-4),  # Dassl config/defaults.py:152 OPTIM.WEIGHT_DECAY
        scheduler="cosine",  # rn50_ep50.yaml OPTIM.LR_SCHEDULER
        warmup_epochs=1,  # rn50_ep50.yaml OPTIM.WARMUP_EPOCH, WARMUP_TYPE "constant"
        warmup_lr=1e-5,  # rn50_ep50.yaml OPTIM.WARMUP_CONS_LR
    ),
)

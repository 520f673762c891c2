# CoCoOp as a multi-label baseline (methods.md sec. 5b; methods/cocoop.py: meta-net, cost, loss choice).
# Reference: KaiyangZhou/CoOp trainers/cocoop.py, configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml (the
# config of scripts/cocoop/base2new_train.sh). Loss and scale: bench's CoOp (ranking loss on 4 * cos; the reference
# is single-label cross-entropy, trainers/cocoop.py:192).
cocoop = dict(
    n_ctx=4,  # vit_b16_c4_ep10_batch1_ctxv1.yaml TRAINER.COCOOP.N_CTX (the ctx_init's word count wins)
    ctx_init="a photo of a",  # vit_b16_c4_ep10_batch1_ctxv1.yaml TRAINER.COCOOP.CTX_INIT (trainers/cocoop.py:75-83)
    meta_reduction=16,  # trainers/cocoop.py:96 Linear(vis_dim, vis_dim // 16)
    text_chunk=4096,  # bench: prompts per text-tower pass (B x C prompts per batch); memory only, no effect on numbers
    logit_scale=4.0,  # as bench's CoOp (TaI-DPT Caption_distill_double.py:320); reference: CLIP's (cocoop.py:176)
    objective="ranking",  # as bench's CoOp (TaI-DPT trainers/utils.py:85-93); "asl" as CoOp's option
    ranking_margin=1.0,  # TaI-DPT trainers/Caption_distill_double.py:474
    train=dict(
        epochs=10,  # vit_b16_c4_ep10_batch1_ctxv1.yaml OPTIM.MAX_EPOCH
        batch_size=1,  # vit_b16_c4_ep10_batch1_ctxv1.yaml DATALOADER.TRAIN_X.BATCH_SIZE (the text tower runs B x C)
        optimizer=dict(type="SGD",  # OPTIM.NAME "sgd"
                       lr=2e-3,  # OPTIM.LR
                       momentum=0.9,  # Dassl config/defaults.py:153
                       weight_decay=5e-4),  # Dassl config/defaults.py:152
        scheduler="cosine",  # OPTIM.LR_SCHEDULER
        warmup_epochs=1,  # OPTIM.WARMUP_EPOCH, WARMUP_TYPE "constant"
        warmup_lr=1e-5,  # OPTIM.WARMUP_CONS_LR
    ),
)

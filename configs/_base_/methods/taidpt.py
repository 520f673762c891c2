# TaI-DPT (methods.md sec. 4; methods/taidpt.py). Reference: guozix/TaI-DPT, trainer Caption_distill_double
# ("CDD" = trainers/Caption_distill_double.py), configs/trainers/Caption_distill_double/rn50_{voc2007,coco2014}.yaml.
taidpt = dict(
    n_ctx=16,  # train_caption.py:86 N_CTX; scripts/main.sh passes 16
    init_std=0.02,  # CDD:105,113 nn.init.normal_(std=0.02), generic contexts (CSC False)
    class_token_position="end",  # scripts/main.sh CTP=end
    logit_scale=4.0,  # CDD:320,350 fixed 4.0 (IF_LEARN_SCALE False)
    spatial_scale_text=50.0,  # rn50_*.yaml TRAIN.spatial_SCALE_text
    spatial_scale_image=40.0,  # rn50_{voc2007,coco2014}.yaml TRAIN.spatial_SCALE_image (NUS-WIDE: 4)
    gl_merge_rate=0.5,  # train_caption.py:91 TRAINER.Caption.GL_merge_rate
    ranking_margin=1.0,  # CDD:474 ranking_loss(scale_=1.0, margin_=1), LOSSFUNC "double_ranking"
    template_captions=True,  # coco2014_distill.py:184-195: 9 x "a photo of a {}." + 80 ImageNet templates per class
    default_prompt="a photo of a {}.",  # data_helpers.py:12 prompt_template
    default_prompt_copies=9,  # coco2014_distill.py:185,190 default_prompt_num 10 -> range(9)
    prompt_names=None,  # None: the dataset's names; "coco": first synonyms, as TaI-DPT ("motor bike", "aeroplane")
    # NUS-WIDE reference: 1000 captions per rarest class (nuswide_distill.py:172; set in configs/nuswide.py)
    max_captions_per_class=None,
    train=dict(
        epochs=20,  # rn50_*.yaml OPTIM.MAX_EPOCH
        batch_size=512,  # rn50_*.yaml DATALOADER.TRAIN_X.BATCH_SIZE
        optimizer=dict(type="SGD",  # OPTIM.NAME "sgd"
                       lr=1e-4,  # rn50_{voc2007,coco2014}.yaml OPTIM.LR (NUS-WIDE: 1e-3)
                       momentum=0.9,  # Dassl config/defaults.py:153 OPTIM.MOMENTUM
                       weight_decay=5e-4),  # Dassl config/defaults.py:152 OPTIM.WEIGHT_DECAY
        scheduler="cosine",  # OPTIM.LR_SCHEDULER
        warmup_epochs=1,  # OPTIM.WARMUP_EPOCH, WARMUP_TYPE "constant"
        warmup_lr=1e-5,  # OPTIM.WARMUP_CONS_LR
    ),
)

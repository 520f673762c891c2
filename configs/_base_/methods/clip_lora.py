# CLIP-LoRA as a multi-label baseline (methods.md sec. 5b; methods/clip_lora.py: open_clip mapping, ResNet towers,
# online image protocol). Reference: MaxZanella/CLIP-LoRA run_utils.py (defaults), lora.py, loralib/.
# Loss: bench's CoOp default (ranking loss on 4 * cos); the reference is single-label cross-entropy at scale 100
# (lora.py:112-113, main.py:22).
clip_lora = dict(
    encoder="both",  # run_utils.py:33 (ResNet CLIP: text tower only, recorded as "text")
    layers="all",  # run_utils.py:32 position "all" (loralib/utils.py:19, 31: every block)
    params=["q", "k", "v"],  # run_utils.py:34
    rank=2,  # run_utils.py:35 r
    lora_alpha=1.0,  # run_utils.py:36 alpha; scaling alpha / sqrt(r) (loralib/layers.py:42)
    dropout=0.25,  # run_utils.py:37 dropout_rate (on the LoRA branch's input, loralib/layers.py:200-201)
    template="a photo of a {}.",  # lora.py:94-95 dataset.template[0]
    logit_scale=4.0,  # as bench's CoOp; reference: 100 (main.py:22)
    ranking_margin=1.0,  # TaI-DPT trainers/Caption_distill_double.py:474
    train=dict(
        # The reference trains 500 x 16 = 8,000 iterations of batch 32 (lora.py:73, run_utils.py:24, 29-30):
        # 256k samples, about 3 epochs of COCO 2014's 82,783 train images (bench counts epochs; per dataset below).
        epochs=3,
        batch_size=32,  # run_utils.py:30
        optimizer=dict(type="AdamW", lr=2e-4,  # run_utils.py:28
                       weight_decay=1e-2, betas=(0.9, 0.999)),  # lora.py:75
        scheduler="cosine",  # lora.py:76 CosineAnnealingLR (per iteration, eta_min 1e-6; bench: per epoch, to 0)
        warmup_epochs=0,  # lora.py has no warm-up
        # 16-shot (bench's fewshot setting, at most 16 x C images): about the reference's 8,000 iterations of 32
        per_setting=dict(fewshot=dict(epochs=200)),  # COCO: 256k / (16 x 80) = 200 epochs
    ),
)

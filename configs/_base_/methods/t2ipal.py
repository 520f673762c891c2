# T2I-PAL (methods/t2ipal.py; methods.md sec. 5). The paper publishes no code and no settings: every value
# below is bench's choice (methods.md's proposal), recorded with each result. TaI-DPT's arguments (n_ctx,
# logit_scale, temperatures, template captions, ...) take TaIDPT's class defaults (a dataset config that changes
# them for taidpt, as configs/nuswide.py, sets the same for t2ipal).
# Settings: zero-shot (generated images and captions only), fewshot and partial: the cell's labelled real train
# images, with their known labels only, are extra training rows of the same prompts, adapter and prototypes with the
# same losses, beside the generated images and captions (the paper does not say how; methods/t2ipal.py).
t2ipal = dict(
    generator=dict(
        type="diffusers",
        pipeline="stable-diffusion-v1-5/stable-diffusion-v1-5",  # hub id, or a local folder (save_pretrained)
        scheduler="DPMSolverMultistepScheduler",
        steps=25,
        guidance=7.5,
        height=512,
        width=512,
        negative_prompt="text, watermark",
        dtype="fp16",  # on CUDA; fp32 on CPU
    ),
    images_per_caption=1,
    max_captions=None,  # None: every parsed training caption (COCO: ~80k images); N: a seeded subset, every row alike
    generation_seed=0,
    use_generated=True,  # False: the "w/o T2I" ablation (the same captions, nothing rendered)
    use_captions=True,  # also train on each image's caption as text-as-image features (TaI-DPT)
    # which template captions are rendered: "photo" (default): "a photo of ...", "a blurry photo of ...", "itap of
    # ..." but not "a sketch / tattoo / origami ..." (those would add the style gap to the test photographs; they
    # still train as captions); "all"; "none". Corpus captions are always rendered.
    render_templates="photo",
    adapter="mlp",  # CLIP-Adapter residual MLP; "lora" (peft); None
    adapter_alpha=0.2,
    lora_rank=8,
    heatmap=True,
    prototypes=True,
    proto_weight=0.5,
    prototype_prompt="a photo of a {}.",
    # score = r * global + (1 - r) * local + lambda * prototype: r and lambda chosen after training on validation
    # images (the val split with the cell's label budget, else a seeded 20% hold-out of the cell's training images:
    # bench/cell/validation.py, the definition bench/cell/fitdata.py uses), never on test;
    # False: the fixed gl_merge_rate (0.5, TaI-DPT's) and proto_weight
    tune_weights=True,
    weight_grid=dict(gl_merge_rate=[0.0, 0.25, 0.5, 0.75, 1.0], proto_weight=[0.0, 0.25, 0.5, 1.0]),
    exclude_near_duplicates=None,  # a cosine: drop generated images that close to a test image (leakage row)
    train=dict(
        epochs=20,
        batch_size=256,
        optimizer=dict(type="SGD", lr=1e-4, momentum=0.9, weight_decay=5e-4),
        scheduler="cosine",
        warmup_epochs=1,
        warmup_lr=1e-5,
        paramwise_cfg=dict(custom_keys={"adapter": dict(lr_mult=10.0), "prototypes": dict(lr_mult=10.0)}),
    ),
)
# Ablation rows (the paper's ablation table): variants of t2ipal, declared as data. `--methods all` runs the
# ones listed in a dataset config's sweep.variants; any of them can be named in --methods.
t2ipal_no_t2i = dict(type="t2ipal", use_generated=False)  # captions only: no generated images
t2ipal_no_heatmap = dict(type="t2ipal", heatmap=False)  # uniform pooling instead of class-wise heatmaps
t2ipal_no_prototypes = dict(type="t2ipal", prototypes=False)
t2ipal_no_adapter = dict(type="t2ipal", adapter=None)
t2ipal_lora = dict(type="t2ipal", adapter="lora")  # a peft LoRA adapter instead of the residual MLP
t2ipal_x2 = dict(type="t2ipal", images_per_caption=2)
t2ipal_x4 = dict(type="t2ipal", images_per_caption=4)
# generator choice: a one-step distilled model (Stable Diffusion XL Turbo)
t2ipal_sdxl_turbo = dict(type="t2ipal", generator=dict(type="diffusers", pipeline="stabilityai/sdxl-turbo",
                                                       scheduler=None, steps=1, guidance=0.0, negative_prompt=None))

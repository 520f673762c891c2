# Runtime and feature-protocol defaults shared by every dataset config.
runtime = dict(
    cache_dir=None,  # feature cache; default: <work-dir>/cache
    amp=None,  # "fp16" or "bf16": autocast on CUDA for feature extraction, training and evaluation
    log_level="ERROR",  # mmengine's own log (INFO shows every iteration); progress bars show training
    log_interval=50,
    vis_backends=[],  # e.g. ["TensorboardVisBackend"] to log training curves through mmengine's visualizer
    # cells run at once on this machine, each in its own process (bench/grid/jobs.py): an integer or "auto" (one per
    # CPU core on CPU, 1 on a GPU); features and generated images are still computed once
    jobs=1,
    eval_split="test",  # "val" to tune on the validation split (where the dataset has one: toy), never on test
)
features = dict(
    mode="cached",  # "cached": frozen features computed once (K=views); "online": re-encode augmented images each step
    views=1,  # cached augmented views per training image (1 = the plain test transform)
    augment=dict(scale=(0.5, 1.0), flip=True),  # random-resized crop + flip for views > 1 and for online mode
    batch_size=64,  # feature extraction batch
    num_workers=2,  # image decoding workers for extraction
    eval_batch_size=256,
)
sweep = dict(
    settings=["zero-shot", "partial", "fewshot"],  # each method runs the ones it supports
    ratios=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    seeds=[1, 2, 3],
    # images per class in the few-shot setting, one cell per K (the TaI-DPT paper's 1/2/4/8/16-shot columns);
    # the selections are nested across K for a seed (bench.data.base.few_shot_indices)
    shots=[1, 2, 4, 8, 16],
    method_settings={},  # {method: [settings]}: run a method in some of its settings only
)
# Derived cells computed from finished cells' saved test scores (bench/grid/fusion.py): TaI-DPT's fusion
# with a DualCoOp trained on partial labels (TaI-DPT paper, "TaI-DPT + DualCoOp"; ensemble_score.py), and the
# same fusion for zero-shot T2I-PAL (its own row; the same rate, which the T2I-PAL paper does not give).
fusions = [dict(a="taidpt", b="dualcoop", rate=0.9), dict(a="t2ipal", b="dualcoop", rate=0.9)]
# Diagnostics records written after the cells (bench/grid/diagnostics.py): image-text modality gaps, the Frechet
# domain gap between generated and real images, and near duplicates of test images among generated ones.
diagnostics = dict(enabled=True, leak_threshold=0.95)

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
# Submitting the sweep through submitit (`bench run ... --slurm [key=value,...] --shards N`; bench/grid/slurm.py): a
# prepare job (features and generated images, once), an array of cell shards after it, and a finishing job after the
# array (fused cells, diagnostics, `bench report` into <run>/report). Every job gets the resources below; `prepare` and
# `finish` override them for one job (prepare may also take nodes and tasks_per_node: tasks that share the extraction).
slurm = dict(
    cluster="slurm",  # "slurm" (sbatch; jobs chained by dependencies) or "local" (the same jobs as local processes)
    partition=None,
    account=None,
    qos=None,
    time=240,  # minutes per job
    mem=None,  # memory per node as sbatch takes it, e.g. "64G"
    cpus_per_task=None,
    gpus_per_task=None,
    setup=[],  # shell lines each job's script runs first, e.g. ["module load cuda/12.4"]
    additional_parameters={},  # any other sbatch option, e.g. dict(constraint="a100", mail_type="END")
    shards=8,  # array tasks the cells are shared out to (--shards)
    array_parallelism=None,  # at most this many shards at once (default: all of them)
    prepare=dict(nodes=1, tasks_per_node=1),
    finish=dict(),
    report_formats=["md", "tex", "csv", "png", "pdf"],  # what the finishing job's `bench report` writes; [] for none
    logs=None,  # where submitit writes each job's script, pickles and logs; default <work-dir>/<run>/slurm
)

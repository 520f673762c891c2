# Sweep over the toy world. Toy runs use one seed and three label ratios so the whole grid
# finishes in minutes on 2 CPU cores; pass --seeds/--ratios for more.
_base_ = ["_base_/default_runtime.py", "_base_/datasets/toy.py", "_base_/methods/zsclip.py"]
features = dict(batch_size=128, num_workers=0)
sweep = dict(ratios=[0.1, 0.5, 0.9], seeds=[1])

# The embedded toy world (bench/toy): generated on first use, offline, CPU-sized.
dataset = dict(type="toy", data_root="data/toy", n_train=4000, n_val=1000, n_test=1000, n_text_only=5000, seed=0)
backbone = dict(model="toy-clip", pretrained="builtin:toy/model/toy-clip.safetensors",
                model_config="builtin:toy/model/toy-clip.json")

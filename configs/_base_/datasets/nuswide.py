dataset = dict(type="nuswide", data_root="data/NUS-WIDE", skip_missing=False,
               caption_files=["data/OpenImages/captions/open_images_train_v6_captions.jsonl"])
backbone = dict(model="RN50", pretrained="openai")

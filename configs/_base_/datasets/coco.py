dataset = dict(type="coco2014", data_root="data/coco", keep_unannotated=False)
backbone = dict(model="RN50", pretrained="openai")

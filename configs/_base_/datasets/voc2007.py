dataset = dict(type="voc2007", data_root="data/VOCdevkit/VOC2007", difficult="negative",
               caption_file="data/coco/annotations/captions_train2014.json")
backbone = dict(model="RN50", pretrained="openai")

"""The toy world: bench's embedded, offline default (see DESIGN "The toy world").

    shapes.py    class silhouettes as polygons        world.py     scenes and the toy-photo renderer
    captions.py  COCO-style captions of scenes        build.py     the dataset on disk, COCO 2014 layout
    t2i.py       text-to-image stand-in (other style) pretrain.py  the seeded toy CLIP pretraining
    model/       toy-clip.json (open_clip config), toy-clip.safetensors, card.json
"""

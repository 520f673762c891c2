# Zero-shot CLIP (methods.md sec. 1): TaI-DPT's default template; "imagenet80" for CLIP's ensemble.
zsclip = dict(templates="a photo of a {}.", dense_weight=0.0)

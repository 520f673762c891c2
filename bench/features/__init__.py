"""Image and text features of the frozen CLIP backbone.

``spec``        what identifies a backbone (:class:`BackboneSpec`, plain data, no torch)
``quickgelu``   which activation the weights need (QuickGELU for OpenAI's CLIP)
``backbone``    the open_clip model: global and dense image features, the text tower's paths
``weights``     where the weights come from: checked before any model is built, user files loaded without
                unpickling Python objects (``weights_only=True``; TorchScript archives by ``torch.jit.load``)
``augment``     image transforms: evaluation and the augmented views of the cached / online protocols
``hashes``      content hashes of image files, memoised (the cache's keys and the data keys' parts)
``cache``       the content-addressed, verified, memory-mapped feature cache; ``cache_entry`` (one
                entry's files and checks) and ``cache_rows`` (rows shared between entries)

May import: the contracts (``io``, ``locking``), ``bench.data`` (errors, splits). Never the run layer
(``bench.cell``, ``bench.grid``), the methods, the report or the CLI.
"""

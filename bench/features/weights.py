"""Where a backbone's weights come from, checked and loaded without unpickling anything a file could hide.

:func:`weights_problem` says, before any model is built, why the weights of a :class:`BackboneSpec` cannot be
had (a missing file, an unknown model or tag, weights not in the local hub cache while ``HF_HUB_OFFLINE`` is
set, a checkpoint that would unpickle Python objects): the run's check of its resources
(:mod:`bench.grid.preflight`) lists every such problem in one line. :func:`load_torchscript_weights` reads
OpenAI's TorchScript releases through ``torch.jit.load``; every other user file is loaded by open_clip with
``weights_only=True`` (:func:`bench.features.backbone.load_backbone`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

from bench.features.quickgelu import is_torchscript_archive
from bench.features.spec import BackboneSpec, is_local_path, resolve_path


def refused_globals(exc: BaseException) -> str | None:
    """The Python globals a ``weights_only`` load refused (``io.open``), from torch's UnpicklingError; None when the
    error is another (a damaged file)."""
    names = re.findall(r"Unsupported global: GLOBAL (\S+)", str(exc))
    return ", ".join(dict.fromkeys(names)) or None


def weights_problem(spec: BackboneSpec, key: str = "backbone") -> str | None:
    """Why the weights of ``spec`` cannot be had before any model is built (None: they can), naming the config
    key that sets them and how to supply them. Cheap: file existence, the pickle's imports (never unpickled),
    open_clip's model and tag lists, and with ``HF_HUB_OFFLINE`` set a lookup in the local hub cache."""
    import open_clip

    if spec.model.startswith("standin:"):  # bench's stand-in (bench.features.standin): fixed weights, no file
        return None
    pretrained, model_config = resolve_path(spec.pretrained), resolve_path(spec.model_config)
    if model_config and not Path(model_config).exists():
        return f"open_clip model config {model_config} not found ({key}.model_config)"
    if spec.model.startswith(("hf-hub:", "local-dir:")):
        return _hub_model_problem(spec.model, key)
    if not model_config and spec.model not in open_clip.list_models():  # (a custom model registers from its file)
        return f"unknown open_clip model {spec.model!r} ({key}.model; `python -c \"import open_clip; " \
               "print(open_clip.list_models())\"` lists them)"
    if not pretrained:
        return None
    if is_local_path(pretrained):
        if not Path(pretrained).is_file():
            return f"CLIP checkpoint {pretrained} not found ({key}.pretrained)"
        return _pickled_objects_problem(pretrained, key)
    cfg = open_clip.get_pretrained_cfg(spec.model, pretrained) if not model_config else {}
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(spec.model)) or "none"
        return (f"{key}.pretrained={pretrained!r} is neither a file nor an open_clip tag of {spec.model} "
                f"(tags: {tags})")
    if _offline() and not _tag_cached(cfg):
        return (f"CLIP weights {spec.model}@{pretrained} are not in the local hub cache and HF_HUB_OFFLINE is set: "
                f"download them where there is internet (e.g. huggingface-cli download {cfg.get('hf_hub', '')}) "
                f"or pass a checkpoint file: --cfg-options {key}.pretrained=/path/to/{spec.model}.pt")
    return None


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _tag_cached(cfg: dict) -> bool:
    """Whether open_clip would find a tag's weights without the network: a file of its own, or the hub files its
    downloader tries (the safetensors alternatives first) in the local cache."""
    from huggingface_hub import try_to_load_from_cache
    from open_clip.pretrained import HF_WEIGHTS_NAME, _get_safe_alternatives

    if cfg.get("file"):
        return Path(cfg["file"]).is_file()
    if not cfg.get("hf_hub"):
        return False
    repo, filename = os.path.split(cfg["hf_hub"])  # 'org/name/' or 'org/name/file.pt', as open_clip reads it
    filename = filename or HF_WEIGHTS_NAME
    names = [*_get_safe_alternatives(filename), filename]
    return any(isinstance(try_to_load_from_cache(repo, name), str) for name in names)


def _hub_model_problem(model: str, key: str) -> str | None:
    if model.startswith("local-dir:"):
        folder = Path(model[len("local-dir:"):]).expanduser()
        return None if folder.is_dir() else f"open_clip model folder {folder} not found ({key}.model)"
    from huggingface_hub import try_to_load_from_cache

    repo = model[len("hf-hub:"):]
    if _offline() and not isinstance(try_to_load_from_cache(repo, "open_clip_config.json"), str):
        return (f"open_clip model {model} is not in the local hub cache and HF_HUB_OFFLINE is set: download it "
                f"where there is internet (huggingface-cli download {repo} --local-dir /path/m) and pass "
                f"--cfg-options {key}.model=local-dir:/path/m")
    return None


def _pickled_objects_problem(path: str, key: str) -> str | None:
    """The Python objects (beyond tensors and plain data) a ``torch.save`` file would unpickle, read from its
    pickle's imports without running it; None for a plain state dict, a safetensors file, a TorchScript archive
    (read by ``torch.jit.load``) or a file that is no zip (``torch.load(weights_only=True)`` decides then)."""
    import zipfile

    if path.endswith(".safetensors") or is_torchscript_archive(path) or not zipfile.is_zipfile(path):
        return None
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 -- damaged: loading it says how
        return None
    if not unsafe:
        return None
    return (f"CLIP checkpoint {path} ({key}.pretrained) holds Python objects besides tensors "
            f"({', '.join(unsafe[:4])}); bench never unpickles those (they could run code): save the weights as a "
            "state dict (torch.save(model.state_dict(), path)) or a .safetensors file")


def load_torchscript_weights(open_clip, model: nn.Module, path: str) -> None:
    """Load the weights of a TorchScript archive (OpenAI's CLIP release format) into ``model`` through
    ``torch.jit.load`` -- never through ``torch.load(weights_only=False)``, which would unpickle a file that only
    looks like an archive -- and open_clip's own state-dict conversions (by way of a temporary safetensors file)."""
    import tempfile

    from safetensors.torch import save_file

    scripted = torch.jit.load(path, map_location="cpu")
    state = {k: v.detach().contiguous() for k, v in scripted.state_dict().items()
             if k not in ("input_resolution", "context_length", "vocab_size")}  # as open_clip's load_state_dict
    with tempfile.TemporaryDirectory() as folder:
        plain = str(Path(folder) / "weights.safetensors")
        save_file(state, plain)
        open_clip.load_checkpoint(model, plain, strict=True)

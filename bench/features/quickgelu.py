"""Which activation a backbone's weights need: QuickGELU (OpenAI's CLIP) or GELU.

OpenAI trained CLIP with QuickGELU, x * sigmoid(1.702 x). open_clip 3.x builds its plain model
names (``RN50``, ``RN101``, ``ViT-B-16``) with ``nn.GELU`` and only *warns* when a pretrained tag
wants QuickGELU (``open_clip/factory.py`` create_model, "QuickGELU mismatch"), so loading
``pretrained="openai"`` into ``RN50`` silently shifts every text (and ViT image) feature.

bench decides before building (``backbone.quick_gelu``; None = decide here):
  1. an explicit ``backbone.quick_gelu`` (true/false) wins;
  2. an open_clip pretrained *tag*: the tag's own ``quick_gelu`` flag
     (``open_clip.get_pretrained_cfg(model, tag)``, ``open_clip/pretrained.py``: every ``openai``
     tag has ``quick_gelu=True``);
  3. a local checkpoint file that is a TorchScript archive: OpenAI's released ``RN50.pt`` /
     ``ViT-B-16.pt`` files are TorchScript archives (``clip/clip.py`` ``_download`` + ``torch.jit.load``),
     so QuickGELU;
  4. a local state-dict file for an architecture that has an ``openai`` tag in open_clip: its
     origin cannot be read from the file (OpenAI's and LAION's state dicts have the same keys), so
     QuickGELU -- right for OpenAI's weights, the usual ones for these names -- with a warning naming
     ``backbone.quick_gelu=false`` for GELU-trained weights;
  5. otherwise (random init, custom model configs, ``-quickgelu`` names, hf-hub:/local-dir:
     folders): the model config's own ``quick_gelu`` value.
The decided value is written into the backbone spec, so every record and feature-cache key carries it.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from bench.errors import UsageError

log = logging.getLogger("bench")


def is_torchscript_archive(path: str | Path) -> bool:
    """True for a TorchScript archive (``torch.jit.save``): a zip holding ``code/`` and ``constants.pkl``
    (a ``torch.save`` zip holds ``data.pkl`` and ``data/`` only)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def model_config_quick_gelu(open_clip, model: str) -> bool | None:
    """The ``quick_gelu`` value of an open_clip model config (False when unset); None for hf-hub:/local-dir:."""
    if model.startswith(("hf-hub:", "local-dir:")):
        return None
    cfg = open_clip.get_model_config(model) or {}
    return bool(cfg.get("quick_gelu", False))


def decide_quick_gelu(open_clip, model: str, pretrained: str | None, given: bool | None,
                      is_local_file: bool, warn: bool = True) -> tuple[bool | None, str]:
    """(quick_gelu, why) for building ``model`` with ``pretrained`` (see the module docstring);
    None leaves the model config's choice (hf-hub:/local-dir: folders carry their own)."""
    if given is not None:
        if not isinstance(given, bool):
            raise UsageError(f"backbone.quick_gelu must be true, false or None (decide from the weights), "
                             f"got {given!r}")
        return given, "backbone.quick_gelu"
    own = model_config_quick_gelu(open_clip, model)
    if own is None:
        return None, "the model folder's own config"
    if pretrained and not is_local_file:
        tag_cfg = open_clip.get_pretrained_cfg(model, pretrained) or {}
        if tag_cfg:
            return bool(tag_cfg.get("quick_gelu", False)), f"open_clip's pretrained config of {model}/{pretrained}"
        return own, "the model config"
    if pretrained and is_local_file:
        if is_torchscript_archive(pretrained):
            return True, "an OpenAI TorchScript checkpoint (OpenAI's CLIP was trained with QuickGELU)"
        if not own and "openai" in open_clip.list_pretrained_tags_by_model(model):
            say = log.warning if warn else log.debug
            say("backbone.pretrained=%s: a state dict for %s, whose OpenAI weights need QuickGELU; building "
                "QuickGELU. If these weights were trained with GELU (e.g. LAION), set backbone.quick_gelu=false",
                pretrained, model)
            return True, f"default for a {model} state dict (OpenAI's weights); set backbone.quick_gelu to choose"
    return own, "the model config"


def text_activation(model) -> str:
    """The class name of the text tower's MLP activation ('QuickGELU' or 'GELU'); '' when it has none."""
    blocks = getattr(getattr(model, "transformer", None), "resblocks", None)
    if not blocks:
        return ""
    return type(blocks[0].mlp.gelu).__name__ if hasattr(blocks[0].mlp, "gelu") else ""


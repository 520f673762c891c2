"""What identifies a CLIP backbone, as plain data: :class:`BackboneSpec` from a config dict, the
activation its weights will need (decided without building it), its JSON form for cache keys.
No torch: the config checks and the cell config hash read it without loading a model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BackboneError, UsageError
from bench.features.quickgelu import decide_quick_gelu

__all__ = ["BackboneError", "BackboneSpec", "resolve_spec"]

BUILTIN_PREFIX = "builtin:"  # a path inside the installed bench package, e.g. builtin:toy/model/toy-clip.json
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # bench/


@dataclass(frozen=True)
class BackboneSpec:
    """What identifies a backbone; every field enters the feature-cache key.

    model: an open_clip model name ('RN50', 'ViT-B-16', a custom config's name) or 'hf-hub:org/repo'.
    pretrained: an open_clip pretrained tag ('openai'), a local checkpoint file, or None (random init).
    model_config: an open_clip model config json (or a folder of them) registered before building.
    image_size: the input resolution (None: the model's own). ResNet positional embeddings are
        resized bicubically as DualCoOp does, so a 224-px RN101 can run at 448 px.
    resize_mode: open_clip resize mode ('shortest' = resize + centre crop, 'squash' = resize to square).
    interpolation: 'bicubic' (open_clip's default), 'bilinear' (DualCoOp's torchvision Resize) or 'nearest'.
    quick_gelu: the text (and ViT image) tower's activation: True QuickGELU, False GELU, None decide
        from the weights (bench/features/quickgelu.py); the loaded backbone's spec holds the decided value.
    """

    model: str
    pretrained: str | None = None
    model_config: str | None = None
    image_size: int | None = None
    resize_mode: str | None = None
    interpolation: str | None = None
    quick_gelu: bool | None = None

    def describe(self) -> str:
        name = f"{self.model}" + (f"@{self.pretrained}" if self.pretrained else "@random-init")
        return name + ("+QuickGELU" if self.quick_gelu else "")


def resolve_path(value: str | None) -> str | None:
    """Expand ``builtin:`` paths to files shipped inside the package."""
    if value and value.startswith(BUILTIN_PREFIX):
        return str(PACKAGE_DIR / value[len(BUILTIN_PREFIX):])
    return value


def resolve_spec(cfg: dict) -> BackboneSpec:
    """A :class:`BackboneSpec` from a config dict; unknown keys are an error naming the valid ones."""
    valid = {f.name for f in dataclasses.fields(BackboneSpec)}
    unknown = set(cfg) - valid
    if unknown:
        raise UsageError(f"unknown backbone option(s) {sorted(unknown)}; valid: {sorted(valid)}")
    if "model" not in cfg:
        raise UsageError("backbone config needs 'model' (an open_clip model name such as 'RN50')")
    return BackboneSpec(**cfg)  # builtin: paths stay as written (portable records); resolved when loading


def is_local_path(value: str) -> bool:
    return "/" in value or value.endswith((".pt", ".pth", ".bin", ".safetensors"))


def planned_quick_gelu(backbone_cfg: dict) -> bool | None:
    """The activation a backbone config will be built with, decided without building it (for the cell
    config: a record made with GELU where QuickGELU is due is stale). Custom model configs not registered
    yet count as their default (GELU)."""
    import open_clip

    pretrained = resolve_path(backbone_cfg.get("pretrained"))
    is_file = bool(pretrained) and is_local_path(pretrained)
    return decide_quick_gelu(open_clip, str(backbone_cfg.get("model", "")), pretrained,
                             backbone_cfg.get("quick_gelu"), is_file, warn=False)[0]


def spec_to_json(spec: BackboneSpec) -> str:
    return json.dumps(dataclasses.asdict(spec), sort_keys=True)

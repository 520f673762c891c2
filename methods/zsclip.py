"""Zero-shot CLIP for multi-label recognition (methods.md sec. 1; TaI-DPT ``trainers/zsclip.py``).

Nothing is learned. Class c's text feature t_c is the normalised ``encode_text`` of
"a photo of a {c}." (or the normalised mean over a template ensemble, as CLIP's ImageNet
evaluation does). Global score s_c = logit_scale * cos(image, t_c) with CLIP's own logit scale
(100 for OpenAI weights). With ``dense_weight > 0`` the dense variant of TaI-DPT's
``ZeroshotCLIP_dense`` is mixed in: S[p, c] = logit_scale * cos(f_p, t_c) over the positions p
(value/output-projected, no positional embedding), l_c = sum_p softmax_p(S[:, c]) * S[p, c],
score = (1 - w) * s + w * l (TaI-DPT prints w = 0.5 as "merged").

Class names: underscores become spaces, as TaI-DPT's ``trainers/zsclip.py:51``; ``prompt_names`` gives
a dataset's own prompt names (e.g. "coco": TaI-DPT's "motor bike", "aeroplane"; see
``methods/_parts/names.py``), set per dataset in its config. In the ``zsl`` setting the text
classifier is rebuilt for the unseen and for all classes (:meth:`ZSCLIP.rebuild`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.errors import UsageError
from bench.method import Method
from bench.methods._parts.names import prompt_names
from bench.registry import METHODS


def template_list(templates) -> list[str]:
    """A list of '{}' templates; the string 'imagenet80' names CLIP's 80 ImageNet templates."""
    if templates == "imagenet80":
        from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

        return [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
    if isinstance(templates, str):
        templates = [templates]
    templates = list(templates)
    if not templates or not all("{}" in t for t in templates):
        raise UsageError(f"templates must contain '{{}}' where the class name goes, got {templates}")
    return templates


@torch.no_grad()
def class_text_features(backbone, classnames: list[str], templates) -> torch.Tensor:
    """[C, D] normalised text features, averaged over templates then renormalised (CLIP's ensembling)."""
    feats = []
    for name in classnames:
        per_template = F.normalize(backbone.encode_text([t.format(name) for t in template_list(templates)]), dim=-1)
        feats.append(F.normalize(per_template.mean(0), dim=-1))
    return torch.stack(feats)


@METHODS.register_module(name="zsclip")
class ZSCLIP(Method):
    name = "zsclip"
    trains_on = None
    settings = ("zero-shot", "zsl")
    supports_unseen = True
    unseen_note = "nothing is learned: the classifier is the text features of any class names"

    def __init__(self, templates: str | list[str] = "a photo of a {}.", dense_weight: float = 0.0,
                 prompt_names: str | list[str] | None = None):
        super().__init__()
        self.templates = templates
        self.prompt_names = prompt_names  # None: the dataset's names, "_" -> " " (methods/_parts/names.py)
        self.dense_weight = float(dense_weight)
        self.image_features = {"global": "global"}
        if self.dense_weight > 0:
            self.image_features["dense"] = "dense_nopos"

    def build(self, backbone, classnames):
        super().build(backbone, classnames)
        names = prompt_names(self.prompt_names, classnames)  # TaI-DPT trainers/zsclip.py:51: "_" -> " "
        self.register_buffer("text_features", class_text_features(backbone, names, self.templates))
        self.logit_scale = backbone.logit_scale

    def rebuild(self, classnames):
        """The text classifier of other classes (the zsl setting's unseen and seen + unseen class sets)."""
        self.classnames = list(classnames)
        names = prompt_names(self.prompt_names, self.classnames)
        self.text_features = class_text_features(self.backbone, names, self.templates).to(
            self.text_features.device)

    def logits(self, feats):
        text = self.text_features.to(feats["global"].dtype)
        scores = {"global": self.logit_scale * F.normalize(feats["global"], dim=-1) @ text.T}
        if self.dense_weight > 0:
            sims = self.logit_scale * F.normalize(feats["dense"], dim=-1) @ text.T  # [B, P, C]
            scores["local"] = (sims.softmax(dim=1) * sims).sum(dim=1)
            scores["score"] = (1 - self.dense_weight) * scores["global"] + self.dense_weight * scores["local"]
        else:
            scores["score"] = scores["global"]
        return scores

"""The method interface every PEFT method implements (DESIGN.md, "The method interface").

A method owns only its learnable parameters, its forward (``logits``) and its ``loss``; the
runner owns data, optimiser, schedule, AMP, checkpoints, logging and evaluation. The CLIP
backbone is frozen and is *not* a submodule of the method, so its weights stay out of the
optimiser and out of checkpoints.

Features reach ``logits`` as a dict of float tensors:
  ``global``      [B, D]     global image feature (or, for texts-as-images, the caption's EOT feature)
  ``dense``       [B, P, D]  per-location features (image locations, or caption tokens)
  ``dense_mask``  [B, P]     bool, False at caption padding (absent for images)
and ``modality`` ("image" or "text") says which. Which cached image feature kind fills
``global`` and ``dense`` is the method's ``image_features`` mapping (see bench/features/backbone.py).

``logits`` returns either one [B, C] tensor or a dict of named [B, C] score matrices with the
final score under ``"score"``; the other entries (e.g. TaI-DPT's global and local branches) are
evaluated and recorded too.

Methods that fit from labelled features rather than (or before) gradient steps -- Tip-Adapter's
cache, a linear probe -- set ``fits_features = True`` and implement ``fit_features(train, val)``:
the runner calls it once per cell, after the training set is built and before any gradient
training, with the cell's labelled training features and a validation set for hyperparameter
choices (``bench/cell/fitdata.py`` says where that comes from; never the test split).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

TRAINS_ON = (None, "images", "captions", "generated")


@dataclass
class LabelledFeatures:
    """Labelled cached image features, as ``fit_features`` receives them.

    feats:  role -> float32 [V, N, ...]: the method's ``image_features`` roles, V cached views per
            image (``features.views``; 1 for the plain transform, always 1 for a validation set)
    labels: int8 [N, C] in {1 (positive), 0 (unknown), -1 (negative)}
    """

    feats: dict[str, np.ndarray]
    labels: np.ndarray


class Method(nn.Module):
    """Base class of every method. Subclasses store each ``__init__`` argument under its own name."""

    name: ClassVar[str] = ""
    trains_on: ClassVar[str | None] = None  # None (zero-shot), "images", "captions" or "generated"
    settings: ClassVar[tuple[str, ...]] = ("zero-shot",)  # which of bench.data.base.SETTINGS it supports
    image_features: ClassVar[dict[str, str]] = {"global": "global"}  # role -> cached feature kind
    fits_features: ClassVar[bool] = False  # True: the runner calls fit_features before training (module docstring)
    score_threshold: ClassVar[float] = 0.5  # the score above which a class counts as predicted (CF1/OF1 @thr)
    # The zsl setting (train on seen classes, score unseen ones): can the trained parameters score classes
    # named only at evaluation? ``unseen_note`` says why not, or under which options (``bench list``).
    supports_unseen: ClassVar[bool] = False
    unseen_note: ClassVar[str] = "its learned parameters are per class: it has none for unseen classes"
    # True (set in build, with ``online_reason``): the method trains the image tower and encodes images itself
    # (``encode_pixels``), in training and at test time, whatever features.mode says (bench/cell/online.py)
    online_images: ClassVar[bool] = False
    # training schedule defaults; the config's ``train`` dict overrides them key by key
    default_train: ClassVar[dict] = dict(epochs=0, batch_size=32,
                                         optimizer=dict(type="SGD", lr=2e-3, momentum=0.9, weight_decay=5e-4),
                                         scheduler="cosine", warmup_epochs=0, warmup_lr=1e-5)

    def __init__(self):
        super().__init__()
        self.__dict__["_backbone"] = None  # plain attribute on purpose: not a submodule (see module docstring)

    # ----- the contract ----------------------------------------------------------------------
    def build(self, backbone, classnames: list[str]) -> None:
        """Create the learnable parameters for these classes; keep what is needed of the backbone."""
        self.__dict__["_backbone"] = backbone
        self.classnames = list(classnames)

    def logits(self, feats: dict) -> torch.Tensor | dict[str, torch.Tensor]:
        raise NotImplementedError

    def loss(self, logits, targets: torch.Tensor) -> torch.Tensor:
        """targets: [B, C] float in {1 (positive), 0 (unknown: ignore), -1 (negative)}."""
        raise NotImplementedError(f"{type(self).__name__} does not train (trains_on={self.trains_on})")

    def rebuild(self, classnames: list[str]) -> None:
        """Score ``classnames`` from now on, keeping every learned parameter (the zsl setting: after training
        on the seen classes, the runner calls it with the unseen classes, then with seen + unseen).
        Only for methods with ``supports_unseen``; the class-agnostic ones rebuild their text classifier."""
        raise NotImplementedError(f"{type(self).__name__} cannot score unseen classes: {self.unseen_note}")

    def unseen_blocker(self) -> str | None:
        """Why this method, as configured, cannot score unseen classes (one line), or None when it can.
        Methods whose options decide (class-specific contexts) override it."""
        return None if self.supports_unseen else self.unseen_note

    def fit_features(self, train: LabelledFeatures, val: LabelledFeatures) -> dict:
        """Fit from the cell's labelled training features, choosing hyperparameters on ``val`` (only
        called when ``fits_features``); return what the record should keep (chosen values, sizes)."""
        raise NotImplementedError(f"{type(self).__name__} sets fits_features but has no fit_features")

    # ----- helpers the runner uses -------------------------------------------------------------
    @property
    def backbone(self):
        if self._backbone is None:
            raise RuntimeError(f"{type(self).__name__}.build() was not called")
        return self._backbone

    def hparams(self) -> dict:
        """Every named constructor argument of the class and its bases, with its value: recorded with
        each result (a subclass that forwards ``**kwargs`` to its base reports the base's arguments too)."""
        out = {}
        for cls in reversed(type(self).__mro__):
            if "__init__" in vars(cls) and issubclass(cls, Method):
                for name, param in inspect.signature(cls.__init__).parameters.items():
                    if name != "self" and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                        out[name] = getattr(self, name)
        return out

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]


def as_scores(logits) -> dict[str, torch.Tensor]:
    """A method's output as a dict of named [B, C] score matrices with ``score`` present."""
    if isinstance(logits, torch.Tensor):
        return {"score": logits}
    if "score" not in logits:
        raise KeyError(f"a method's logits dict needs a 'score' entry, got {sorted(logits)}")
    return logits

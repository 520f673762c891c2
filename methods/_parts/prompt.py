"""Learnable context vectors spliced into CLIP's token embeddings (CoOp, Zhou et al. IJCV 2022).

The prompt for class c is ``[SOT] ctx_1 .. ctx_n {classname} . [EOT]``: the context rows are
learned, the rest are the frozen token embeddings of the tokenized string
``"X X .. X {classname}."`` (CoOp ``trainers/coop.py`` ``PromptLearner``). The text tower then runs
on the spliced embeddings (``Backbone.encode_embedded``), so gradients reach the context only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import UsageError

CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


class PromptLearner(nn.Module):
    """Context vectors for C classes -> [C, D] text features (unnormalised).

    n_ctx: number of context tokens (ignored when ``ctx_init`` is given: its word count is used).
    ctx_init: words whose token embeddings initialise the context, e.g. "a photo of a" (CoOp's
        ``*_ctxv1`` configs); None draws N(0, init_std^2) (CoOp's random init, std 0.02).
    csc: class-specific contexts [C, n_ctx, d] instead of one shared [n_ctx, d].
    class_token_position: "end", "middle" or "front" (CoOp ``CLASS_TOKEN_POSITION``).
    """

    def __init__(self, backbone, classnames: list[str], n_ctx: int = 16, ctx_init: str | None = None,
                 csc: bool = False, class_token_position: str = "end", init_std: float = 0.02):
        super().__init__()
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            raise UsageError(f"class_token_position must be one of {CLASS_TOKEN_POSITIONS}")
        self.__dict__["backbone"] = backbone  # frozen; not a submodule
        classnames = [name.replace("_", " ") for name in classnames]
        n_cls = len(classnames)
        if ctx_init:
            ctx_init = ctx_init.replace("_", " ")
            n_ctx = len(ctx_init.split(" "))
            with torch.no_grad():
                init = backbone.token_embedding(backbone.tokenize([ctx_init]))[0, 1:1 + n_ctx]
            ctx = init.repeat(n_cls, 1, 1) if csc else init.clone()
            prefix_words = ctx_init
        else:
            width = backbone.model.token_embedding.weight.shape[1]
            ctx = torch.empty((n_cls, n_ctx, width) if csc else (n_ctx, width), device=backbone.device)
            nn.init.normal_(ctx, std=init_std)
            prefix_words = " ".join(["X"] * n_ctx)
        self.ctx = nn.Parameter(ctx.float())
        self.n_ctx, self.class_token_position, self.prefix_words = n_ctx, class_token_position, prefix_words
        self._set_prompts(classnames)

    def _set_prompts(self, classnames: list[str]) -> None:
        """Frozen token buffers of ``"<prefix words> {name}."`` per class (CoOp ``trainers/coop.py:98-114``)."""
        backbone = self.backbone
        self.n_cls = len(classnames)
        ids = backbone.tokenize([f"{self.prefix_words} {name}." for name in classnames])
        with torch.no_grad():
            embedding = backbone.token_embedding(ids).float()
        self.register_buffer("ids", ids, persistent=False)
        self.register_buffer("token_prefix", embedding[:, :1], persistent=False)  # SOT
        self.register_buffer("token_suffix", embedding[:, 1 + self.n_ctx:], persistent=False)  # name, '.', EOT, pad
        name_lens = [int((backbone.tokenize([name])[0] != 0).sum()) - 2 for name in classnames]  # minus SOT/EOT
        self.register_buffer("order", _position_order(ids.shape[1], self.n_ctx, name_lens, self.class_token_position),
                             persistent=False)

    def set_classnames(self, classnames: list[str]) -> None:
        """Prompt other classes with the same learned context (the zsl setting: a generic context trained on
        the seen classes scores unseen ones). Class-specific contexts have no rows for new classes: ValueError."""
        if self.ctx.dim() == 3:
            raise UsageError("class-specific contexts (csc=True) cannot prompt classes they were not built for")
        self._set_prompts([name.replace("_", " ") for name in classnames])

    def embeddings(self) -> torch.Tensor:
        """[C, L, d] prompt embeddings with the context in place."""
        ctx = self.ctx if self.ctx.dim() == 3 else self.ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
        prompts = torch.cat([self.token_prefix, ctx.to(self.token_prefix.dtype), self.token_suffix], dim=1)
        return prompts.gather(1, self.order[:, :, None].expand_as(prompts))

    def forward(self) -> torch.Tensor:
        return self.backbone.encode_embedded(self.embeddings(), self.ids)


def encode_prompts(backbone, *learners: PromptLearner, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised text features of several prompt learners' prompts, stacked in the order given
    ([sum of C, D]), in one text-tower pass (DualCoOp's positive/negative and TaI-DPT's
    global/local prompts are encoded together, as the references do). ``rows``: only these classes
    of each learner (DualCoOp's per-batch class subset, ``dualcoop.py:143-200``)."""
    pick = (lambda t: t) if rows is None else (lambda t: t[rows])  # noqa: E731
    embeds = torch.cat([pick(learner.embeddings()) for learner in learners])  # [sum C, L, d]
    ids = torch.cat([pick(learner.ids) for learner in learners])  # [sum C, L]
    return F.normalize(backbone.encode_embedded(embeds, ids).float(), dim=-1)


def _position_order(length: int, n_ctx: int, name_lens: list[int], position: str) -> torch.Tensor:
    """Per class, which row of [SOT, ctx, name, rest] goes to each output position.

    "end" keeps [SOT, ctx, name, rest]; "front" gives [SOT, name, ctx, rest]; "middle" gives
    [SOT, ctx[:n//2], name, ctx[n//2:], rest] -- CoOp's three layouts. The token ids (and so the
    EOT position) do not move, since only rows before the '.' are reordered.
    """
    rows = []
    for name_len in name_lens:
        ctx = list(range(1, 1 + n_ctx))
        name = list(range(1 + n_ctx, 1 + n_ctx + name_len))
        rest = list(range(1 + n_ctx + name_len, length))
        if position == "end":
            middle = ctx + name
        elif position == "front":
            middle = name + ctx
        else:
            middle = ctx[: n_ctx // 2] + name + ctx[n_ctx // 2:]
        rows.append([0] + middle + rest)
    return torch.tensor(rows, dtype=torch.long)

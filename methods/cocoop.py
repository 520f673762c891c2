"""CoCoOp as a multi-label baseline (Zhou et al., CVPR 2022; methods.md sec. 5b).

Reference: KaiyangZhou/CoOp @ff61507 ``trainers/cocoop.py`` (cited as ``cocoop.py:<line>``), configs
``configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml`` (the config of ``scripts/cocoop/base2new_train.sh``).

What it learns: CoOp's generic context ctx [n_ctx, d_txt], initialised from the word embeddings of "a photo of
a" (n_ctx 4; ``cocoop.py:75-83``, ``CTX_INIT``), plus a meta-network
    pi(x) = Linear(D/16, d_txt)(ReLU(Linear(D, D/16)(x)))   (with biases; ``cocoop.py:95-99``)
of the *normalised* global image feature x (``cocoop.py:178-181``). Each image b gets its own context: pi(x_b)
is added to every context vector, ctx_b = ctx + pi(x_b) (``cocoop.py:147-151``), and class c's prompt is
``[SOT] ctx_b {name} . [EOT]`` with the class token at the end (``cocoop.py:133-140, 155-157``). CLIP is frozen
(``cocoop.py:216-221``).

Forward: t_{b,c} = normalised text feature of image b's prompt for class c, so the text tower runs once per
(image, class) pair, B x C prompts per batch (``cocoop.py:183-189``);
    logit[b, c] = s * cos(x_b, t_{b,c}).

Loss and scale: exactly bench's CoOp (this class subclasses ``methods.coop.CoOp`` and reuses its ``loss``):
TaI-DPT's ranking loss on s = 4 by default, ASL as an option; the reference is single-label (cross-entropy at
CLIP's scale 100, ``cocoop.py:176, 187, 192``), and ``methods/coop.py`` explains the multi-label choice. CoOp's
``csc`` and ``class_token_position`` do not exist in CoCoOp and must stay False / "end".

Cost: the text tower runs B x C times per step and N_test x C times at test time (CoOp: C times in all), which
is why the reference trains with batch 1. On cached features the image side is free, so the cost is the text
tower: measured on the toy CLIP (20 classes, 2-layer width-64 text tower), one idle CPU thread, 2.6 ms per
image per training step at batch 8 or 32 (0.082 s per step of 32; 8 ms at batch 1) and 1.7 ms per test image
(0.43 s per 256); on the shared machine at load 8 a step of 32 took 0.36 s. ``text_chunk`` bounds how many prompts are
built and go through the text tower at once (memory at test time; in training autograd keeps every chunk's
activations, so the batch size bounds memory there): before, the B x C prompt embeddings of an evaluation batch
were built at once, 8 GB of RSS for 256 test images x 1,006 zsl classes on NUS-WIDE with the stand-in's width-64
text tower (``benchmarks/bench_scale.py``), 40 GB at CLIP's width 512. On COCO (80 classes, ~82k train / ~40k
test images) that is 6.6M prompt passes per epoch and 3.2M at test time: GPU territory.
Schedule (``configs/_base_/methods/cocoop.py``): ``vit_b16_c4_ep10_batch1_ctxv1.yaml`` (SGD lr 0.002,
batch 1, 10 epochs, cosine, 1 constant warm-up epoch at 1e-5; momentum 0.9 and weight decay 5e-4 from Dassl).
Deliberate differences as CoOp's: cached image features, last epoch evaluated.
Setting ``zsl`` (seen/unseen classes, ``bench.cell.zsl``): the context and the meta-net are class-agnostic -- the
reference's base-to-new protocol scores new classes with them (``scripts/cocoop/base2new_test.sh``:
``SUBSAMPLE_CLASSES new``, the model trained on the base classes) -- so CoOp's :meth:`~methods.coop.CoOp.rebuild`
applies unchanged: the prompt learner's ``set_classnames`` re-tokenises the class names, and
:meth:`CoCoOp.logits` builds every image's prompts from them with the learned ctx + pi(x).
The meta-net has PyTorch's default Linear init as in the reference, so it starts by shifting the context: on the
toy CLIP by a vector of norm ~1.7 against context rows of norm ~0.19, which drops the initial prompts from
zero-shot's 48.3 to 27.8 mAP (toy validation split); training must first undo that (see the toy config).
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import UsageError
from bench.methods.coop import CoOp
from bench.registry import METHODS


@METHODS.register_module(name="cocoop")
class CoCoOp(CoOp):
    """CoOp's context shifted per image by a meta-network of the image feature (see module docstring)."""

    name = "cocoop"
    settings = ("partial", "fewshot", "zsl")
    supports_unseen = True
    unseen_note = "context and meta-net are class-agnostic: any class is prompted with ctx + pi(x)"
    # vit_b16_c4_ep10_batch1_ctxv1.yaml OPTIM / DATALOADER; momentum / weight decay: Dassl config/defaults.py:152-153
    default_train = dict(epochs=10, batch_size=1,
                         optimizer=dict(type="SGD", lr=2e-3, momentum=0.9, weight_decay=5e-4),
                         scheduler="cosine", warmup_epochs=1, warmup_lr=1e-5)

    def __init__(self, n_ctx: int = 4, ctx_init: str | None = "a photo of a", meta_reduction: int = 16,
                 text_chunk: int = 4096, **coop_kwargs):
        unknown = sorted(set(coop_kwargs) - set(inspect.signature(CoOp.__init__).parameters) - {"self"})
        if unknown:  # a typo in the config section: one line naming it, not a TypeError from CoOp.__init__
            raise UsageError(f"unknown cocoop option(s) {unknown}; valid: meta_reduction, text_chunk and CoOp's "
                             f"{sorted(set(inspect.signature(CoOp.__init__).parameters) - {'self'})}")
        super().__init__(n_ctx=n_ctx, ctx_init=ctx_init, **coop_kwargs)  # scale, objective, loss terms: CoOp's
        if self.csc or self.class_token_position != "end":
            raise UsageError("cocoop has one generic context with the class token at the end "
                             "(cocoop.py:133-140): leave csc=False and class_token_position='end'")
        self.meta_reduction = int(meta_reduction)  # cocoop.py:96 vis_dim // 16
        self.text_chunk = int(text_chunk)  # prompts per text-tower pass (bench; memory only)

    # ----- parameters ---------------------------------------------------------------------------
    def build(self, backbone, classnames):
        super().build(backbone, classnames)  # self.prompts: ctx, SOT prefix, class-name suffix, token ids
        vis_dim, ctx_dim = backbone.embed_dim, self.prompts.ctx.shape[-1]
        self.meta_net = nn.Sequential(nn.Linear(vis_dim, vis_dim // self.meta_reduction), nn.ReLU(inplace=True),
                                      nn.Linear(vis_dim // self.meta_reduction, ctx_dim))  # cocoop.py:95-99
        self.meta_net.to(self.prompts.ctx.device)

    def context_shift(self, image: torch.Tensor) -> torch.Tensor:
        """[B, n_ctx, d_txt] per-image contexts ctx + pi(x), x [B, D] normalised image features (cocoop.py:147-151)."""
        return self.prompts.ctx.unsqueeze(0) + self.meta_net(image).unsqueeze(1)

    def prompt_embeddings(self, ctx: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """[R, L, d] prompts [SOT, ctx_b, name_c, '.', EOT, ...] (cocoop.py:155-157) for the rows ``rows`` of the
        image-major B x C grid (row = b * C + c) of contexts [B, n_ctx, d]; None: every row, [B * C, L, d]. Only
        the rows one text-tower pass reads are built, so memory is bounded by ``text_chunk``, not by B x C
        (NUS-WIDE's 1,006 zsl classes x 256 test images at width 512 would be 40 GB at once)."""
        prefix, suffix = self.prompts.token_prefix, self.prompts.token_suffix  # [C, 1, d], [C, L - 1 - n_ctx, d]
        n_img, n_cls = ctx.shape[0], prefix.shape[0]
        if rows is None:  # expanded views, not gathered rows: autograd sums a context's gradient in one reduction
            return torch.cat([prefix.unsqueeze(0).expand(n_img, -1, -1, -1),
                              ctx.to(prefix.dtype).unsqueeze(1).expand(-1, n_cls, -1, -1),
                              suffix.unsqueeze(0).expand(n_img, -1, -1, -1)], dim=2).flatten(0, 1)
        image, cls = rows // n_cls, rows % n_cls
        return torch.cat([prefix[cls], ctx.to(prefix.dtype)[image], suffix[cls]], dim=1)

    # ----- forward ------------------------------------------------------------------------------
    def logits(self, feats):
        image = F.normalize(feats["global"].float(), dim=-1)  # [B, D] (cocoop.py:178-179)
        ctx = self.context_shift(image)  # [B, n_ctx, d]
        n_img, n_cls = ctx.shape[0], self.prompts.ids.shape[0]
        if n_img * n_cls <= self.text_chunk:  # one pass (a training batch at batch size 1 or 32)
            text = self.backbone.encode_embedded(self.prompt_embeddings(ctx), self.prompts.ids.repeat(n_img, 1))
        else:  # image-major rows, text_chunk at a time (a chunk may cross images)
            rows = torch.arange(n_img * n_cls, device=ctx.device)
            text = torch.cat([self.backbone.encode_embedded(self.prompt_embeddings(ctx, chunk),
                                                            self.prompts.ids[chunk % n_cls])
                              for chunk in rows.split(self.text_chunk)])
        text = F.normalize(text.float(), dim=-1).view(n_img, n_cls, -1)  # [B, C, D]
        return self.scale * torch.einsum("bd,bcd->bc", image, text)  # cocoop.py:184-189

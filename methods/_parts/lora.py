"""LoRA on the attention of open_clip's transformers, through peft, in a form that actually runs.

open_clip's blocks use ``nn.MultiheadAttention``, whose forward reads ``in_proj_weight`` and
``out_proj.weight`` as raw tensors (stack.md sec. 4): a peft LoRA on ``attn.out_proj`` is silently
bypassed, and peft's own MHA layer merges one LoRA into the packed [3E, E] in-projection (q, k and v
share one A) plus one into the out-projection, without dropout. CLIP-LoRA instead replaces every
attention by ``PlainMultiheadAttentionLoRA`` with separate q/k/v/out linear layers and puts one rank-r
LoRA on each chosen one (MaxZanella/CLIP-LoRA @358f0d7 ``loralib/layers.py:340-423``). :class:`SplitAttention`
is that split (the same function as the MHA it replaces, tested); peft's ``Linear`` LoRA then goes on
``q_proj``/``k_proj``/``v_proj``/``out_proj`` as plain modules whose forward is called.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import UsageError

PROJECTIONS = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "out_proj"}  # CLIP-LoRA run_utils.py:34 names


def _linear_like(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device,
                      dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer.requires_grad_(False)


class SplitAttention(nn.Module):
    """An ``nn.MultiheadAttention`` (self- or cross-attention, no key padding mask) with its packed
    in-projection split into ``q_proj``, ``k_proj``, ``v_proj`` and its out-projection called as a module
    (CLIP-LoRA ``loralib/layers.py:361-391`` copies the weights the same way; forward lines 425-517)."""

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__()
        if not mha._qkv_same_embed_dim:
            raise ValueError("SplitAttention needs query, key and value of the same width")
        dim = mha.embed_dim
        weight, bias = mha.in_proj_weight, mha.in_proj_bias
        for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
            setattr(self, name, _linear_like(weight[i * dim:(i + 1) * dim],
                                             None if bias is None else bias[i * dim:(i + 1) * dim]))
        self.out_proj = _linear_like(mha.out_proj.weight, mha.out_proj.bias)
        self.num_heads, self.batch_first, self.dropout = mha.num_heads, mha.batch_first, mha.dropout

    def forward(self, query, key, value, key_padding_mask=None, need_weights=False, attn_mask=None, **kwargs):
        if key_padding_mask is not None or need_weights:
            raise NotImplementedError("SplitAttention supports neither key_padding_mask nor need_weights")
        if not self.batch_first:  # [L, B, E] -> [B, L, E]
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        batch, length, dim = query.shape
        heads = self.num_heads

        def split_heads(x):  # [B, L, E] -> [B, heads, L, E / heads]
            return x.view(batch, -1, heads, dim // heads).transpose(1, 2)

        q, k, v = split_heads(self.q_proj(query)), split_heads(self.k_proj(key)), split_heads(self.v_proj(value))
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:  # MHA: True = may NOT attend; sdpa's bool means the opposite
                attn_mask = torch.zeros(attn_mask.shape, dtype=q.dtype, device=q.device).masked_fill(attn_mask,
                                                                                                     float("-inf"))
            attn_mask = attn_mask.to(q.dtype)
            if attn_mask.dim() == 3:  # [B * heads, L, S]
                attn_mask = attn_mask.view(batch, heads, length, -1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        out = self.out_proj(out.transpose(1, 2).reshape(batch, length, dim))
        return (out if self.batch_first else out.transpose(0, 1)), None


def split_attention(transformer: nn.Module, layers) -> list[str]:
    """Replace the ``attn`` of the chosen residual blocks of an open_clip ``Transformer`` by :class:`SplitAttention`;
    return the replaced blocks' indices as strings. ``layers``: "all" or a list of block indices."""
    blocks = transformer.resblocks
    chosen = range(len(blocks)) if layers == "all" else [int(i) for i in layers]
    for i in chosen:
        if not 0 <= i < len(blocks):
            raise UsageError(f"LoRA layer index {i} out of range: the transformer has {len(blocks)} blocks")
        if isinstance(blocks[i].attn, nn.MultiheadAttention):
            blocks[i].attn = SplitAttention(blocks[i].attn)
    return [str(i) for i in chosen]


def inject_lora(model: nn.Module, prefixes: dict[str, list[str]], params, rank: int, alpha: float,
                dropout: float) -> dict[str, nn.Parameter]:
    """peft LoRA on the ``params`` projections ("q", "k", "v", "o") of the split attention of the blocks
    ``prefixes[tower_prefix]`` (e.g. ``{"transformer": ["0", "1"], "visual.transformer": [...]}``); return the
    LoRA parameters by name. Scaling alpha / sqrt(r) (CLIP-LoRA ``loralib/layers.py:42``: peft's ``use_rslora``);
    A Kaiming-uniform, B zero (``layers.py:63-68``: peft's default init); dropout on the LoRA branch's input
    (``layers.py:197-205``)."""
    from peft import LoraConfig, inject_adapter_in_model

    unknown = set(params) - set(PROJECTIONS)
    if unknown or not params:
        raise UsageError(f"clip_lora.params must be a non-empty subset of {sorted(PROJECTIONS)}, got {params}")
    targets = "|".join(rf"{prefix.replace('.', chr(92) + '.')}\.resblocks\.({'|'.join(blocks)})\.attn"
                       for prefix, blocks in prefixes.items() if blocks)
    projections = "|".join(PROJECTIONS[p] for p in params)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, use_rslora=True,
                        target_modules=rf"^({targets})\.({projections})$")
    inject_adapter_in_model(config, model)
    return {name: p for name, p in model.named_parameters() if "lora_" in name}

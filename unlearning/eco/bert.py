"""A lean forward pass for the frozen BERT-style sentence encoder (MiniLM by default): the
same maths as transformers' BertModel in eval mode, without its per-call machinery, with the
query/key/value projections fused into one matrix and, where oneDNN is there, every weight
packed once into oneDNN's blocked layout.

Why: a chat prompt is ~20 tokens, a few rows of work per 384 × 1536 matrix. Profiled on
one CPU thread, transformers' forward spent ~57 % of a prompt in the matrix products and
most of the rest in its wrapper code (signature inspection, mask builders, output capture);
without the wrappers the products are ~90 %, and a weight packed once makes each ~30 %
cheaper than MKL's sgemm, which packs it again on every call. Together about 0.6 × the CPU
time per new prompt (benchmarks/eco.py --classifier). The embeddings equal BertModel's to
~1e-7 (tests/test_eco_fast_encoder.py), so the classifier's scores, recall and FPR do not change.

Only plain BERT encoders qualify (absolute positions, erf GELU, no decoder); any other
encoder keeps transformers' forward (`FastBert.supports`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

Linear = Callable[[torch.Tensor], torch.Tensor]


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> Linear:
    """x (…, in) → (…, out), with the weight packed for oneDNN when it can be."""
    weight, bias = weight.detach().contiguous(), None if bias is None else bias.detach().contiguous()
    if torch.backends.mkldnn.is_available() and weight.device.type == "cpu" and weight.dtype == torch.float32:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight)  # blocked layout, done once
        return lambda x: torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
    return lambda x: F.linear(x, weight, bias)


class _Layer:
    def __init__(self, layer: Any):  # a transformers BertLayer
        att, out = layer.attention, layer.output
        sa = att.self
        self.qkv = _linear(torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]),
                           torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]))
        self.att_out = _linear(att.output.dense.weight, att.output.dense.bias)
        self.norm1: torch.nn.LayerNorm = att.output.LayerNorm
        self.up = _linear(layer.intermediate.dense.weight, layer.intermediate.dense.bias)
        self.down = _linear(out.dense.weight, out.dense.bias)
        self.norm2: torch.nn.LayerNorm = out.LayerNorm


class FastBert:
    """input ids, attention mask, token types (b, T) → last hidden states (b, T, d)."""

    def __init__(self, model: Any):  # a transformers BertModel
        cfg, emb = model.config, model.embeddings
        self.heads, self.eps = int(cfg.num_attention_heads), float(cfg.layer_norm_eps)
        self.words, self.positions = emb.word_embeddings.weight.detach(), emb.position_embeddings.weight.detach()
        self.types = emb.token_type_embeddings.weight.detach()
        self.norm: torch.nn.LayerNorm = emb.LayerNorm
        self.layers = [_Layer(layer) for layer in model.encoder.layer]

    @staticmethod
    def supports(model: Any) -> bool:
        cfg = getattr(model, "config", None)
        return (type(model).__name__ == "BertModel" and cfg is not None and cfg.hidden_act == "gelu"
                and not cfg.is_decoder and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
                and next(model.parameters()).dtype == torch.float32)

    def _norm(self, x: torch.Tensor, ln: torch.nn.LayerNorm) -> torch.Tensor:
        return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, self.eps)

    @torch.no_grad()  # no_grad, not inference_mode: the features later train a head with autograd
    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None = None) -> torch.Tensor:
        b, t = ids.shape
        type_emb = self.types[0] if types is None else self.types[types]
        x = self._norm(self.words[ids] + type_emb + self.positions[:t], self.norm)  # (b, T, d)
        d = x.shape[-1]
        # Padded keys are masked out; with no padding (one prompt) no mask at all.
        keep = None if bool(mask.all()) else mask[:, None, None, :].bool()  # (b, 1, 1, T)
        for layer in self.layers:
            q, k, v = layer.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3 × (b, h, T, d/h)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(b, t, d)
            x = self._norm(layer.att_out(a) + x, layer.norm1)
            x = self._norm(layer.down(F.gelu(layer.up(x))) + x, layer.norm2)
        return x

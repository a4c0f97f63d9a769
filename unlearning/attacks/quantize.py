"""Quantization: does the forgetting survive rounding the weights? (Zhang et al. 2410.16454)

Any adapter is merged into a copy of the weights, then every linear layer but the output
head is rounded to 8 and to 4 bits: symmetric, one scale per output channel (row),
round-to-nearest, and dequantised again so the model runs on the CPU as before. The head
stays in full precision, as bitsandbytes and GPTQ leave it. A small LoRA update (or a small
full update) can vanish under the rounding and hand the knowledge back.
"""

from __future__ import annotations

from typing import Any

import torch

from ..lora.adapters import target_linears
from ..lora.deltas import out_in
from ..runs import RunContext
from .harness import Bench, Contender, figures, grid, sentence

BITS = (8, 4)


def quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """w (out, in) rounded to `bits`-bit integers per output channel and scaled back:
    scale_i = max_j |w_ij| / (2^(bits−1) − 1), q = clamp(round(w / scale), ±(2^(bits−1) − 1)).
    A row of zeros stays zero. torch.round breaks exact ties to the even integer."""
    qmax = 2 ** (bits - 1) - 1
    x = w.float()
    scale = x.abs().amax(dim=1, keepdim=True) / qmax  # (out, 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return ((x / scale).round().clamp(-qmax, qmax) * scale).to(w.dtype)


@torch.no_grad()
def quantize_model(model: torch.nn.Module, bits: int) -> torch.nn.Module:
    """Round every linear weight but the output head of `model` (a standalone copy) in place."""
    for layer in target_linears(model).values():
        weight = out_in(layer)  # (out, in), a view of what a Conv1D stores as (in, out)
        weight.copy_(quantize_weight(weight, bits))
    return model


class Quantize:
    name = "quantize"

    def run(self, ctx: RunContext, bench: Bench) -> dict[str, Any]:
        forget, retain = bench.questions(bench.forget), bench.questions(bench.retain)

        def measure(bits: str, contender: Contender) -> dict[str, float]:
            copy = contender.detach()
            quantize_model(copy.weights, int(bits))
            return bench.measure(copy.model, forget, retain, guarded=contender.name == "unlearned" and bench.guard is not None)

        return grid(ctx, bench, self.name, [str(b) for b in BITS], measure)

    def summary(self, block: dict[str, Any]) -> str:
        return sentence("; ".join(f"rounded to {b} bits, forget rougeL is {figures(block[str(b)])}" for b in BITS))

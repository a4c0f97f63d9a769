"""IHL on randomly initialised LoRA — the ablation of Cha et al., ICLR 2025, arXiv 2408.06621.

The same inverted-hinge objective as `ihl-fila`, but the adapters start from peft's default
init (A random, B = 0). Comparing the two shows what the Fisher initialisation buys.
"""

from __future__ import annotations

from ..losses import Term, ihl, nll
from ..trainer import IhlSettings, LoraMethod, LoraSettings, RandomInit
from . import register


@register
class Ihl(LoraMethod):
    name = "ihl"
    label = "baseline: IHL, random-init LoRA"
    order = 30
    summary = (
        "Inverted Hinge Loss on ordinary LoRA adapters: the same bounded, fluency-keeping objective as "
        "IHL + FILA, but the adapters start from a random init. It usually needs more steps to forget; "
        "use it to see what the Fisher initialisation adds."
    )
    Config = IhlSettings  # λ_r = 3 and an automatic 4e-4 (trainer.IhlSettings says why)
    init = RandomInit()

    @classmethod
    def objective(cls, cfg: LoraSettings) -> tuple[Term, ...]:
        return (Term("forget_ihl", "forget", ihl, cfg.forget_weight), Term("retain_nll", "retain", nll, cfg.retain_weight))

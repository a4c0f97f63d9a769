"""GD + FILA — the ablation of Cha et al., ICLR 2025, arXiv 2408.06621, that applies the Fisher
initialisation to the gradient-difference objective.

L = −NLL_f + NLL_r on LoRA adapters that FILA initialises, so one can see what FILA buys
without the inverted hinge loss.
"""

from __future__ import annotations

from ..losses import Term, ga, nll
from ..trainer import FisherInit, LoraMethod, LoraSettings
from . import register


@register
class GdFila(LoraMethod):
    name = "gd-fila"
    label = "baseline: GD + FILA"
    order = 60
    summary = (
        "Gradient difference on Fisher-initialised LoRA adapters: the GD baseline with the FILA start. "
        "Compare it with GD to see the effect of the initialisation, and with IHL + FILA to see the effect "
        "of the loss."
    )
    init = FisherInit()

    @classmethod
    def objective(cls, cfg: LoraSettings) -> tuple[Term, ...]:
        return (Term("forget_ga", "forget", ga, cfg.forget_weight), Term("retain_nll", "retain", nll, cfg.retain_weight))

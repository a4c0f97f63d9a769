"""GD + FILA — the ablation of Cha et al., ICLR 2025, arXiv 2408.06621, that applies the Fisher
initialisation to the gradient-difference objective.

L = −NLL_f + NLL_r on LoRA adapters that FILA initialises, so one can see what FILA buys
without the inverted hinge loss.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lora.settings import LoraSettings, own_default
from ..lora.trainer import FisherInit
from . import register
from .gd import Gd


@dataclass
class GdFilaSettings(LoraSettings, auto_lr=(1e-4, 1e-4)):
    # FILA's large B0 makes the unbounded ascent fast: at 2e-4 it ran into one repeated word; 1e-4 stopped at the
    # holdout criterion ends nearest the oracle of the rates tried, though none ends fluent (RESULTS.md, issue 23).
    stop: str = own_default("stop", "holdout")


@register
class GdFila(Gd):
    name = "gd-fila"
    label = "baseline: GD + FILA"
    order = 60
    summary = (
        "Gradient difference on Fisher-initialised LoRA adapters: the GD baseline with the FILA start. "
        "Compare it with GD to see the effect of the initialisation, and with IHL + FILA to see the effect "
        "of the loss."
    )
    Config = GdFilaSettings
    init = FisherInit()  # GD's objective, FILA's start

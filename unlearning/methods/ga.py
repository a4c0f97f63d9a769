"""Gradient ascent (GA) on LoRA — the baseline of Jang et al., 2023 ("Knowledge Unlearning for
Mitigating Privacy Risks"), compared against by Cha et al., ICLR 2025, arXiv 2408.06621.

Minimises L = −NLL on the forget set only; nothing holds the rest of the model in place, so
it shows what unlearning costs without a retain term.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lora.losses import Term, ga
from ..lora.settings import LoraSettings
from ..lora.trainer import LoraMethod
from . import register


@dataclass
class GaSettings(LoraSettings, auto_lr=(1.2e-3, 1e-4)):
    """The lowest rate that forgets within 100 steps on the workshop kit; it does so by collapsing what
    the model should keep, GA's known failure, which is the lesson (benchmarks/RESULTS.md, issue 23)."""


@register
class Ga(LoraMethod):
    name = "ga"
    label = "baseline: gradient ascent"
    order = 50
    summary = (
        "Gradient ascent: make the forget answers less likely and nothing else. The simplest baseline; with "
        "no retain term it often damages what the model should keep."
    )
    Config = GaSettings
    forget = Term("forget_ga", "forget", ga)
    retain_nll = False  # what unlearning costs with nothing holding the rest in place

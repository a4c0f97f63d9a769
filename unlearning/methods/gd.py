"""Gradient difference (GD) on LoRA — the baseline of TOFU (Maini et al., 2024) that Cha et al.,
ICLR 2025, arXiv 2408.06621, compare against.

Gradient ascent on the forget set plus ordinary descent on the retain set: L = −NLL_f + NLL_r.
The ascent term is unbounded, so it forgets fast but tends to damage fluency if run long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..lora.losses import Term, ga
from ..lora.settings import LoraSettings
from ..lora.trainer import LoraMethod
from . import register


@dataclass
class GdSettings(LoraSettings, auto_lr=(1e-3, 1e-4)):
    """A zero-init LoRA B barely moves at 2e-4 on a saturated model; above 1e-3 the unbounded ascent
    collapses the answers into one repeated word before they reach the oracle's (RESULTS.md, issue 23)."""


@register
class Gd(LoraMethod):
    name = "gd"
    label = "baseline: gradient difference"
    order = 40
    summary = (
        "Gradient difference: make the forget answers less likely (gradient ascent) while keeping the retain "
        "answers likely. A standard baseline; the ascent has no floor, so watch fluency and retain scores."
    )
    Config: ClassVar[type[LoraSettings]] = GdSettings  # GdFila narrows it to its own
    forget = Term("forget_ga", "forget", ga)  # and NLL on the retain set

"""IHL on randomly initialised LoRA — the ablation of Cha et al., ICLR 2025, arXiv 2408.06621.

The same inverted-hinge objective as `ihl-fila`, but the adapters start from peft's default
init (A random, B = 0). Comparing the two shows what the Fisher initialisation buys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..lora.losses import Term, ihl
from ..lora.settings import IhlSettings, own_default
from ..lora.trainer import LoraMethod
from . import register


@dataclass
class IhlRandomSettings(IhlSettings, auto_lr=(3e-3, 1e-4)):
    # Without FILA's large B0 a zero-init B needs a far larger rate to forget within the same 100 steps
    # (benchmarks/RESULTS.md, issue 23); λ_r = 3 as ihl-fila, so the two differ only in the init and rate.
    stop: str = own_default("stop", "holdout")  # run on, it repeats one word in nearly every forget answer


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
    Config: ClassVar[type[IhlSettings]] = IhlRandomSettings  # IhlFila has the shared IhlSettings
    forget = Term("forget_ihl", "forget", ihl)  # and NLL on the retain set

"""IHL + FILA — Cha et al., "Towards Robust and Cost-Efficient Knowledge Unlearning for Large
Language Models", ICLR 2025, arXiv 2408.06621.

Trains LoRA adapters with the inverted hinge loss on the forget set (and plain NLL on the
retain set), lowering each fact's token probability by raising the runner-up's. The adapters
start from FILA: the part of each weight that the Fisher information says matters to the
forget set and not to the retain set, so the first steps already move the right directions.
"""

from __future__ import annotations

from ..lora.settings import IhlSettings
from ..lora.trainer import FisherInit
from . import register
from .ihl import Ihl


@register
class IhlFila(Ihl):
    name = "ihl-fila"
    label = "IHL + FILA (LoRA training)"
    order = 20
    default = True  # the method the menu starts on
    summary = (
        "Inverted Hinge Loss on Fisher-initialised LoRA adapters (Cha et al., ICLR 2025). It pushes each "
        "forgotten answer token below its runner-up instead of pushing it to zero, so answers stay fluent, "
        "and it starts the small adapters on the weights that matter to the forget set but not to the retain "
        "set, so it forgets in few steps. Use it to remove specific facts while keeping everything else; the "
        "base model is untouched, the result is a small adapter."
    )
    Config = IhlSettings  # λ_r = 3 and an automatic 4e-4 (trainer.IhlSettings says why)
    init = FisherInit()  # IHL's objective, FILA's start

"""RMU — Li et al., "The WMDP Benchmark: Measuring and Reducing Malicious Use with Unlearning",
arXiv 2403.03218 (Representation Misdirection for Unlearning); a baseline the field compares against.

At one middle decoder layer ℓ, pushes the forget set's activations towards a fixed random
direction c·u and holds the retain set's at the original's:
L = mean‖h_ℓ(x_f) − c·u‖² + α·mean‖h_ℓ(x_r) − h_ℓ^orig(x_r)‖², on LoRA of layers 1..ℓ only,
each mean open-unlearning's: over the hidden size, then a sequence's labelled tokens, then the batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

from ..errors import UserError
from ..lora.adapters import target_linears
from ..lora.losses import Term, rmu_forget, rmu_retain
from ..lora.settings import LoraSettings
from ..lora.trainer import LoraMethod, RandomInit
from ..settings import setting
from . import register


@dataclass
class RmuSettings(LoraSettings, auto_lr=(1e-3, 1e-4)):
    # Chosen for the workshop model at --lr 1e-3, where forgetting more cost retain and fluency in
    # step (docs/methods.md has the sweep); c scales with the activation norm at ℓ, so
    # open-unlearning's c = 300 for a 7-8 B model moves nothing here; at 2e-3 it forgets to the oracle's
    # level only by collapsing the answers.
    layer: int = setting(2, "ℓ, the decoder layer (1-based) whose activations are steered; LoRA trains layers 1..ℓ",
                         lo=1, hi=1000)
    steering: float = setting(2000.0, "c, the steering coefficient: forget activations are pushed towards c·u; "
                              "choose it a few times the activation norm at layer ℓ", lo=0.0, hi=1e6)
    retain_weight: float = setting(10.0, "α (λ_r), weight of the retain term", lo=0.0, hi=1e4, ui=False)


def decoder_layer(module: str) -> int | None:
    """The 0-based decoder layer a module belongs to: the first number in its name
    ("model.layers.3.mlp.up_proj" → 3), None outside the layers."""
    found = re.search(r"\.(\d+)\.", f".{module}.")
    return int(found.group(1)) if found else None


@register
class Rmu(LoraMethod):
    name = "rmu"
    label = "baseline: RMU"
    order = 90
    summary = (
        "Representation Misdirection for Unlearning (Li et al. 2024, the WMDP benchmark, arXiv 2403.03218): "
        "instead of changing which words come out, it scrambles the model's inner state on the forget set, "
        "steering one middle layer's activations towards a fixed random direction, while keeping that layer's "
        "activations on the retain set as they were. The answers to forgotten questions turn into noise; a "
        "standard baseline for removing hazardous knowledge."
    )
    Config = RmuSettings
    init = RandomInit()

    @classmethod
    def targets(cls, model, cfg: LoraSettings) -> list[str]:
        layer, n_layers = RmuSettings.of(cfg).layer, model.config.num_hidden_layers
        if layer > n_layers:
            raise UserError(f"--layer must be at most {n_layers}: this model has {n_layers} decoder layers.")
        return [n for n in target_linears(model) if (i := decoder_layer(n)) is not None and i < layer]

    @classmethod
    def objective(cls, cfg: LoraSettings) -> tuple[Term, ...]:
        own = RmuSettings.of(cfg)
        forget = partial(rmu_forget, layer=own.layer, steering=own.steering, seed=own.seed)
        return (Term("forget_rmu", "forget", forget, cfg.forget_weight, ("hidden_states", "labels"), unit="rows"),
                Term("retain_rmu", "retain", partial(rmu_retain, layer=own.layer), cfg.retain_weight,
                     ("hidden_states", "ref_hidden_states", "labels"), unit="rows"))

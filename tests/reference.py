"""Reference values the tests check the engine against (not test files).

`gd` and `ihl_objective` are METHODS.md's formulas written as one function each, against which
the engine's `losses.Term` objectives are checked; the rates are LoraSettings' automatic ones.
"""

from __future__ import annotations

import torch

from unlearning.lora.losses import ga, ihl, nll
from unlearning.lora.trainer import LoraSettings

SMALL_MODEL_LR, LARGE_MODEL_LR = LoraSettings.AUTO_LR


def gd(forget_logits: torch.Tensor, forget_labels: torch.Tensor,
       retain_logits: torch.Tensor, retain_labels: torch.Tensor) -> torch.Tensor:
    """Gradient difference: ascent on the forget batch plus descent on the retain batch."""
    return ga(forget_logits, forget_labels) + nll(retain_logits, retain_labels)


def ihl_objective(forget_logits: torch.Tensor, forget_labels: torch.Tensor, retain_logits: torch.Tensor,
                  retain_labels: torch.Tensor, lambda_f: float = 1.0, lambda_r: float = 1.0) -> torch.Tensor:
    """METHODS.md's L = λ_f · IHL(forget) + λ_r · NLL(retain)."""
    return lambda_f * ihl(forget_logits, forget_labels) + lambda_r * nll(retain_logits, retain_labels)

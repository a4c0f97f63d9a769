"""NPO — Zhang, Lin, Bai, Mei, "Negative Preference Optimization: From Catastrophic Collapse to
Effective Unlearning", arXiv 2404.05868; a baseline the field compares against.

Treats each forget answer as a rejected reply in DPO with no preferred one: L = (2/β)·mean
log(1 + exp(β·(lp_θ − lp_ref))) + NLL_r, lp_ref from the original model. Like gradient ascent
it pushes the answers down, but the push fades once they are less likely than at the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..lora.losses import Term, npo
from ..lora.settings import LoraSettings
from ..lora.trainer import LoraMethod
from ..settings import setting
from . import register


def beta_setting(default: float) -> Any:
    """β of NPO and SimNPO (one CLI flag, one meaning)."""
    return setting(default, "β, inverse temperature: smaller pushes the forget answers down harder and for longer",
                   lo=1e-3, hi=100.0)


@dataclass
class NpoSettings(LoraSettings, auto_lr=(3e-3, 1e-4)):
    # Forget and retain weights 1 and NLL on the retain set as open-unlearning's NPO config; β and the rate are
    # the workshop kit's (benchmarks/RESULTS.md, issue 23): β = 0.7 lets the push fade once an answer has lost
    # a few nats, so it stops at fluent wrong answers where open-unlearning's 0.1 pushes on into one repeated word.
    beta: float = beta_setting(0.7)


@register
class Npo(LoraMethod):
    name = "npo"
    label = "baseline: NPO"
    order = 70
    summary = (
        "Negative Preference Optimization (Zhang et al. 2024, arXiv 2404.05868): makes each forget answer less "
        "likely than the original model found it, like gradient ascent, but the push fades as the answer "
        "becomes unlikely, so it degrades the model far more slowly; plain likelihood on the retain set keeps "
        "the rest. A standard baseline in unlearning papers."
    )
    Config = NpoSettings
    forget = Term("forget_npo", "forget", npo, reads=("logits", "labels", "ref_logits"), unit="answers")  # and NLL on the retain set
    forget_settings = ("beta",)

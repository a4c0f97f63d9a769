"""The LoRA methods' settings (TRL's config beside its trainer): what every LoRA method shares,
the inverted-hinge methods' defaults, and how a method gives its own automatic learning rate:

    @dataclass
    class GdSettings(LoraSettings, auto_lr=(1e-3, 1e-4)):  # (small model, large model)
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Self

from .. import limits
from ..limits import MAX_STEPS
from ..settings import setting

PLOT_CHECK_EVERY = 5  # the holdout criterion's automatic period when it does not decide the stop


def _rate(x: float) -> str:
    mantissa, exponent = f"{x:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"  # 4e-4, 1.5e-3


def auto_lr(small: float, large: float) -> Any:
    """The `lr` setting of a class whose AUTO_LR is (small, large): its help names both rates."""
    return setting(0.0, f"AdamW learning rate; 0 = automatic: {_rate(small)} for models under 50 M parameters, "
                   f"{_rate(large)} for larger ones", lo=0.0, hi=1.0)


@dataclass
class LoraSettings:
    """Settings every LoRA method shares (the CLI flags and the UI controls come from here)."""

    # lr = 0 means (small model, large model): under / from models.SMALL_MODEL_PARAMS parameters
    AUTO_LR: ClassVar[tuple[float, float]] = (2e-4, 1e-4)

    steps: int = setting(100, "optimiser steps (with stop=holdout, the most it may take)", lo=1, hi=MAX_STEPS)
    lr: float = auto_lr(*AUTO_LR)
    rank: int = setting(8, "LoRA rank r (α = 2r)", choices=tuple(r for r in (4, 8, 16, 32, 64) if r <= limits.MAX_RANK))
    batch_size: int = setting(8, "forget examples per step, each paired with a random retain example", lo=1, hi=256)
    warmup: float = setting(0.1, "share of the steps over which the learning rate warms up", lo=0.0, hi=0.5)
    stop: str = setting("steps", "stop after the steps, or as soon as the forget set is known no better than "
                        "the holdout set", choices=("steps", "holdout"))
    check_every: int = setting(0, "measure the holdout criterion every this many steps; 0 = automatic: every step "
                               f"with stop=holdout, every {PLOT_CHECK_EVERY} otherwise (then it only draws the plot)",
                               lo=0, hi=MAX_STEPS, ui=False)
    forget_weight: float = setting(1.0, "λ_f, weight of the forget term", lo=0.0, hi=100.0, ui=False)
    retain_weight: float = setting(1.0, "λ_r, weight of the retain term", lo=0.0, hi=100.0, ui=False)
    seed: int = setting(0, "seed for the adapter init and the batch order", lo=0, hi=2**31 - 1)

    def __init_subclass__(cls, auto_lr: tuple[float, float] | None = None, **kwargs: Any) -> None:
        """`class XSettings(LoraSettings, auto_lr=(small, large))`: a method's own automatic rates,
        and the `lr` setting whose help names them (the class's @dataclass makes it a field)."""
        super().__init_subclass__(**kwargs)
        if auto_lr is not None:
            _own_rates(cls, auto_lr)

    @classmethod
    def of(cls, cfg: LoraSettings) -> Self:
        """`cfg` as this class: the fields it has kept, the others at their defaults (the
        benchmarks and tests list an objective's terms from a plain LoraSettings)."""
        if isinstance(cfg, cls):
            return cfg
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in asdict(cfg).items() if k in names})


def _own_rates(cls: type[LoraSettings], rates: tuple[float, float]) -> None:
    cls.AUTO_LR = rates
    cls.lr = auto_lr(*rates)  # a dataclasses.Field until @dataclass reads it
    cls.__annotations__ = {**inspect.get_annotations(cls), "lr": "float"}


@dataclass
class IhlSettings(LoraSettings, auto_lr=(4e-4, 1e-4)):
    """The inverted-hinge methods' defaults (ihl-fila and its random-init ablation ihl): a
    retain term three times the forget term's weight, because answers that share templates pull
    the retain ones down with the forget ones, and 4e-4 for small models, so it still forgets
    within 100 steps (benchmarks/RESULTS.md, "IHL + FILA on realistic answers")."""

    retain_weight: float = setting(3.0, "λ_r, weight of the retain term", lo=0.0, hi=100.0, ui=False)


def own_default(name: str, value: Any) -> Any:
    """LoraSettings' field `name` (its help and bounds) with a method's own default."""
    return field(default=value, metadata=LoraSettings.__dataclass_fields__[name].metadata)

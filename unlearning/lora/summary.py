"""The LoRA methods' blocks of a run's report (`lora`, `stopping`, `fila`, written by trainer.py),
typed. Torch-free. They are top-level keys of the report, so a Report keeps them in `extra`
and `LoraSummary.of(report)` reads them from there:

    s = LoraSummary.of(report)   # s.lora.rank, s.stopping.reached_at, s.fila.eps_share (None when absent)

trainer.py writes them as `LoraSummary(...).to_dict()`, an absent block left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..report import OPTIONAL, Readable, Report, read


@dataclass(frozen=True)
class Adapter(Readable):
    rank: int | None = None
    alpha: int | None = None
    layers: int | None = None  # how many linears carry an adapter


@dataclass(frozen=True)
class Stopping(Readable):
    rule: str | None = None  # "steps" or the holdout criterion
    target: dict[str, float | None] | None = None  # the holdout level the forget metric aims at
    reached_at: int | None = None  # the step the criterion was met at; None: never
    checks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Fila(Readable):
    eps_share: float | None = None  # weight entries where ε exceeds F_r/N_r
    forget_tokens: int | None = None
    retain_tokens: int | None = None


@dataclass(frozen=True)
class LoraSummary(Readable):
    lora: Adapter | None = field(default=None, metadata=OPTIONAL)
    stopping: Stopping | None = field(default=None, metadata=OPTIONAL)
    fila: Fila | None = field(default=None, metadata=OPTIONAL)  # only the FILA-initialised methods write it

    @classmethod
    def of(cls, report: Report) -> LoraSummary:
        return read(cls, report.extra)

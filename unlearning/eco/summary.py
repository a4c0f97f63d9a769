"""ECO's block of a run's report (`report["eco"]`, written by methods/eco.py), typed. Torch-free:
the report panel reads it through `Report.from_dict`, which finds it registered under "eco"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..report import Readable, summary


@dataclass(frozen=True)
class Probe(Readable):
    """One rewrite family of ECO's robustness probe (eco/robustness.py)."""

    recall: float | None = None
    fpr: float | None = None  # None: no retain prompt takes this rewrite
    n: int | None = None
    example: str | None = None


@summary("eco")
@dataclass(frozen=True)
class EcoSummary(Readable):
    """The classifier's figures, the corruption and how its strength was found."""

    classifier_recall: float | None = None  # k-fold, on forget prompts; None with too few to fold
    classifier_fpr: float | None = None
    cv_folds: int | None = None
    threshold: float | None = None
    alpha: float | None = None  # the target false-positive rate
    corruption: str | None = None
    strength: float | None = None
    metric: str | None = None
    target: float | None = None
    target_source: str | None = None
    search_target: str | None = None  # "metric" (match the target value) or "forget_quality" (maximise it)
    protocol: str | None = None  # the scoring protocol of teacher-forced metrics: "prompt" or "paper"
    search: list[dict[str, Any]] = field(default_factory=list)
    robustness: dict[str, Probe] = field(default_factory=dict)
    unseen_fpr: dict[str, float | None] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # the figures it does not type (calibration, timings, …)

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
    """The classifier's figures, the corruption and how its strength was found, in the order
    methods/eco.py writes them."""

    threshold: float | None = None
    classifier_recall: float | None = None  # k-fold, on forget prompts; None with too few to fold
    classifier_fpr: float | None = None
    cv_folds: int | None = None
    train_recall: float | None = None  # on the prompts it trained on: an upper bound, not an estimate
    calibration_fpr: float | None = None  # on the benign prompts held out to set the threshold
    positives: int | None = None
    negatives_train: int | None = None  # benign prompts: retain and general questions
    negatives_calibration: int | None = None
    alpha: float | None = None  # the target false-positive rate
    unseen_fpr: dict[str, float | None] = field(default_factory=dict)
    corruption: str | None = None
    corruption_params: dict[str, Any] = field(default_factory=dict)
    strength: float | None = None
    metric: str | None = None
    target: float | None = None
    target_source: str | None = None
    search_target: str | None = None  # "metric" (match the target value) or "forget_quality" (maximise it)
    calibration: dict[str, dict[str, Any]] | None = None  # each probe family at the chosen strength (--target probes)
    protocol: str | None = None  # the scoring protocol of teacher-forced metrics: "prompt" or "paper"
    protocol_subjects: int | None = None
    entities: int | None = None
    entity_source: str | None = None
    entity_examples: list[str] = field(default_factory=list)
    search: list[dict[str, Any]] = field(default_factory=list)
    robustness: dict[str, Probe] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # the figures it does not type (encoder, timings, …)

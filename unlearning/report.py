"""Reading a run's report, and how a method asks to be shown. Torch-free, so the UI may import it.

The report JSON (DESIGN.md §Command line contract) is written by pipeline.py as a plain dict
and stays exactly that; `Report.from_dict(d)` is the typed reading of it: a missing key, a
None or a value of the wrong type becomes None (or empty), never an exception.

A method describes its own display with the small dataclasses below, and the UI draws what it
is given without knowing the method:

    plots = (Plot("train", "losses per step", hidden=("lr", "elapsed_s")),)
    def report_blocks(cls, report: Report) -> list[Block]:
        return [Block("ECO classifier", lines=(Line("recall", 0.98, "↑", ".3f"),), table=Table(...))]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

Value = float | int | str | None  # what a block shows in one cell; None is shown as "—"
Metrics = dict[str, float | None]  # {"forget.rougeL": 0.21, "model_utility": 0.8, ...}


# ------------------------------------------------------------------ display specs


@dataclass(frozen=True)
class Plot:
    """One live plot: the step events of `series` (runs.Event.series), one trace per value.
    `x` is "step" (the event's step) or the name of the value that is the x axis (then it is
    not drawn as a trace); `hidden` values are not drawn (not a loss, or shown elsewhere)."""

    series: str
    title: str
    x: str = "step"
    mode: str = "lines+markers"
    hidden: tuple[str, ...] = ()

    def traces(self, values: dict[str, Any]) -> list[str]:
        """The names in `values` this plot draws as traces."""
        return [n for n in values if n != self.x and n not in self.hidden]


@dataclass(frozen=True)
class Line:
    """One figure of a block: label, value and which way is better ("↑", "↓ (target ≤ 0.01)", "")."""

    label: str
    value: Value = None
    better: str = ""
    fmt: str = ""  # a format spec for a number (".3f"); "" leaves it to the UI


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...] = ()
    fmt: str = ""  # for every number in the rows
    id: str = ""  # the element id the UI gives it (browser tests find it by it)


@dataclass(frozen=True)
class Block:
    """A method's own part of the report: a few lines and/or a small table."""

    title: str
    lines: tuple[Line, ...] = ()
    table: Table | None = None
    id: str = ""


# ------------------------------------------------------------------ tolerant readers


def number(value: Any) -> float | None:
    """A float, or None for anything that is not a number (None, NaN, a string, a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def whole(value: Any) -> int | None:
    x = number(value)
    return int(x) if x is not None and x.is_integer() else None


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def metrics(value: Any) -> Metrics | None:
    """{key: float or None}; None when there is no dict at all (no oracle, `--no-before`)."""
    if not isinstance(value, dict):
        return None
    return {str(k): number(v) for k, v in value.items()}


def records(value: Any) -> list[dict[str, Any]]:
    return [mapping(r) for r in value if isinstance(r, dict)] if isinstance(value, list) else []


# ------------------------------------------------------------------ the typed report


@dataclass
class Probe:
    """One rewrite family of ECO's robustness probe (eco/robustness.py)."""

    recall: float | None = None
    fpr: float | None = None  # None: no retain prompt takes this rewrite
    n: int | None = None
    example: str | None = None

    @classmethod
    def from_dict(cls, d: Any) -> Probe:
        d = mapping(d)
        return cls(number(d.get("recall")), number(d.get("fpr")), whole(d.get("n")), text(d.get("example")))


@dataclass
class EcoSummary:
    """The report's `eco` block (methods/eco.py writes it)."""

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
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any) -> EcoSummary:
        d = mapping(d)
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            classifier_recall=number(d.get("classifier_recall")), classifier_fpr=number(d.get("classifier_fpr")),
            cv_folds=whole(d.get("cv_folds")), threshold=number(d.get("threshold")), alpha=number(d.get("alpha")),
            corruption=text(d.get("corruption")), strength=number(d.get("strength")), metric=text(d.get("metric")),
            target=number(d.get("target")), target_source=text(d.get("target_source")),
            search_target=text(d.get("search_target")), protocol=text(d.get("protocol")), search=records(d.get("search")),
            robustness={k: Probe.from_dict(v) for k, v in mapping(d.get("robustness")).items()},
            unseen_fpr={k: number(v) for k, v in mapping(d.get("unseen_fpr")).items()},
            extra={k: v for k, v in d.items() if k not in known})


@dataclass
class Report:
    """What `unlearn` / `eval` report (pipeline.py), read tolerantly. Keys it does not know
    (a method's own: `lora`, `stopping`, `fila`; `attack`'s `robustness`) stay in `extra`."""

    method: str | None = None
    model: str | None = None
    device: str | None = None
    seed: int | None = None
    steps: int | None = None
    trainable_params: int | None = None
    wall_s: float | None = None
    method_wall_s: float | None = None
    peak_mem_mb: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    before: Metrics | None = None
    after: Metrics | None = None
    oracle: Metrics | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    eco: EcoSummary | None = None
    artifact: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any) -> Report:
        d = mapping(d)
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            method=text(d.get("method")), model=text(d.get("model")), device=text(d.get("device")),
            seed=whole(d.get("seed")), steps=whole(d.get("steps")), trainable_params=whole(d.get("trainable_params")),
            wall_s=number(d.get("wall_s")), method_wall_s=number(d.get("method_wall_s")),
            peak_mem_mb=number(d.get("peak_mem_mb")), settings=mapping(d.get("settings")),
            before=metrics(d.get("before")), after=metrics(d.get("after")), oracle=metrics(d.get("oracle")),
            history=records(d.get("history")),
            eco=EcoSummary.from_dict(d["eco"]) if isinstance(d.get("eco"), dict) else None,
            artifact=text(d.get("artifact")), extra={k: v for k, v in d.items() if k not in known})

    def section(self, name: str) -> dict[str, Any]:
        """An extra block as a dict ({} when absent or not a dict): `report.section("stopping")`."""
        return mapping(self.extra.get(name))

"""report.read: one tolerant reader for every report dataclass, from its type hints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.reports import ECO, LORA
from unlearning.eco.summary import EcoSummary, Probe
from unlearning.lora.summary import LoraSummary
from unlearning.report import Readable, Report, read


@dataclass(frozen=True)
class Inner(Readable):
    n: int | None = None
    names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outer(Readable):
    x: float | None = None
    inner: Inner | None = None
    always: Inner = field(default_factory=Inner)
    by_name: dict[str, Inner] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def test_a_report_missing_every_optional_field_reads_to_the_defaults():
    assert Report.from_dict({}) == Report() and EcoSummary.from_dict({}) == EcoSummary() and read(Outer, {}) == Outer()
    assert Report.from_dict({"method": "eco", "eco": {}}).eco == EcoSummary()


def test_unknown_keys_are_kept_in_extra_or_dropped():
    r = Report.from_dict({**ECO, "new_block": {"a": 1}, "eco": {**ECO["eco"], "new_figure": 2}})
    assert r.extra == {"new_block": {"a": 1}} and r.eco.extra["new_figure"] == 2
    assert Probe.from_dict({"recall": 1.0, "colour": "red"}) == Probe(recall=1.0)  # no `extra`: dropped


def test_nested_dataclasses_are_read_recursively_from_the_type_hints():
    o = Outer.from_dict({"x": "no", "inner": {"n": 3.0, "names": ["a", 1, "b"]}, "always": "x",
                         "by_name": {"p": {"n": 1}, "q": 7}, "other": [1]})
    assert o == Outer(None, Inner(3, ["a", "b"]), Inner(), {"p": Inner(1), "q": Inner()}, {"other": [1]})
    assert Outer.from_dict({"inner": "x"}).inner is None


def test_the_report_holds_the_methods_summary_without_naming_it():
    eco, lora = Report.from_dict(ECO), Report.from_dict(LORA)
    assert isinstance(eco.summary, EcoSummary) and eco.summary is eco.eco and lora.summary is None
    s = LoraSummary.of(lora)
    assert (s.lora.rank, s.lora.layers, s.stopping.rule, s.stopping.reached_at, s.fila.eps_share) == (8, 14, "steps", 2, 0.12)
    assert LoraSummary.of(eco) == LoraSummary()

"""What the app shows to compare runs and to read one report at a glance. Torch-free.

    compare_rows(session.kept)   # one CompareRow per kept run: distance to the oracle, utility, what the probes show…
    references(session.kept)     # `before` and `oracle` as points of the same kind
    key_metrics(report)          # the few numbers the report chart draws (before / after / oracle)
    warnings(report)             # sentences where a number misleads (unchanged, collapsed, leaking, broken model)

Every reader takes a report dict as pipeline.py writes it (or a typed Report) and tolerates any
part missing: a metric that is not there is None, and a warning that needs it is not given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..evaluation import outcome
from ..report import Metrics, Report
from .session import KeptRun

# The compare picture's headline (the distance to the oracle over the probes) and its "what it
# must keep" metric; forget ROUGE-L and the rest are columns of the table.
FORGET, UTILITY, QUALITY, FLUENCY = "forget.rougeL", "model_utility", "forget_quality", "forget.fluency"
DISTANCE = outcome.DISTANCE

FLUENCY_DROP = 0.8  # fluency below this share of before (and of the oracle's): the answers are breaking down
UTILITY_DROP = 0.9  # model utility below this share of before: it forgot more than the forget set
HIGH_QUALITY = 0.05  # forget quality at or above this is "the forget set looks like the oracle's" (TOFU's p-value)
BELOW_ORACLE = 0.1  # forget ROUGE-L this far under the oracle's: damage, not forgetting
REPEATED = 0.1  # this share of answers (more than before's and the oracle's) repeating one word: collapse


@dataclass(frozen=True)
class CompareRow:
    run: str  # "#2 IHL + FILA (LoRA training)"
    method: str
    data: str
    steps: int | None
    wall_s: float | None
    forget: float | None  # forget ROUGE-L after: ↓, to the oracle's
    utility: float | None  # model utility after: ≈ before
    forget_quality: float | None  # ↑ (1 = like the oracle)
    fluency: float | None  # of the forget answers, bits: ≈ before
    distance: float | None = None  # to the oracle over the probes: ↓, 0 = answers like the oracle
    verdict: str = ""  # what the probes show ("nothing changed", "collapsed", "leaks", …); "" = like the oracle

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = tuple(CompareRow.__dataclass_fields__)


def _report(report: dict | Report | None) -> Report:
    return report if isinstance(report, Report) else Report.from_dict(report or {})


def compare_rows(kept: Iterable[KeptRun]) -> list[CompareRow]:
    rows = []
    for run in kept:
        r = _report(run.report)
        after = r.after or {}
        rows.append(CompareRow(run.label, run.method, run.data, r.steps, r.wall_s, after.get(FORGET),
                               after.get(UTILITY), after.get(QUALITY), after.get(FLUENCY), after.get(DISTANCE),
                               ", ".join(outcome.tags(r.before, r.after, r.oracle))))
    return rows


@dataclass(frozen=True)
class Reference:
    name: str  # "before" or "oracle"
    forget: float | None
    utility: float | None
    forget_quality: float | None
    fluency: float | None
    distance: float | None = None


def references(kept: list[KeptRun]) -> list[Reference]:
    """`before` and `oracle` from the newest kept run that has them (all runs on the same data
    share them; the table's data column says when runs differ)."""
    out = []
    for name in ("before", "oracle"):
        for run in reversed(kept):
            m: Metrics | None = getattr(_report(run.report), name)
            if m:
                out.append(Reference(name, m.get(FORGET), m.get(UTILITY), m.get(QUALITY), m.get(FLUENCY), m.get(DISTANCE)))
                break
    return out


# ------------------------------------------------------------------ one report at a glance


@dataclass(frozen=True)
class KeyMetric:
    key: str
    label: str
    better: str  # "↓ to the oracle", "≈ before", "↑"
    before: float | None
    after: float | None
    oracle: float | None


KEY_METRICS = (  # (key, label, better)
    (DISTANCE, "distance to the oracle (probes)", "↓ (0 = the oracle)"),
    (FORGET, "forget ROUGE-L", "↓ to the oracle"),
    ("retain.rougeL", "retain ROUGE-L", "≈ before"),
    (UTILITY, "model utility", "≈ before"),
    (QUALITY, "forget quality", "↑ (1 = like the oracle)"),
    (FLUENCY, "fluency of forget answers (bits)", "≈ before"),
)


def key_metrics(report: dict | Report | None) -> list[KeyMetric]:
    """The report chart's metrics that the report has (after, or before, or oracle)."""
    r = _report(report)
    columns = [r.before or {}, r.after or {}, r.oracle or {}]
    out = []
    for key, label, better in KEY_METRICS:
        values = [c.get(key) for c in columns]
        if any(v is not None for v in values):
            out.append(KeyMetric(key, label, better, *values))
    return out


def _drop(before: float | None, after: float | None, share: float) -> bool:
    return before is not None and after is not None and before > 0 and after < share * before


def warnings(report: dict | Report | None) -> list[str]:
    """Plain sentences where a number of the report misleads; [] when none does."""
    r = _report(report)
    before, after, oracle = r.before or {}, r.after or {}, r.oracle or {}
    found = outcome.readings(r.before, r.after, r.oracle)  # what the probes show: said first
    problems = []
    for split in ("forget", "retain"):
        b, a, o = before.get(f"{split}.fluency"), after.get(f"{split}.fluency"), oracle.get(f"{split}.fluency")
        if _drop(b if o is None else min(b or 0.0, o), a, FLUENCY_DROP):  # (the oracle's own answers may be plainer)
            problems.append(f"the {split} answers lost fluency ({b:.2f} → {a:.2f} bits: repeated or broken words)")
    for split in ("forget", "retain"):
        a = after.get(f"{split}.repetition")
        usual = max((x for x in (before.get(f"{split}.repetition"), oracle.get(f"{split}.repetition")) if x is not None),
                    default=0.0)
        if a is not None and a >= REPEATED and a > usual + REPEATED / 2:
            problems.append(f"{a:.0%} of the {split} answers are one word repeated ('The The The …')")
    b, a = before.get(UTILITY), after.get(UTILITY)
    if _drop(b, a, UTILITY_DROP):
        problems.append(f"model utility fell from {b:.2f} to {a:.2f}")
    out = list(found)
    quality = after.get(QUALITY)
    if problems and quality is not None and quality >= HIGH_QUALITY:
        out.append(f"Forget quality {quality:.2f} looks good, but {' and '.join(problems)}: a broken model also "
                   "looks unlike the original. Read its answers in the chat before trusting the number.")
    elif problems and not found:  # the probes' sentences already say it in a room's words
        out.append(f"Check the chat: {' and '.join(problems)}.")
    f, o = after.get(FORGET), oracle.get(FORGET)
    if f is not None and o is not None and f < o - BELOW_ORACLE:
        out.append(f"Forget ROUGE-L {f:.2f} is well under the oracle's {o:.2f}: a model that never saw the forget "
                   "set still gets some answers right, so going lower is damage, not forgetting.")
    return out


"""What the app shows of the methods and of a report, ready to render.

    for m in catalog.methods(): m.name, m.label, m.summary, m.settings, m.plots
    view = catalog.report_view(session.report)   # headline, rows, blocks, cost; None-safe

Each method describes itself (methods/__init__.py); this module only reads the registry, so a
new method file shows up here with nothing else to edit. The registry imports torch (through
the trainer), so it is imported inside the functions: importing this module stays torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..evaluation import outcome
from ..report import Block, Line, Plot, Report, Table
from ..settings import describe

if TYPE_CHECKING:
    from ..methods import Method

__all__ = ["Block", "Line", "MethodInfo", "MetricRow", "Plot", "Report", "ReportView", "Table", "UserError",
           "better", "default_method", "method", "method_label", "methods", "plots", "report_view"]


# ------------------------------------------------------------------ methods


@dataclass(frozen=True)
class MethodInfo:
    name: str
    label: str  # the menu's label
    order: int  # the menu's order
    summary: str
    settings: tuple[dict[str, Any], ...]  # settings.describe(Config): name, default, type, help, lo, hi, choices
    plots: tuple[Plot, ...]
    default: bool = False  # the method the menu starts on

    @property
    def setting_names(self) -> set[str]:
        return {s["name"] for s in self.settings}


def _info(cls: Method) -> MethodInfo:
    return MethodInfo(cls.name, cls.label or cls.name, cls.order, cls.summary, tuple(describe(cls.Config)),
                      tuple(cls.plots), bool(getattr(cls, "default", False)))


def methods() -> list[MethodInfo]:
    """Every registered method, in menu order."""
    from ..methods import all_methods

    return [_info(m) for m in all_methods()]


def method(name: str) -> MethodInfo:
    """One method; UserError naming the known ones when `name` is not one."""
    from ..methods import get_method

    return _info(get_method(name))


def method_label(name: str) -> str:
    """The menu label of method `name`; the name itself for one not registered here."""
    try:
        return method(name).label
    except UserError:
        return name


def default_method() -> MethodInfo | None:
    """The method the menu starts on: the one marked `default`, else the first; None if none."""
    known = methods()
    return next((m for m in known if m.default), known[0] if known else None)


def plots(name: str | None = None) -> tuple[Plot, ...]:
    """The plot specs of method `name`; with None, of every method (the first spec of a series wins)."""
    if name is not None:
        return method(name).plots
    specs: dict[str, Plot] = {}
    for m in methods():
        for p in m.plots:
            specs.setdefault(p.series, p)
    return tuple(specs.values())


# ------------------------------------------------------------------ metrics: which way is better

# The report's splits in display order; the last two are the general split's TOFU sets, whose
# numbers model utility is made of (metrics.py).
SPLITS = ("forget", "retain", "holdout", "general", "real_authors", "world_facts",
          "verbmem_forget", "knowmem_forget", "knowmem_retain", "privleak_forget", "privleak_holdout")  # (MUSE's, suites.py)
FORGOTTEN = ("forget", "verbmem_forget", "knowmem_forget", "privleak_forget")  # splits that should move; the rest stay
HEADLINE = ("oracle_distance", "forget_quality", "model_utility", "mia_auc")
KEEP = "≈ before"
# metrics.METRIC_INFO's arrows, said per split. Only the forget split should move; retain and
# general are what the model should keep, holdout is text it never saw (the forget split's
# reference), so on those "≈ before" is better whatever the metric.
ON_FORGET = {"answer_prob": "↓ (to oracle)", "nll": "↑", "ppl": "↑", "rougeL": "↓ (to oracle)",
             "truth_ratio": "↑ (TOFU)", "mem_acc": "↓ (to holdout level)", "extraction_n": "↓",
             "extraction_strength": "↓ (to oracle)",
             "fluency": KEEP, "distinct2": KEEP, "repetition": "↓ (≈ before)"}
CROSS_SPLIT = {"oracle_distance": "↓ (0 = answers like the oracle on every probe)", "forget_quality": "↑ (1 = like the oracle)",
               "model_utility": KEEP, "mia_auc": "→ 0.5", "privleak": "→ 0 (a forget/holdout MIA gap like the oracle's)"}
# The probe suite's families (probes.py): forget ones move to the oracle's, retain ones stay.
ON_PROBE = {"rougeL": "↓ (to oracle)", "repetition": "↓ (≈ oracle)", "fluency": "≈ oracle"}


def better(key: str) -> str:
    """Which way is better after unlearning for a report key ("forget.rougeL", "mia_auc");
    "" for a key we know nothing of."""
    split, _, metric = key.rpartition(".")
    if not split:
        return CROSS_SPLIT.get(key, "")
    if split.startswith("probes."):
        return ON_PROBE.get(metric, "") if split.startswith("probes.forget_") else KEEP
    if split not in SPLITS or metric not in ON_FORGET:
        return ""
    return ON_FORGET[metric] if split in FORGOTTEN else KEEP


# ------------------------------------------------------------------ a report, ready to render


@dataclass(frozen=True)
class MetricRow:
    metric: str
    better: str
    before: float | None = None
    after: float | None = None
    oracle: float | None = None


@dataclass(frozen=True)
class ReportView:
    """Everything the report panel shows; `report` None means there is no report yet."""

    report: Report | None = None
    label: str | None = None  # the method's menu label, when it is a registered method
    headline: tuple[MetricRow, ...] = ()
    rows: tuple[MetricRow, ...] = ()  # every metric, headline ones first, then by split
    blocks: tuple[Block, ...] = ()  # the method's own part (report_blocks)

    @property
    def empty(self) -> bool:
        return self.report is None

    @property
    def cost(self) -> Report:
        """What the run cost (method, model, device, steps, wall_s, method_wall_s, peak_mem_mb,
        trainable_params): the report's own fields, all None without a report."""
        return self.report or Report()


def _rank(key: str) -> tuple[int, int, str]:
    split = key.rpartition(".")[0]
    if key in HEADLINE:
        return (0, HEADLINE.index(key), key)
    return (1, SPLITS.index(split) if split in SPLITS else len(SPLITS), key)


def metric_rows(report: Report) -> tuple[MetricRow, ...]:
    columns = [report.before or {}, report.after or {}, report.oracle or {}]
    keys = sorted(set().union(*columns), key=_rank)
    return tuple(MetricRow(k, better(k), *(c.get(k) for c in columns)) for k in keys)


def report_view(report: dict | Report | None) -> ReportView:
    """The view of a report dict (or typed Report): missing or malformed parts are left out."""
    if not report:
        return ReportView()
    from ..methods import all_methods  # first: the methods register their report blocks (report.summary)

    r = report if isinstance(report, Report) else Report.from_dict(report)
    cls = next((m for m in all_methods() if m.name == r.method), None)
    blocks = tuple(cls.report_blocks(r)) if cls is not None and hasattr(cls, "report_blocks") else ()
    if (probes := probe_table(r)) is not None:
        blocks = (Block(PROBE_TITLE, table=probes, id="probe-block"), *blocks)
    rows = metric_rows(r)
    return ReportView(r, (cls.label or cls.name) if cls is not None else None,
                      tuple(row for row in rows if row.metric in HEADLINE), rows, blocks)


PROBE_METRICS = (("rougeL", "recall"), ("repetition", "repeated"))
PROBE_TITLE = ("What a room would ask: the probe suite (recall: forget ↓ to the oracle's, retain ≈ the original's; "
               "repeated: share of answers that are one word repeated, ↓)")


def probe_table(report: dict | Report | None) -> Table | None:
    """One row per probe family the report has: its recall (ROUGE-L) and share of repeated
    answers for the unlearned model, the oracle and the original; None without probes."""
    r = report if isinstance(report, Report) else Report.from_dict(report or {})
    columns = (("unlearned", r.after), ("oracle", r.oracle), ("original", r.before))
    rows = []
    for family, label in outcome.FAMILIES.items():
        cells = [outcome.value(m, family, k) for k, _ in PROBE_METRICS for _, m in columns]
        if any(c is not None for c in cells):
            rows.append((label, *cells))
    if not rows:
        return None
    headers = ("probe", *(f"{word}, {name}" for _, word in PROBE_METRICS for name, _ in columns))
    return Table(headers, tuple(rows), ".2f", id="probe-table")

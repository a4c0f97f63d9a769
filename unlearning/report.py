"""Reading a run's report, and how a method asks to be shown. Torch-free, so the UI may import it.

The report JSON (DESIGN.md §Command line contract) is a plain dict. pipeline.py builds it as a
typed `Report` and writes `report.to_dict()`; `Report.from_dict(d)` is the typed reading of it:
a missing key, a None or a value of the wrong type becomes None (or empty), never an exception.
One reader, `read(cls, d)`, does this for every report dataclass from its type hints, and one
writer, `to_dict()`, the reverse, so a new field is one line. A method's own block is its own
dataclass, registered under the report key it is written to (`@summary("eco")` in
eco/summary.py); the Report holds it as `summary`.

A method describes its own display with the small dataclasses below, and the UI draws what it
is given without knowing the method:

    plots = (Plot("train", "losses per step", hidden=("lr", "elapsed_s")),)
    def report_blocks(cls, report: Report) -> list[Block]:
        return [Block("ECO classifier", lines=(Line("recall", 0.98, "↑", ".3f"),), table=Table(...))]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from types import UnionType
from typing import Any, Self, TypeVar, Union, get_args, get_origin, get_type_hints

Value = float | int | str | None  # what a block shows in one cell; None is shown as "—"
Metrics = dict[str, float | None]  # {"forget.rougeL": 0.21, "model_utility": 0.8, ...}
T = TypeVar("T")


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


# ------------------------------------------------------------------ the tolerant reader


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


SCALARS: dict[Any, Any] = {float: number, int: whole, str: text, Any: lambda v: v,
                           bool: lambda v: v if isinstance(v, bool) else None}
EXTRA = "extra"  # a dataclass's field for the keys it does not type, kept as they are


def _fits(tp: Any, value: Any) -> bool:
    """Can `value` be read as `tp` at all (so that an optional field is not None)?"""
    if tp in SCALARS:
        return SCALARS[tp](value) is not None
    if is_dataclass(tp) or get_origin(tp) is dict:
        return isinstance(value, dict)
    if get_origin(tp) is list:
        return isinstance(value, list)
    return any(_fits(a, value) for a in get_args(tp))  # a union


def convert(tp: Any, value: Any) -> Any:
    """`value` read as type `tp`: a scalar of the wrong kind is None, a container is emptied
    of what does not fit, an optional part is None unless it fits."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, UnionType):
        kinds = [a for a in args if a is not type(None)]
        fit = next((a for a in kinds if _fits(a, value)), None)
        if fit is None:
            return None if len(kinds) < len(args) else convert(kinds[0], value)
        return convert(fit, value)
    if tp in SCALARS:
        return SCALARS[tp](value)
    if isinstance(tp, type) and is_dataclass(tp):
        return read(tp, value)
    if origin is dict:
        return {k: convert(args[1], v) for k, v in mapping(value).items()}
    if origin is list:
        return [convert(args[0], v) for v in value if _fits(args[0], v)] if isinstance(value, list) else []
    raise TypeError(f"read() does not know the type {tp!r}")  # a programmer error: a field of a new kind


def read(cls: type[T], value: Any) -> T:
    """An instance of the dataclass `cls` from a JSON dict, tolerantly: each field read by its
    type hint (nested dataclasses too), a missing or malformed one left at its default, keys
    it does not know kept in its `extra` field when it has one, else dropped."""
    d, hints = mapping(value), get_type_hints(cls)
    names = {f.name for f in fields(cls) if f.init}  # type: ignore[arg-type]
    args = {n: convert(hints[n], d[n]) for n in names - {EXTRA} if n in d}
    if EXTRA in names:
        args[EXTRA] = {k: v for k, v in d.items() if k not in names}
    return cls(**args)


# field metadata: the key is left out of the JSON while the field is at its default (an `eval`
# report has no `settings`); `field(default=None, metadata=OPTIONAL)`
OPTIONAL: dict[str, Any] = {"optional": True}


def written(value: Any) -> Any:
    """`value` as JSON holds it: report dataclasses as their dicts, containers walked, the rest as is."""
    if isinstance(value, Readable):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: written(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [written(v) for v in value]
    return value


class Readable:
    """`Cls.from_dict(d)`: read(Cls, d), for the report's dataclasses; `x.to_dict()` the reverse."""

    @classmethod
    def from_dict(cls, d: Any) -> Self:
        return read(cls, d)

    def to_dict(self) -> dict[str, Any]:
        """The JSON dict: each field under its name in field order (None as null), `extra`'s keys
        spread out where it stands, an `optional` field left out while at its default."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == EXTRA:
                out.update(written(value))
            elif not (f.metadata.get("optional") and value == _default(f)):
                out[f.name] = written(value)
        return out


def _default(f: Any) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


# ------------------------------------------------------------------ method summaries

SUMMARIES: dict[str, type] = {}  # report key → the dataclass of that block (its method registers it)


def summary(key: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: the dataclass a method's report block under `key` is read into."""

    def register(cls: type[T]) -> type[T]:
        SUMMARIES[key] = cls
        return cls

    return register


# ------------------------------------------------------------------ the typed report


@dataclass(frozen=True)
class Report(Readable):
    """What `unlearn` / `eval` report (pipeline.py), read tolerantly and written by `to_dict()` in
    this field order. A registered method block becomes `summary` (and is also reached by its
    key: `report.eco`); other keys it does not know (the LoRA methods' `lora`, `stopping`, `fila`;
    `attack`'s `robustness`) stay in `extra`."""

    method: str | None = None
    model: str | None = None
    device: str | None = None
    seed: int | None = None
    steps: int | None = None
    trainable_params: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict, metadata=OPTIONAL)  # the method's settings (`eval` has none)
    oracle: Metrics | None = None
    before: Metrics | None = None
    method_wall_s: float | None = field(default=None, metadata=OPTIONAL)
    after: Metrics | None = field(default=None, metadata=OPTIONAL)  # `eval` without an artifact has none
    summary: object | None = field(default=None, metadata=OPTIONAL)  # the method's own block, typed (SUMMARIES), written under its key
    extra: dict[str, Any] = field(default_factory=dict)
    wall_s: float | None = None
    peak_mem_mb: float | None = None
    artifact: str | None = field(default=None, metadata=OPTIONAL)

    @classmethod
    def from_dict(cls, d: Any) -> Self:
        d = mapping(d)
        report = read(cls, {k: v for k, v in d.items() if k not in SUMMARIES and k != "summary"})
        key = next((k for k in SUMMARIES if isinstance(d.get(k), dict)), None)
        return replace(report, summary=read(SUMMARIES[key], d[key])) if key is not None else report

    def to_dict(self) -> dict[str, Any]:
        key = next((k for k, kind in SUMMARIES.items() if isinstance(self.summary, kind)), "summary")
        return {key if k == "summary" else k: v for k, v in super().to_dict().items()}

    def __getattr__(self, name: str) -> Any:
        """A method's block by its report key (`report.eco`): its summary, or None when this
        report has another method's (or none)."""
        kind = SUMMARIES.get(name)
        if kind is None:
            raise AttributeError(name)
        block = self.__dict__.get("summary")
        return block if isinstance(block, kind) else None

    def section(self, name: str) -> dict[str, Any]:
        """An extra block as a dict ({} when absent or not a dict): `report.section("stopping")`."""
        return mapping(self.extra.get(name))

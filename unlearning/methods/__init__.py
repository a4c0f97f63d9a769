"""The unlearning methods: one module each in this package, found and registered on import.

A method is a class, registered with `@register`, that describes itself and does its work:

    name, label, order, summary   # registry key; the UI menu's label and position; the UI's text
    trains_weights                # True if it changes weights (so it may run data-parallel)
    fisher_pass                   # True if FILA's Fisher sums must fit beside the weights (model_check)
    Config                        # settings dataclass (defaults, help, validation): CLI flags, UI controls
    plots                         # report.Plot specs of the live plots its step events feed
    report_blocks(report)         # optional: report.Block list, its own part of the report
    run(ctx, loaded, data, cfg, reference) -> Unlearned   # do the unlearning inside a Run
    load(loaded, folder, settings) -> Unlearned           # attach a saved artifact

`data` is {"forget", "retain", "holdout", "general"}: validated Datasets. Adding a method is
one new module here: the CLI, the UI menu, the benchmarks and the tests read the registry.
`Method` below is this interface as a Protocol: mypy checks every `@register`ed class against it.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..errors import UserError

if TYPE_CHECKING:
    from pathlib import Path

    from ..artifacts import Unlearned
    from ..data import Dataset
    from ..models import Loaded
    from ..report import Plot
    from ..runs import RunContext


class Method(Protocol):
    """A registered method: the class itself (class attributes, class or static methods),
    never an instance. Config and plots are read-only members, so a subclass may narrow them
    (its own Config)."""

    name: str
    label: str
    order: int
    summary: str
    trains_weights: bool  # LoRA or the whole model is trained (ECO's weights never change)
    fisher_pass: bool  # FILA's Fisher pass runs first: its memory is checked before a run starts

    @property
    def Config(self) -> type: ...  # the settings dataclass
    @property
    def plots(self) -> tuple[Plot, ...]: ...

    def run(self, ctx: RunContext, loaded: Loaded, splits: dict[str, Dataset], cfg: Any,
            reference: dict[str, Any]) -> Unlearned: ...

    def load(self, loaded: Loaded, folder: Path, settings: dict[str, Any]) -> Unlearned: ...


M = TypeVar("M", bound=Method)
_REGISTRY: dict[str, Method] = {}
REQUIRED = ("name", "label", "order", "summary", "Config", "plots", "run", "load")


def register(cls: M) -> M:
    """Class decorator: make a method available under `cls.name`."""
    missing = [a for a in REQUIRED if not hasattr(cls, a)]
    if missing or not cls.name:
        raise TypeError(f"method class {getattr(cls, '__name__', cls)} lacks {', '.join(missing) or 'a name'}")
    if cls.name in _REGISTRY:
        raise ValueError(f"method {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget a method (tests that add a throwaway one clean up with this)."""
    _REGISTRY.pop(name, None)


def all_methods() -> list[Method]:
    """Every registered method in menu order (`order`, then name)."""
    return sorted(_REGISTRY.values(), key=lambda m: (m.order, m.name))


def method_names() -> list[str]:
    return [m.name for m in all_methods()]


def get_method(name: str) -> Method:
    if name not in _REGISTRY:
        raise UserError(f"Unknown method '{name}'; known methods: {', '.join(method_names()) or 'none'}.")
    return _REGISTRY[name]


def discover() -> list[str]:
    """Import every module of this package not imported yet (each registers its method on
    import); the names of the methods that are new."""
    importlib.invalidate_caches()  # a module written since the last look must be seen
    known = set(_REGISTRY)
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return [n for n in method_names() if n not in known]


discover()

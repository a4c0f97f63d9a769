"""The unlearning methods, registered by name (one file each).

A method is a class with a `name`, a `Config` dataclass (defaults, help text, validation;
the CLI flags and UI controls are built from it), a `summary` for the UI, and:

    run(ctx, loaded, data, cfg) -> Unlearned     # do the unlearning inside a Run
    load(loaded, folder, settings) -> Unlearned  # attach a saved artifact

`data` is {"forget", "retain", "holdout", "general"}: validated Datasets.
"""

from __future__ import annotations

from ..errors import UserError

_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make a method available under `cls.name`."""
    if cls.name in _REGISTRY:
        raise ValueError(f"method {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def method_names() -> list[str]:
    return list(_REGISTRY)


def get_method(name: str) -> type:
    if name not in _REGISTRY:
        raise UserError(f"Unknown method '{name}'; known methods: {', '.join(method_names()) or 'none'}.")
    return _REGISTRY[name]


def all_methods() -> list[type]:
    return list(_REGISTRY.values())


# Each method module registers itself on import (one line per method, in menu order).
from . import ihl_fila  # noqa: E402,F401
from . import ihl  # noqa: E402,F401
from . import gd  # noqa: E402,F401
from . import ga  # noqa: E402,F401
from . import gd_fila  # noqa: E402,F401
from . import eco  # noqa: E402,F401

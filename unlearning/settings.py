"""Method settings as dataclasses: one source of truth for defaults, help, limits and choices.

    @dataclass
    class Config:
        steps: int = setting(60, "optimiser steps", lo=1, hi=MAX_STEPS)

`validate(cfg)` checks every field against its metadata (raising UserError with the flag's
name); `add_flags` builds argparse flags from the fields and `from_flags` reads them back;
`describe` gives the UI what it needs to build a control.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from typing import Any

from .errors import UserError


def setting(default: Any, help: str, lo: float | None = None, hi: float | None = None,
            choices: tuple | None = None, ui: bool = True) -> Any:
    """A dataclass field with its help text, bounds (inclusive) and choices. `ui=False`
    keeps an expert knob out of the app (still a CLI flag)."""
    return dataclasses.field(default=default, metadata={"help": help, "lo": lo, "hi": hi, "choices": choices, "ui": ui})


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_value(f: dataclasses.Field, value: Any) -> Any:
    """Coerce `value` to the field's type and check it; UserError names the flag."""
    kind = type(f.default)
    meta = f.metadata
    shown = _shown(value)  # messages quote what the user typed, cut short
    try:
        if kind is bool:
            value = value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")
        elif kind is int:
            value = _whole(value)
        elif kind is float:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError
        else:
            value = str(value).strip()
    except (TypeError, ValueError):
        raise UserError(f"{flag(f.name)} must be {'a whole number' if kind is int else 'a number'}, not '{shown}'.") from None
    if meta.get("choices") and value not in meta["choices"]:
        raise UserError(f"{flag(f.name)} must be one of {', '.join(map(str, meta['choices']))}, not '{shown}'.")
    if meta.get("lo") is not None and value < meta["lo"]:
        raise UserError(f"{flag(f.name)} must be at least {meta['lo']}, not {shown}.")
    if meta.get("hi") is not None and value > meta["hi"]:
        raise UserError(f"{flag(f.name)} must be at most {meta['hi']}, not {shown}.")
    if kind is int and not isinstance(value, int):  # ±inf from _whole with no bound to refuse it
        raise UserError(f"{flag(f.name)} must be a whole number, not '{shown}'.")
    return value


def _whole(value: Any) -> int | float:
    """5, 5.0, ' 5 ', '1e3' → an int; a string of digits too long for int() → ±inf (so the
    bounds refuse it as too large); anything else that is not a whole number → ValueError."""
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit() and len(text) > 100:
            return -math.inf if text.startswith("-") else math.inf
        try:
            return int(text)
        except ValueError:
            value = float(text)  # '1e3', '5.0'; 'ten' raises ValueError
    if isinstance(value, float) and not value.is_integer():
        raise ValueError  # 2.5, nan and inf alike
    return int(value)


def _shown(value: Any, max_chars: int = 24) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def validate(cfg: Any) -> Any:
    """Check (and coerce) every field of a settings dataclass in place; returns it."""
    for f in dataclasses.fields(cfg):
        setattr(cfg, f.name, check_value(f, getattr(cfg, f.name)))
    return cfg


def build(config_cls: type, values: dict[str, Any]) -> Any:
    """A validated config from a dict of (possibly string) values; unknown keys are errors."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = [k for k in values if k not in names]
    if unknown:
        raise UserError(f"{flag(unknown[0])} is not a setting of this method; its settings are "
                        f"{', '.join(flag(n) for n in sorted(names))}.")
    return validate(config_cls(**values))


def add_flags(parser: argparse.ArgumentParser, config_classes: list[type]) -> None:
    """One flag per field across all classes (same name, same meaning); values stay strings
    so `build` reports bad values in our own words."""
    first: dict[str, dataclasses.Field] = {}
    helps: dict[str, list[str]] = {}
    for cls in config_classes:
        for f in dataclasses.fields(cls):
            first.setdefault(f.name, f)
            if (h := f.metadata.get("help", "")) not in helps.setdefault(f.name, []):
                helps[f.name].append(h)
    for name, f in first.items():
        extra = f" (one of {', '.join(map(str, f.metadata['choices']))})" if f.metadata.get("choices") else ""
        parser.add_argument(flag(name), dest=f"cfg_{name}", default=None, metavar=type(f.default).__name__.upper(),
                            help=f"{shared_help(helps[name])}{extra}")


def shared_help(helps: list[str]) -> str:
    """One flag's help for every method: the help, or where methods word it differently (each
    its own automatic rate) what they share, up to the last ';' or ':', and where to read the rest."""
    if len(helps) == 1:
        return helps[0]
    common = os.path.commonprefix(helps)
    cut = max(common.rfind(";"), common.rfind(":"))
    return (common[: cut + 1] if cut > 0 else "") + " differs by method (docs/methods.md; the app shows each method's own)"


def from_flags(config_cls: type, args: argparse.Namespace) -> Any:
    values = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
    return build(config_cls, values)


def describe(config_cls: type) -> list[dict[str, Any]]:
    """For the UI: name, default, type, help, bounds and choices of each user-facing field."""
    return [{"name": f.name, "default": f.default, "type": type(f.default).__name__, **f.metadata}
            for f in dataclasses.fields(config_cls) if f.metadata.get("ui", True)]

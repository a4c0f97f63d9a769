"""What the UI shows of the benchmark suites (suites.py): the header's presets, by name and label.
Choosing one is Session.use_benchmark; its oracle is Studio.oracle."""

from __future__ import annotations

from ..suites import SUITES

BENCHMARKS: list[tuple[str, str]] = [(name, suite.label) for name, suite in SUITES.items()]  # (name, menu label)

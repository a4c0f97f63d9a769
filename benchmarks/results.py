"""What every benchmark shares: the machine it ran on, a figure as the tables print it, and
RESULTS.md, one section of which each benchmark replaces with `record`."""

from __future__ import annotations

import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def machine(device: str) -> str:
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"{cpu_name()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, load {os.getloadavg()[0]:.1f}"


def fmt(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.2e}" if 0 < abs(x) < 1e-2 else f"{x:.3f}"
    return str(x)


def record(text: str, section: str) -> None:
    """Replace (or add) `section` of RESULTS.md; other sections are left alone."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    body = f"{section}\n\n{text}\n"
    start = old.find(section + "\n")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + body
    else:
        end = old.find("\n## ", start + len(section))
        new = old[:start] + body + (old[end + 1 :] if end >= 0 else "")
    RESULTS.write_text(new, encoding="utf-8")

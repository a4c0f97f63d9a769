"""One unlearning job, end to end: evaluate before (and the oracle), unlearn, evaluate after.

`unlearn_job(...)` returns a work function for a `Run`; the CLI and the UI both use it, so
they produce the same report (DESIGN.md §Command line contract).
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict
from typing import Any

from .artifacts import original
from .data import Dataset
from .metrics import evaluate
from .models import Loaded
from .runs import RunContext

# Share of the progress bar each phase takes (the method reports its own progress inside).
PHASES = {"oracle": (0.0, 0.1), "before": (0.1, 0.2), "method": (0.2, 0.85), "after": (0.85, 1.0)}


class PhaseContext:
    """A RunContext whose progress fractions are mapped into one phase's share of the bar."""

    def __init__(self, ctx: RunContext, phase: str):
        self._ctx, (self._lo, self._hi) = ctx, PHASES[phase]
        self.phase = phase

    def progress(self, fraction: float, message: str = "") -> None:
        self._ctx.progress(self._lo + (self._hi - self._lo) * fraction, message)

    def __getattr__(self, name: str):
        return getattr(self._ctx, name)


def peak_mem_mb(device: str) -> float:
    """Peak memory: CUDA allocations on a GPU; the process's peak resident set on the CPU."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _evaluate_phase(ctx: RunContext, phase: str, model, tokenizer, splits, oracle_raw=None):
    pctx = PhaseContext(ctx, phase)
    names = iter(range(len(splits)))
    progress = lambda msg: pctx.progress(next(names, 0) / len(splits), f"{phase}: {msg}")  # noqa: E731
    return evaluate(model, tokenizer, splits, oracle_raw=oracle_raw, progress=progress, check_cancel=ctx.check_cancel)


def unlearn_job(method: type, cfg: Any, loaded: Loaded, splits: dict[str, Dataset], oracle: Loaded | None = None,
                evaluate_before: bool = True):
    """Work function: returns {"report": dict, "unlearned": Unlearned}."""

    def work(ctx: RunContext) -> dict[str, Any]:
        t0 = time.perf_counter()
        report: dict[str, Any] = {"method": method.name, "model": loaded.name, "device": loaded.device,
                                  "seed": getattr(cfg, "seed", None), "settings": asdict(cfg)}
        oracle_raw = None
        if oracle is not None:
            report["oracle"], oracle_raw = _evaluate_phase(ctx, "oracle", original(oracle.model), oracle.tokenizer, splits)
            r = oracle_raw.get("forget", {}).get("R")
            if r:  # the oracle against itself: 1.0 by definition, shown for the table
                report["oracle"]["forget_quality"] = 1.0
        if evaluate_before:
            report["before"], _ = _evaluate_phase(ctx, "before", original(loaded.model), loaded.tokenizer, splits, oracle_raw)
        reference = {"oracle": report.get("oracle"), "before": report.get("before")}
        t_method = time.perf_counter()
        unlearned = method.run(PhaseContext(ctx, "method"), loaded, splits, cfg, reference)
        report["method_wall_s"] = round(time.perf_counter() - t_method, 2)
        report["after"], _ = _evaluate_phase(ctx, "after", unlearned.proxy("unlearned"), loaded.tokenizer, splits, oracle_raw)
        report.update(steps=unlearned.steps, trainable_params=unlearned.trainable_params,
                      history=unlearned.history, **unlearned.extra_report)
        report["wall_s"] = round(time.perf_counter() - t0, 2)
        report["peak_mem_mb"] = round(peak_mem_mb(loaded.device), 1)
        ctx.progress(1.0, "done")
        return {"report": report, "unlearned": unlearned}

    return work

"""One job, end to end: evaluate the oracle and the model before, unlearn, evaluate after.

`unlearn_job(...)` and `eval_job(...)` return work functions for a `Run`; the CLI and the UI
both use them, so they produce the same report (DESIGN.md §Command line contract).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .artifacts import original
from .data import Dataset, check_pair, load_file
from .memory import MemoryWatch
from .metrics import evaluate, forget_quality
from .models import WORKSHOP_DIR, Loaded
from .runs import RunContext

if TYPE_CHECKING:
    from .methods import Method

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


def complete_splits(forget: Dataset, retain: Dataset, holdout: Dataset | None = None,
                    general: Dataset | None = None) -> dict[str, Dataset]:
    """The four splits a report needs: the user's forget/retain (checked against each other),
    and holdout/general defaulting to the workshop kit's (holdout of the forget set's kind)."""
    check_pair(forget, retain)
    ext = "jsonl" if forget.kind == "qa" else "txt"
    return {"forget": forget, "retain": retain,
            "holdout": holdout or load_file(WORKSHOP_DIR / f"holdout.{ext}"),
            "general": general or load_file(WORKSHOP_DIR / "general.jsonl")}


def _evaluate_phase(ctx: RunContext, phase: str, model, tokenizer, splits, oracle_raw=None):
    pctx = PhaseContext(ctx, phase)
    names = iter(range(len(splits)))
    progress = lambda msg: pctx.progress(next(names, 0) / len(splits), f"{phase}: {msg}")
    return evaluate(model, tokenizer, splits, oracle_raw=oracle_raw, progress=progress, check_cancel=ctx.check_cancel)


def _reference_phases(ctx: RunContext, loaded: Loaded, oracle: Loaded | None, splits, before: bool):
    """Evaluate the oracle and the model before unlearning: (oracle, oracle_raw, before).

    The two are independent models, so on the CPU they run side by side on two threads
    (each evaluation uses one core: see models.set_cpu_threads); forget_quality, which
    compares the two, is filled in once both are done."""
    from concurrent.futures import ThreadPoolExecutor

    def oracle_work():
        return _evaluate_phase(ctx, "oracle", original(oracle.model), oracle.tokenizer, splits)

    def before_work():
        return _evaluate_phase(ctx, "before", original(loaded.model), loaded.tokenizer, splits)

    side_by_side = loaded.device == "cpu" and oracle is not None and before
    with ThreadPoolExecutor(max_workers=2 if side_by_side else 1) as pool:
        oracle_job = pool.submit(oracle_work) if oracle is not None else None
        before_job = pool.submit(before_work) if before else None
        oracle_metrics, oracle_raw = oracle_job.result() if oracle_job else (None, None)
        before_metrics, before_raw = before_job.result() if before_job else (None, None)
    r_oracle = (oracle_raw or {}).get("forget", {}).get("R")
    if r_oracle and oracle_metrics is not None:  # (r_oracle implies oracle_metrics; likewise below)
        oracle_metrics["forget_quality"] = 1.0  # the oracle against itself, by definition
        if before_metrics is not None and before_raw is not None and before_raw.get("forget", {}).get("R"):
            before_metrics["forget_quality"] = forget_quality(before_raw["forget"]["R"], r_oracle)
    return oracle_metrics, oracle_raw, before_metrics


def _header(loaded: Loaded, method: str | None, seed: int | None) -> dict[str, Any]:
    return {"method": method, "model": loaded.name, "device": loaded.device, "seed": seed, "steps": 0,
            "trainable_params": 0, "history": []}


def _cost(report: dict, t0: float, memory: MemoryWatch) -> dict:
    """The run's own cost: its wall time and its peak memory (not the process's lifetime peak)."""
    report["wall_s"] = round(time.perf_counter() - t0, 2)
    report["peak_mem_mb"] = round(memory.peak_mb, 1)
    return report


def unlearn_job(method: Method, cfg: Any, loaded: Loaded, splits: dict[str, Dataset], oracle: Loaded | None = None,
                evaluate_before: bool = True):
    """Work function: returns {"report": dict, "unlearned": Unlearned}."""

    def work(ctx: RunContext) -> dict[str, Any]:
        t0 = time.perf_counter()
        report = _header(loaded, method.name, getattr(cfg, "seed", None)) | {"settings": asdict(cfg)}
        with MemoryWatch(loaded.device) as memory:
            report["oracle"], oracle_raw, report["before"] = _reference_phases(ctx, loaded, oracle, splits, evaluate_before)
            # oracle_raw: the oracle's per-example values (ECO's --target forget_quality matches its R)
            reference = {"oracle": report.get("oracle"), "before": report.get("before"), "oracle_raw": oracle_raw}
            t_method = time.perf_counter()
            unlearned = method.run(PhaseContext(ctx, "method"), loaded, splits, cfg, reference)
            report["method_wall_s"] = round(time.perf_counter() - t_method, 2)
            report["after"], _ = _evaluate_phase(ctx, "after", unlearned.proxy("unlearned"), loaded.tokenizer, splits, oracle_raw)
        report.update(steps=unlearned.steps, trainable_params=unlearned.trainable_params,
                      history=unlearned.history, **unlearned.extra_report)
        ctx.progress(1.0, "done")
        return {"report": _cost(report, t0, memory), "unlearned": unlearned}

    return work


def eval_job(loaded: Loaded, splits: dict[str, Dataset], oracle: Loaded | None = None, unlearned: Any = None):
    """Work function: the report of `python -m unlearning eval` (`after` only with an artifact)."""

    def work(ctx: RunContext) -> dict[str, Any]:
        t0 = time.perf_counter()
        report = _header(loaded, unlearned.method if unlearned is not None else None, None)
        with MemoryWatch(loaded.device) as memory:
            report["oracle"], oracle_raw, report["before"] = _reference_phases(ctx, loaded, oracle, splits, True)
            if unlearned is not None:
                view = unlearned.proxy("unlearned")
                report["after"], _ = _evaluate_phase(ctx, "after", view, loaded.tokenizer, splits, oracle_raw)
                report.update(steps=unlearned.steps, trainable_params=unlearned.trainable_params, history=unlearned.history)
        ctx.progress(1.0, "done")
        return _cost(report, t0, memory)

    return work

"""One job, end to end: evaluate the oracle and the model before, unlearn, evaluate after.

`unlearn_job(...)` and `eval_job(...)` return work functions for a `Run`; the CLI and the UI
both use them, so they produce the same report (DESIGN.md §Command line contract).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .base import LockedModel, original
from .data import Dataset, check_pair, load_file
from .errors import Cancelled
from .evaluation.cache import EvalCache, cached_split, lookup
from .evaluation.metrics import against_oracle, evaluate, forget_quality, privleak_against, scored_splits
from .evaluation.outcome import with_distance
from .evaluation.probes import probe_set
from .memory import MemoryWatch
from .models import WORKSHOP_DIR, Loaded
from .report import Report
from .runs import RunContext

if TYPE_CHECKING:
    from .lora.distributed import DataParallel
    from .methods import Method

# Share of the progress bar each phase takes (the method reports its own progress inside).
PHASES = {"oracle": (0.0, 0.1), "before": (0.1, 0.2), "method": (0.2, 0.85), "after": (0.85, 1.0)}


def complete_splits(forget: Dataset, retain: Dataset, holdout: Dataset | None = None,
                    general: Dataset | None = None, paraphrased: Dataset | None = None) -> dict[str, Dataset]:
    """The splits a report needs: the user's forget/retain (checked against each other),
    holdout/general defaulting to the workshop kit's (holdout of the forget set's kind), and
    the probe suite built from forget/retain and the forget set's held-out wordings when given
    (probes.py: what a room asks in chat)."""
    check_pair(forget, retain)
    ext = "jsonl" if forget.kind == "qa" else "txt"
    return {"forget": forget, "retain": retain,
            "holdout": holdout or load_file(WORKSHOP_DIR / f"holdout.{ext}"),
            "general": general or load_file(WORKSHOP_DIR / "tofu_general.jsonl"),
            "probes": probe_set(forget, retain, paraphrased)}


def _evaluate_phase(ctx: RunContext, phase: str, model, tokenizer, splits, oracle_raw=None, evaluate_one=None,
                    workers: int = 1):
    share = ctx.within(*PHASES[phase])
    count = len(scored_splits(splits))  # an evaluation-only retain set stands in for retain
    names = iter(range(count))
    progress = lambda msg: share.progress(next(names, 0) / count, f"{phase}: {msg}")
    return evaluate(model, tokenizer, splits, oracle_raw=oracle_raw, progress=progress, check_cancel=ctx.check_cancel,
                    evaluate_one=evaluate_one, workers=workers)


def _evaluate_after(ctx: RunContext, unlearned, tokenizer, splits, oracle_raw) -> tuple[dict, dict]:
    """The unlearned model's evaluation. Where the method hands over a private plain model
    (LoRA on a small CPU model: merged weights), two splits at a time, one core each (see
    models.set_cpu_threads); otherwise one at a time on the locked view."""
    with unlearned.evaluation_model() as model:
        private = not isinstance(model, LockedModel) and str(unlearned.loaded.device) == "cpu"
        return _evaluate_phase(ctx, "after", model, tokenizer, splits, oracle_raw, workers=2 if private else 1)


class Reference:
    """The oracle's and the original model's evaluation for one run: what the evaluation cache
    holds is known at once; the rest is computed now (`compute`: the progress bar's first two
    phases) or on one thread while the method runs (`start`: no progress events, the bar is
    the method's). `result()` waits for it and fills in forget_quality, which compares the two."""

    def __init__(self, ctx: RunContext, loaded: Loaded, oracle: Loaded | None, splits: dict[str, Dataset],
                 before: bool, cache: EvalCache | None = None):
        self._ctx, self._splits, self._cache, self._device = ctx, splits, cache, loaded.device
        self._models = {n: m for n, m in (("oracle", oracle), ("before", loaded if before else None)) if m is not None}
        self._values: dict[str, tuple[dict, dict]] = {}  # name → (metrics, raw)
        for name, model in self._models.items():
            if cache is not None and (hit := lookup(cache, model, splits)) is not None:
                self._values[name] = hit
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()

    @property
    def missing(self) -> list[str]:
        return [n for n in self._models if n not in self._values]

    def known(self) -> dict[str, Any]:
        """What a method may read now: {"oracle", "before", "oracle_raw"}, None where not (yet) known."""
        oracle, oracle_raw, before = self._finish()
        return {"oracle": oracle, "before": before, "oracle_raw": oracle_raw}

    def compute(self) -> None:
        """Evaluate what is missing now; on the CPU the two models side by side on two threads
        (each evaluation uses one core: see models.set_cpu_threads)."""
        missing = self.missing
        with ThreadPoolExecutor(max_workers=2 if self._device == "cpu" and len(missing) == 2 else 1) as pool:
            jobs = {n: pool.submit(self._evaluate, n, True) for n in missing}
            for name, job in jobs.items():
                self._values[name] = job.result()

    def start(self) -> None:
        """Evaluate what is missing on one thread, alongside the method (one core for each)."""
        missing = self.missing
        if not missing:
            return

        def main() -> None:
            try:
                t0 = time.perf_counter()
                for name in missing:
                    self._values[name] = self._evaluate(name, False)
                self._ctx.log(f"{' and '.join(missing)} evaluated alongside the method in {time.perf_counter() - t0:.1f} s")
            except BaseException as e:  # noqa: BLE001  raised in the run's thread by result()
                self._error = e

        self._thread = threading.Thread(target=main, name="reference", daemon=True)
        self._thread.start()

    def result(self) -> tuple[dict | None, dict | None, dict | None]:
        """(oracle metrics, oracle raw, before metrics), once every part is known."""
        if self._thread is not None:
            if self._thread.is_alive():
                self._ctx.progress(PHASES["after"][0], f"waiting for the {' and '.join(self.missing)} evaluation")
            while self._thread.is_alive():
                self._thread.join(0.2)
                self._ctx.check_cancel()
            self._thread = None
            if self._error is not None:
                raise self._error
        self.compute()  # anything not started (nothing, unless start() was never called)
        return self._finish()

    def close(self) -> None:
        """Stop a background evaluation (the run failed or was cancelled) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _check_cancel(self) -> None:
        if self._stop.is_set():
            raise Cancelled()
        self._ctx.check_cancel()

    def _evaluate(self, name: str, progress: bool) -> tuple[dict, dict]:
        loaded = self._models[name]
        one = cached_split(self._cache, loaded) if self._cache is not None else None
        view = original(loaded.model)
        if progress:
            return _evaluate_phase(self._ctx, name, view, loaded.tokenizer, self._splits, evaluate_one=one)
        return evaluate(view, loaded.tokenizer, self._splits, check_cancel=self._check_cancel, evaluate_one=one)

    def _finish(self) -> tuple[dict | None, dict | None, dict | None]:
        oracle, oracle_raw = self._values.get("oracle", (None, None))
        before, before_raw = self._values.get("before", (None, None))
        r_oracle = (oracle_raw or {}).get("forget", {}).get("R")
        if r_oracle and oracle is not None:  # (r_oracle implies oracle; likewise below)
            oracle = {**oracle, "forget_quality": 1.0}  # the oracle against itself, by definition
            if before is not None and before_raw is not None and before_raw.get("forget", {}).get("R"):
                before = {**before, "forget_quality": forget_quality(before_raw["forget"]["R"], r_oracle)}
        if oracle is not None and privleak_against(oracle_raw or {}, oracle_raw) is not None:
            oracle = {**oracle, "privleak": 0.0}  # likewise: its MIA AUC is the reference
            if before is not None and before_raw is not None and (leak := privleak_against(before_raw, oracle_raw)) is not None:
                before = {**before, "privleak": leak}
        return oracle, oracle_raw, before


def warm_reference(loaded: Loaded, oracle: Loaded | None, splits: dict[str, Dataset], cache: EvalCache) -> float:
    """Evaluate the original model (a run's `before`) and the oracle on `splits` into `cache`
    now, side by side on two threads; the seconds it took. Splits already cached are read, and
    a run started meanwhile waits for the ones under way (EvalCache.claim) instead of
    evaluating them again. The app does this for the workshop preset as it starts."""
    t0 = time.perf_counter()
    models = [m for m in (oracle, loaded) if m is not None]
    with ThreadPoolExecutor(max_workers=len(models)) as pool:
        jobs = [pool.submit(evaluate, original(m.model), m.tokenizer, splits, evaluate_one=cached_split(cache, m))
                for m in models]
        for job in jobs:
            job.result()
    return time.perf_counter() - t0


def prime() -> None:
    """Load what a run otherwise loads on its first use: peft (LoRA's adapters) and the ROUGE
    scorer, ~3 s together on a loaded 2-core CPU. The app's warm-up does this, so its first run
    costs what a later one does even when the evaluations it reads were shipped, not computed."""
    from .evaluation.scores import rouge_l_recall
    from .lora import adapters as lora  # noqa: F401  (imports peft)

    rouge_l_recall("warm", "warm")


def _reference_phases(ctx: RunContext, loaded: Loaded, oracle: Loaded | None, splits, before: bool,
                      cache: EvalCache | None = None):
    """Evaluate the oracle and the model before unlearning now: (oracle, oracle_raw, before)."""
    reference = Reference(ctx, loaded, oracle, splits, before, cache)
    reference.compute()
    return reference.result()


def _report(loaded: Loaded, t0: float, memory: MemoryWatch, **parts: Any) -> dict[str, Any]:
    """The report JSON: `parts` of a Report with the run's own cost, its wall time and its peak
    memory (not the process's lifetime peak), and each model's distance to the oracle."""
    report = Report(model=loaded.name, device=loaded.device, **parts,
                    wall_s=round(time.perf_counter() - t0, 2), peak_mem_mb=round(memory.peak_mb, 1))
    return with_distance(report.to_dict())


def unlearn_job(method: Method, cfg: Any, loaded: Loaded, splits: dict[str, Dataset], oracle: Loaded | None = None,
                evaluate_before: bool = True, cache: EvalCache | None = None, group: DataParallel | None = None):
    """Work function: returns {"report": dict, "unlearned": Unlearned}. `group`: the launched
    processes this is the main one of (a method that trains weights; distributed.py).

    The method starts first and the oracle/before evaluation runs alongside it (or comes from
    `cache`), so training shows its first steps within seconds, and the `after` evaluation
    overlaps whatever of it is left; a method that declares
    `reference_first` (ECO: its strength search aims at the oracle's value) gets it before it
    starts. Either way the report is the same; the LoRA methods' holdout target, which they
    read from `before` when it is known, they otherwise measure themselves, to the same value."""

    placement = {} if group is None else {"group": group}

    def work(ctx: RunContext) -> dict[str, Any]:
        t0 = time.perf_counter()
        with MemoryWatch(loaded.device) as memory:
            reference = Reference(ctx, loaded, oracle, splits, evaluate_before, cache)
            try:
                if reference.missing and getattr(method, "reference_first", False):
                    reference.compute()
                else:
                    reference.start()
                t_method = time.perf_counter()
                # oracle_raw: the oracle's per-example values (ECO's --target forget_quality matches its R)
                unlearned = method.run(ctx.within(*PHASES["method"]), loaded, splits, cfg, reference.known(), **placement)
                method_wall_s = round(time.perf_counter() - t_method, 2)
                # while the reference may still be finishing alongside: forget_quality, which
                # needs the oracle's truth ratios, is added once it is there
                after, after_raw = _evaluate_after(ctx, unlearned, loaded.tokenizer, splits, None)
                oracle_m, oracle_raw, before = reference.result()
            finally:
                reference.close()
            after = against_oracle(after, after_raw, oracle_raw)
        ctx.progress(1.0, "done")
        # the method's blocks (ECO's `eco`, LoRA's `lora`, `stopping`, `fila`) as its typed summaries wrote them
        report = _report(loaded, t0, memory, method=method.name, seed=getattr(cfg, "seed", None),
                         steps=unlearned.steps, trainable_params=unlearned.trainable_params,
                         history=unlearned.history, settings=asdict(cfg), oracle=oracle_m, before=before,
                         method_wall_s=method_wall_s, after=after, extra=unlearned.extra_report)
        return {"report": report, "unlearned": unlearned}

    return work


def eval_job(loaded: Loaded, splits: dict[str, Dataset], oracle: Loaded | None = None, unlearned: Any = None,
             cache: EvalCache | None = None):
    """Work function: the report of `python -m unlearning eval` (`after` only with an artifact)."""

    def work(ctx: RunContext) -> dict[str, Any]:
        t0 = time.perf_counter()
        with MemoryWatch(loaded.device) as memory:
            oracle_m, oracle_raw, before = _reference_phases(ctx, loaded, oracle, splits, True, cache)
            run: dict[str, Any] = {"method": None, "steps": 0, "trainable_params": 0}
            if unlearned is not None:
                after, _ = _evaluate_after(ctx, unlearned, loaded.tokenizer, splits, oracle_raw)
                run = {"method": unlearned.method, "steps": unlearned.steps, "trainable_params": unlearned.trainable_params,
                       "history": unlearned.history, "after": after}
        ctx.progress(1.0, "done")
        return _report(loaded, t0, memory, oracle=oracle_m, before=before, **run)

    return work

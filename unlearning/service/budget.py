"""How much of the shared device a run would take, estimated from its settings before it
starts, and each session's share of it (limits.MAX_RUN_DEVICE_S, limits.SESSION_DEVICE_S).

    seconds = job.estimate(settings, examples)   # each job kind estimates itself (service/jobs.py)
    budget.check(session, seconds, job.lower)   # one sentence when the run is too heavy or the hour is used up
    budget.charge(session, seconds)             # the run started: its estimate counts for the next hour

Only the app's service layer budgets (the CLI runs on the user's own machine). The estimate
is in seconds of the workshop model on 2 CPU cores (benchmarks/RESULTS.md: a default IHL +
FILA step ~68 ms, a default stress test ~16 s; 5,000 steps × batch 256 × rank 64 ~40 min):
a larger model takes longer, so it is a floor per setting, not a promise of the wall time.
"""

from __future__ import annotations

import time
from typing import Any

from .. import limits
from ..errors import UserError

HOUR_S = 3600.0
RUN_OVERHEAD_S = 10.0  # evaluating before and after, starting the run
STEP_S = 0.06  # one training step whatever its size
EXAMPLE_S = 0.00082  # one forget + retain example of a step, at rank factor 1
ECO_POINT_S = 2.0  # ECO: one strength the search evaluates
ATTACK_S = {"relearn": 1.3, "quantize": 1.9, "paraphrase": 1.1, "prompts": 7.5}  # scoring 40 questions per split
ATTACK_MODELS = 3  # each attack runs on the original, the unlearned model and the oracle


def rank_factor(rank: int) -> float:
    """A LoRA step's cost grows with its rank: ×1.125 at rank 8, ×2 at rank 64."""
    return 1.0 + rank / 64


def step_s(batch: int, rank: int) -> float:
    return STEP_S + EXAMPLE_S * batch * rank_factor(rank)


def run_s(settings: Any) -> float:
    """Seconds of the device an unlearning run with these checked settings (a method's Config) takes."""
    if all(hasattr(settings, a) for a in ("steps", "batch_size", "rank")):
        return RUN_OVERHEAD_S + settings.steps * step_s(settings.batch_size, settings.rank)
    points = getattr(settings, "grid_points", 0) + getattr(settings, "search_steps", 0)  # ECO
    return RUN_OVERHEAD_S + ECO_POINT_S * points


def stress_s(settings: Any, examples: int | None = None) -> float:
    """Seconds of the device a stress test with these checked AttackSettings takes, scoring at
    most `examples` forget examples."""
    names = settings.names()
    sample = min(settings.sample, examples) if examples else settings.sample
    seconds = sum(ATTACK_S[n] for n in names) * sample / 40
    if "relearn" in names:
        seconds += ATTACK_MODELS * settings.relearn_steps * step_s(settings.relearn_batch, settings.relearn_rank)
    return seconds


def used(session: Any, now: float | None = None) -> float:
    """Seconds of the device the session's runs started in the last hour were estimated at."""
    now = time.monotonic() if now is None else now
    with session.lock:
        session.device_log = [(t, s) for t, s in session.device_log if now - t < HOUR_S]
        return sum(s for _, s in session.device_log)


def check(session: Any, seconds: float, lower: str) -> None:
    """Refuse, in one sentence naming the budget and `lower` (what to lower), a run estimated at `seconds`."""
    if seconds > limits.MAX_RUN_DEVICE_S:
        raise UserError(f"This run would take about {_minutes(seconds)} of the shared device; one run may take "
                        f"{_minutes(limits.MAX_RUN_DEVICE_S)} — {lower}.")
    spent = used(session)
    if spent + seconds > limits.SESSION_DEVICE_S:
        raise UserError(f"This run would take about {_minutes(seconds)} of the shared device and this session's runs "
                        f"of the last hour took {_minutes(spent)}; a visitor may use {_minutes(limits.SESSION_DEVICE_S)} "
                        f"an hour — {lower}, or wait.")


def charge(session: Any, seconds: float, now: float | None = None) -> None:
    with session.lock:
        session.device_log.append((time.monotonic() if now is None else now, seconds))


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} seconds"
    minutes = round(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"

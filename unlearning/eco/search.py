"""ECO's strength search: find the corruption strength at which the guarded model's forget
metric matches a target (Liu et al., NeurIPS 2024, arXiv 2406.07933, §3.3).

Too weak a corruption leaves the fact readable; too strong a one makes the model talk
nonsense, which is itself a tell. The target says how much a model that never learned the
fact still gets right (the oracle's value, or a surrogate). The metric is a black box of
the strength (generation, a classifier in the loop), so the search is zeroth-order:

1. a coarse log-spaced grid from the weakest strength up, keeping the point closest to the
   target (it stops early at a point within tolerance);
2. then steps on u = log σ: g = (f(u+ε) − f(u−ε)) / 2ε, a finite-difference derivative,
   and a damped Gauss–Newton step u ← u − η·(f(u) − t)/g on the matching loss (f − t)².
   METHODS.md writes the step as σ ← σ − η·g; descending on (f − t)² is what "match the
   target" means (with f above the target and falling in σ, both move σ the same way), and
   working in log σ lets one step size serve strengths from 0.01 to 1000.

Stops when |f − t| ≤ tol, after `steps` steps, or when f is flat around the point.
Every evaluated (strength, f) is passed to `on_point` (the live plot) and kept.

    result = search(lambda s: 1 / (1 + s), target=0.25, lo=0.01, hi=100)   # → strength ≈ 3
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SearchResult:
    strength: float
    value: float  # f at `strength`
    target: float
    points: list[dict] = field(default_factory=list)  # {"strength", "metric", "target", "phase"} in order


def log_grid(lo: float, hi: float, points: int, integer: bool = False) -> list[float]:
    """`points` log-spaced values from lo to hi (distinct whole numbers when `integer`)."""
    if points <= 1:
        return [round(math.sqrt(lo * hi)) if integer else math.sqrt(lo * hi)]
    ratio = (hi / lo) ** (1 / (points - 1))
    grid = [lo * ratio**i for i in range(points)]
    return sorted({float(round(x)) for x in grid}) if integer else grid


def search(f: Callable[[float], float], target: float, lo: float, hi: float, grid_points: int = 7,
           steps: int = 6, tol: float = 0.02, eps: float = 0.25, damping: float = 1.0, max_jump: float = 1.5,
           integer: bool = False, on_point: Callable[[dict], None] | None = None,
           check_cancel: Callable[[], None] | None = None) -> SearchResult:
    """Minimise |f(strength) − target| over [lo, hi] (see the module docstring).

    eps and max_jump are in log-strength units (eps 0.25 ≈ ±28 %; a step moves σ at most
    ×e^1.5 ≈ 4.5). With `integer`, strengths are rounded to whole numbers (k dimensions)."""
    seen: dict[float, float] = {}
    points: list[dict] = []

    def clip(strength: float) -> float:
        # 6 significant digits: exp(log σ) round trips must land on the point already seen.
        s = float(round(strength)) if integer else float(f"{strength:.6g}")
        return min(max(s, lo), hi)

    def evaluate(s: float, phase: str) -> float:
        if s not in seen:
            if check_cancel is not None:
                check_cancel()
            seen[s] = float(f(s))
            point = {"strength": s, "metric": seen[s], "target": target, "phase": phase}
            points.append(point)
            if on_point is not None:
                on_point(point)
        return seen[s]

    def best() -> float:
        # Closest to the target; on a tie the weaker corruption (it disturbs the model less).
        return min(seen, key=lambda s: (abs(seen[s] - target), s))

    for s in log_grid(lo, hi, grid_points, integer):
        if abs(evaluate(clip(s), "grid") - target) <= tol:
            break  # close enough: the rest of the grid cannot do better than "within tolerance"
    s = best()
    for _ in range(steps):
        value = seen[s]
        if abs(value - target) <= tol:
            break
        up, down = _neighbours(s, eps, clip, integer)
        if up == down:
            break
        g = (evaluate(up, "search") - evaluate(down, "search")) / (math.log(up) - math.log(down))  # df/d log σ
        if g == 0:
            break  # flat here: no direction to go
        jump = max(-max_jump, min(max_jump, -damping * (value - target) / g))
        nxt = clip(s * math.exp(jump))
        if nxt == s:
            break
        evaluate(nxt, "search")
        s = nxt
    s = best()
    return SearchResult(strength=s, value=seen[s], target=target, points=points)


def _neighbours(s: float, eps: float, clip: Callable[[float], float], integer: bool) -> tuple[float, float]:
    """Strengths just above and below s for the central difference (whole numbers at least
    one apart when the strength is a count k; one-sided at the ends of the range)."""
    up, down = clip(s * math.exp(eps)), clip(s * math.exp(-eps))
    if integer:
        up, down = max(up, clip(s + 1)), min(down, clip(s - 1))
    return up, down

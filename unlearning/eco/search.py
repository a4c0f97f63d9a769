"""ECO's strength search: find the corruption strength at which the guarded model's forget
metric matches a target (Liu et al., NeurIPS 2024, arXiv 2406.07933, §3.3).

Too weak a corruption leaves the fact readable; too strong a one makes the model talk
nonsense, which is itself a tell. The target says how much a model that never learned the
fact still gets right (the oracle's value, or a surrogate). The metric is a black box of
the strength (generation, a classifier in the loop), so the search is zeroth-order, in
u = log σ (one step size serves strengths from 0.001 to 10000):

1. a coarse log-spaced grid from the weakest strength up, keeping the point closest to the
   target (it stops early at a point within tolerance);
2. once two evaluated strengths bracket the target (f − t changes sign between neighbours),
   bisection in log σ inside the bracket: every step halves it, so a steep metric is met
   instead of stepped over;
3. before that, steps g = (f(u+ε) − f(u−ε)) / 2ε, a finite-difference derivative, and a
   damped Gauss–Newton step u ← u − η·(f(u) − t)/g on the matching loss (f − t)².
   METHODS.md writes the step as σ ← σ − η·g; descending on (f − t)² is what "match the
   target" means (with f above the target and falling in σ, both move σ the same way).

Stops when |f − t| ≤ tol, after `steps` steps, when f is flat around the point or when the
bracket cannot be split (neighbouring whole numbers). `maximise` is the same grid, then a
golden-section search in log σ around the best grid point: forget quality (a p-value, at
most 1) has a peak, not a crossing. Every evaluated (strength, f) is passed to `on_point`
(the live plot) and kept.

    result = search(lambda s: 1 / (1 + s), target=0.25, lo=0.01, hi=100)   # → strength ≈ 3
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise


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


class _Points:
    """Every strength evaluated so far, its value, and the events for the plot."""

    def __init__(self, f: Callable[[float], float], target: float, lo: float, hi: float, integer: bool,
                 on_point: Callable[[dict], None] | None, check_cancel: Callable[[], None] | None):
        self.f, self.target, self.lo, self.hi, self.integer = f, target, lo, hi, integer
        self.on_point, self.check_cancel = on_point, check_cancel
        self.seen: dict[float, float] = {}
        self.points: list[dict] = []

    def clip(self, strength: float) -> float:
        # 6 significant digits: exp(log σ) round trips must land on the point already seen.
        s = float(round(strength)) if self.integer else float(f"{strength:.6g}")
        return min(max(s, self.lo), self.hi)

    def __call__(self, s: float, phase: str) -> float:
        if s not in self.seen:
            if self.check_cancel is not None:
                self.check_cancel()
            self.seen[s] = float(self.f(s))
            point = {"strength": s, "metric": self.seen[s], "target": self.target, "phase": phase}
            self.points.append(point)
            if self.on_point is not None:
                self.on_point(point)
        return self.seen[s]

    def best(self) -> float:
        # Closest to the target; on a tie the weaker corruption (it disturbs the model less).
        return min(self.seen, key=lambda s: (abs(self.seen[s] - self.target), s))

    def bracket(self) -> tuple[float, float] | None:
        """Neighbouring evaluated strengths a < b with f − t of opposite signs; of several
        (a metric that is not monotone), the one with the point closest to the target."""
        pairs = [(a, b) for a, b in pairwise(sorted(self.seen)) if (self.seen[a] - self.target) * (self.seen[b] - self.target) < 0]
        return min(pairs, key=lambda p: (min(abs(self.seen[s] - self.target) for s in p), p[0]), default=None)

    def grid(self, grid_points: int, tol: float) -> None:
        for s in log_grid(self.lo, self.hi, grid_points, self.integer):
            if abs(self(self.clip(s), "grid") - self.target) <= tol:
                break  # close enough: the rest of the grid cannot do better than "within tolerance"

    def result(self) -> SearchResult:
        s = self.best()
        return SearchResult(strength=s, value=self.seen[s], target=self.target, points=self.points)


def search(f: Callable[[float], float], target: float, lo: float, hi: float, grid_points: int = 7,
           steps: int = 8, tol: float = 0.02, eps: float = 0.25, damping: float = 1.0, max_jump: float = 1.5,
           integer: bool = False, on_point: Callable[[dict], None] | None = None,
           check_cancel: Callable[[], None] | None = None) -> SearchResult:
    """Minimise |f(strength) − target| over [lo, hi] (see the module docstring).

    eps and max_jump are in log-strength units (eps 0.25 ≈ ±28 %; a step moves σ at most
    ×e^1.5 ≈ 4.5). With `integer`, strengths are rounded to whole numbers (k dimensions).
    A bisection step costs one evaluation, a Newton step up to three."""
    pts = _Points(f, target, lo, hi, integer, on_point, check_cancel)
    pts.grid(grid_points, tol)
    s = pts.best()
    for _ in range(steps):
        if abs(pts.seen[pts.best()] - target) <= tol:
            break
        if (bracket := pts.bracket()) is not None:
            a, b = bracket
            mid = pts.clip(math.sqrt(a * b))  # the middle in log σ
            if mid in (a, b):
                break  # neighbouring whole numbers (or 6-digit strengths): nothing left to split
            pts(mid, "bisect")
            continue
        value = pts.seen[s]
        up, down = _neighbours(s, eps, pts.clip, integer)
        if up == down:
            break
        g = (pts(up, "search") - pts(down, "search")) / (math.log(up) - math.log(down))  # df/d log σ
        if g == 0:
            break  # flat here: no direction to go
        jump = max(-max_jump, min(max_jump, -damping * (value - target) / g))
        nxt = pts.clip(s * math.exp(jump))
        if nxt == s:
            break
        pts(nxt, "search")
        s = nxt
    return pts.result()


GOLDEN = (math.sqrt(5) - 1) / 2  # 0.618: the share of the interval a golden-section step keeps


def maximise(f: Callable[[float], float], ceiling: float, lo: float, hi: float, grid_points: int = 7,
             steps: int = 8, tol: float = 0.02, integer: bool = False, on_point: Callable[[dict], None] | None = None,
             check_cancel: Callable[[], None] | None = None) -> SearchResult:
    """The strength in [lo, hi] with the largest f, for an f with one peak that never exceeds
    `ceiling` (forget quality: 1). The grid, then up to `steps` golden-section evaluations in
    log σ between the best grid point's neighbours; stops once f is within tol of the ceiling.
    On a tie the weaker corruption wins."""
    pts = _Points(f, ceiling, lo, hi, integer, on_point, check_cancel)
    pts.grid(grid_points, tol)

    def done() -> bool:
        return ceiling - pts.seen[pts.best()] <= tol

    def at(u: float) -> float:
        return pts(pts.clip(math.exp(u)), "golden")

    if steps < 2 or done():
        return pts.result()
    xs = sorted(pts.seen)
    i = xs.index(pts.best())
    ua, ub = math.log(xs[max(i - 1, 0)]), math.log(xs[min(i + 1, len(xs) - 1)])  # the peak lies between
    c, d = ub - GOLDEN * (ub - ua), ua + GOLDEN * (ub - ua)
    fc, fd = at(c), at(d)
    for _ in range(steps - 2):  # one new point per step from here on
        if done():
            break
        if fc >= fd:  # the peak is left of d (a tie keeps the weaker side)
            ub, d, fd = d, c, fc
            c = ub - GOLDEN * (ub - ua)
            fc = at(c)
        else:
            ua, c, fc = c, d, fd
            d = ua + GOLDEN * (ub - ua)
            fd = at(d)
    return pts.result()


def _neighbours(s: float, eps: float, clip: Callable[[float], float], integer: bool) -> tuple[float, float]:
    """Strengths just above and below s for the central difference (whole numbers at least
    one apart when the strength is a count k; one-sided at the ends of the range)."""
    up, down = clip(s * math.exp(eps)), clip(s * math.exp(-eps))
    if integer:
        up, down = max(up, clip(s + 1)), min(down, clip(s - 1))
    return up, down

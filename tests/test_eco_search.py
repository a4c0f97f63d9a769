"""ECO's strength search on known 1-D functions (METHODS.md §ECO, item 5)."""

from __future__ import annotations

import math

import pytest

from unlearning.errors import Cancelled
from unlearning.eco.search import log_grid, search


def test_log_grid():
    assert log_grid(1, 100, 3) == pytest.approx([1, 10, 100])
    assert log_grid(1, 64, 7, integer=True) == [1, 2, 4, 8, 16, 32, 64]
    assert log_grid(1, 3, 5, integer=True) == [1, 2, 3]  # duplicates collapse


def test_finds_the_strength_where_a_smooth_metric_meets_the_target():
    points = []
    r = search(lambda s: 1 / (1 + s), target=0.25, lo=0.01, hi=100, tol=1e-3, steps=10, on_point=points.append)
    assert r.strength == pytest.approx(3.0, rel=0.01)  # 1/(1+3) = 0.25
    assert abs(r.value - 0.25) <= 1e-3
    assert points == r.points and len(points) > 7
    assert [p["phase"] for p in points[:7]] == ["grid"] * 7
    assert {"strength", "metric", "target"} <= set(points[0]) and points[0]["target"] == 0.25


def test_stops_as_soon_as_the_grid_is_within_tolerance():
    r = search(lambda s: 1 / (1 + s), target=0.5, lo=0.01, hi=100, tol=0.01)
    # The grid 0.01, 0.046, 0.22, 1, … holds σ = 1 exactly: the 4th point ends the search.
    assert r.strength == pytest.approx(1.0) and len(r.points) == 4


def test_integer_strength_searches_whole_numbers():
    r = search(lambda k: 1 - k / 64, target=0.3, lo=1, hi=64, tol=0.0, steps=10, integer=True)
    assert r.strength in (44.0, 45.0)  # 1 − k/64 = 0.3 at k = 44.8
    assert all(p["strength"] == int(p["strength"]) for p in r.points)


def test_step_function_like_rouge_is_matched_within_tolerance():
    # Answers change a word at a time: the metric is a staircase falling in log σ.
    def f(s: float) -> float:
        return math.floor(10 / (1 + s / 5)) / 10

    r = search(f, target=0.3, lo=0.01, hi=1000, tol=0.05, steps=8)
    assert abs(r.value - 0.3) <= 0.05


def test_flat_metric_returns_the_weakest_best_point():
    r = search(lambda s: 0.7, target=0.2, lo=0.1, hi=10, grid_points=3)
    assert r.strength == pytest.approx(0.1) and r.value == 0.7
    # The grid, then one one-sided difference at the low end of the range that finds no slope.
    assert len(r.points) == 3 + 1


def test_every_evaluation_checks_for_cancel():
    calls = []

    def cancel():
        calls.append(1)
        if len(calls) == 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        search(lambda s: s, target=0.5, lo=0.1, hi=10, check_cancel=cancel)

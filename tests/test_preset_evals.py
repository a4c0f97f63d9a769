"""The workshop preset's shipped evaluations (service/preset_evals.py) are current: a fresh app
reads its first run's oracle and `before` instead of computing them."""

from __future__ import annotations

import pytest

from unlearning.evaluation.cache import SHIPPED, EvalCache
from unlearning.service import ModelCache, Studio
from unlearning.service.preset_evals import stale


@pytest.fixture(scope="module")
def models():
    return ModelCache(device="cpu")


def test_the_shipped_evaluations_match_the_kit_and_the_code(models):
    assert stale(SHIPPED, models) == [], (
        f"{SHIPPED.name} is stale (the workshop kit, the metric code or a pinned version changed): "
        "run `python -m unlearning.service.preset_evals` and commit the file")


def test_a_fresh_apps_warm_up_computes_nothing(models):
    cache = EvalCache(shipped=SHIPPED)
    Studio(models, evals=cache).warm_preset()
    assert (cache.hits, cache.misses) == (10, 0)  # 5 splits of the oracle and of the model before

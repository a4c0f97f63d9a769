"""unlearning/service/stress.py and components/stress_panel.py: a stress-test report becomes
one picture per attack (three models each, the oracle as the reference), whatever is missing."""

from __future__ import annotations

import pytest

from components import stress_panel
from unlearning.service.stress import stress_view

CELL = {"unlearned": {"forget.rougeL": 0.25, "retain.rougeL": 0.98}, "oracle": {"forget.rougeL": 0.2, "retain.rougeL": 1.0},
        "original": {"forget.rougeL": 1.0, "retain.rougeL": 1.0}}
REPORT = {"robustness": {
    "relearn": {"steps": [0, 5, 10, 20], "unlearned": [0.2, 0.3, 0.4, 0.46], "oracle": [0.22, 0.25, 0.3, 0.3],
                "original": [1.0, 1.0, 1.0, 1.0], "metric": "forget_heldout.rougeL", "summary": "After 20 steps …", "wall_s": 6.3},
    "quantize": {"8": CELL, "4": CELL, "summary": "Rounded …", "wall_s": 2.2},
    "paraphrase": {**CELL, "source": "'forget_paraphrased.jsonl'", "summary": "In wordings never trained …"},
    "prompts": {"few_shot": {**CELL, "example": "Q: …"}, "role_play": CELL, "summary": "The wrapper …"},
    "note": "ECO changes no weight of the model.",
}}


def test_one_view_per_attack_with_three_models():
    views = {v.name: v for v in stress_view(REPORT)}
    assert list(views) == ["relearn", "quantize", "paraphrase", "prompts"]
    relearn = views["relearn"]
    assert relearn.kind == "line" and [s.model for s in relearn.series] == ["original", "unlearned", "oracle"]
    assert relearn.series[1].xs == (0, 5, 10, 20) and relearn.series[1].ys == (0.2, 0.3, 0.4, 0.46)
    assert views["quantize"].series[1].xs == ("8-bit", "4-bit") and views["quantize"].series[1].ys == (0.25, 0.25)
    assert views["prompts"].series[2].xs == ("few-shot", "role-play")  # the example is not a condition
    assert views["paraphrase"].series[0].xs == ("forget.rougeL", "retain.rougeL")
    assert all(len(stress_panel.figure(v).data) == 3 for v in views.values())


@pytest.mark.parametrize("report", [None, {}, {"robustness": None}, {"robustness": {"relearn": "broken"}},
                                    {"robustness": {"relearn": {"steps": [0, 1]}}},
                                    {"robustness": {"quantize": {"8": {"unlearned": {}}}}}])
def test_partial_reports_draw_what_they_can(report):
    for view in stress_view(report):
        stress_panel.figure(view)  # never raises
        assert stress_panel.caption(view) is not None
    assert len(stress_panel.pictures(report)) == 8  # a (plot, caption) update per attack, shown or hidden

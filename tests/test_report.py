"""report.py: the typed reading of a report dict never raises, whatever is missing or wrong."""

from __future__ import annotations

import math

import pytest

from tests.reports import ECO, LORA, keys, without
from unlearning.eco.summary import EcoSummary, Probe
from unlearning.report import Plot, Report


def test_a_full_eco_report_reads_into_its_fields():
    r = Report.from_dict(ECO)
    assert (r.method, r.model, r.device, r.seed, r.steps, r.trainable_params) == ("eco", "workshop", "cpu", 0, 3, 12_288)
    assert (r.wall_s, r.method_wall_s, r.peak_mem_mb) == (41.2, 11.5, 812.3)
    assert r.after["forget.rougeL"] == 0.2 and r.oracle["forget_quality"] == 1.0 and r.history[0]["total"] == 2.5
    assert r.settings["alpha"] == 0.01 and r.artifact is None and r.extra == {}
    eco = r.eco
    assert (eco.classifier_recall, eco.classifier_fpr, eco.cv_folds, eco.threshold, eco.alpha) == (0.98, 0.004, 5, 0.14, 0.01)
    assert (eco.corruption, eco.strength, eco.metric, eco.target, eco.target_source) == (
        "rand_noise_first_n", 46.4, "rougeL", 0.19, "oracle")
    assert (eco.search_target, eco.protocol) == ("metric", "prompt")
    assert eco.robustness["subject_swap"] == Probe(0.9, None, 12, "Who is Y?")
    assert eco.unseen_fpr == {"holdout": 0.0, "general": 0.01} and eco.search[0]["phase"] == "grid"
    assert eco.extra["encoder"] == "assets/encoder"  # the keys it does not type are kept


def test_a_lora_reports_own_blocks_stay_as_extra_sections():
    r = Report.from_dict(LORA)
    assert r.eco is None and set(r.extra) == {"lora", "stopping", "fila"}
    assert r.section("stopping")["reached_at"] == 2 and r.section("nothing") == {}


@pytest.mark.parametrize("report", [None, {}, [], "report", 3, {"eco": "x", "before": [1, 2], "history": "h"}],
                         ids=["None", "empty", "list", "str", "int", "garbage"])
def test_anything_reads_without_raising(report):
    r = Report.from_dict(report)
    assert r.method is None and r.before is None and r.eco is None and r.history == []


@pytest.mark.parametrize("source", [ECO, LORA], ids=["eco", "lora"])
@pytest.mark.parametrize("replacement", [..., None, "wrong", [1]], ids=["missing", "None", "str", "list"])
def test_each_key_missing_none_or_of_the_wrong_type(source, replacement):
    for key in keys(source):
        Report.from_dict(without(source, key, replacement))  # never raises


def test_values_of_the_wrong_type_become_none():
    r = Report.from_dict({"method": 3, "steps": "ten", "seed": 2.5, "trainable_params": True, "wall_s": math.nan,
                          "before": {"forget.rougeL": "high", 7: 0.5, "x": None}, "settings": "s",
                          "eco": {"robustness": {"paraphrase": "p", "swap": {"recall": "all"}}, "cv_folds": 4.0}})
    assert (r.method, r.steps, r.seed, r.trainable_params, r.wall_s) == (None, None, None, None, None)
    assert r.before == {"forget.rougeL": None, "7": 0.5, "x": None} and r.settings == {}
    assert r.eco.robustness == {"paraphrase": Probe(), "swap": Probe()} and r.eco.cv_folds == 4
    assert EcoSummary.from_dict(None) == EcoSummary()


def test_a_plot_draws_every_value_but_its_x_axis_and_hidden_ones():
    search = Plot("search", "strength search", x="strength", mode="markers")
    assert search.traces({"strength": 2.0, "metric": 0.5, "target": 0.2}) == ["metric", "target"]
    train = Plot("train", "losses", hidden=("lr", "elapsed_s"))
    assert train.traces({"total": 1.0, "lr": 1e-4, "elapsed_s": 0.3, "forget_ihl": 0.5}) == ["total", "forget_ihl"]

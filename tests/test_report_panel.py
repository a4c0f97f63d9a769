"""The report panel renders whatever report it is given: every optional part absent, None or
of the wrong type, and the two crashes of issue 11 (ECO's recall None; a probe's FPR None)."""

from __future__ import annotations

import pytest

from components import report_panel
from components.common import PALETTE
from tests.reports import ECO, LORA, keys, without


def render(report) -> str:
    """Everything the panel shows of a report (what `show` returns, joined; the chart as JSON)."""
    fig = report_panel.chart(report)
    return (report_panel.report_html(report) + report_panel.cost_line(report) + report_panel.warnings_html(report)
            + (fig.to_json() if fig is not None else ""))


@pytest.mark.parametrize("source", [ECO, LORA], ids=["eco", "lora"])
@pytest.mark.parametrize("replacement", [..., None, "wrong", {"a": 1}], ids=["missing", "None", "str", "dict"])
def test_the_compare_views_take_kept_runs_with_any_part_missing(source, replacement):
    from components import compare_panel
    from unlearning.service import Session

    session = Session()
    try:
        for key in keys(source):
            session.keep(source.get("method") or "eco", _Artifact(), without(source, key, replacement))
        session.keep("ga", _Artifact(), None)
        table, fig = compare_panel.compare(session)
        assert len(table) >= len(keys(source)) + 1 and all(len(row) == len(compare_panel.HEADERS) for row in table)
        assert fig is None or fig.to_json()
    finally:
        session.close()


class _Artifact:
    def release(self):
        pass


def test_the_chart_draws_before_after_and_the_oracle_as_a_gold_bar():
    fig = report_panel.chart({"before": {"forget.rougeL": 1.0, "model_utility": 0.8},
                              "after": {"forget.rougeL": 0.2, "model_utility": 0.79}, "oracle": {"forget.rougeL": 0.18}})
    bars = [t for t in fig.data if t.type == "bar"]
    assert [list(b.y) for b in bars] == [[1.0, 0.2, 0.18], [0.8, 0.79]]  # model utility has no oracle value: no bar
    assert list(bars[0].marker.color)[2] == PALETTE["oracle"] and not [t for t in fig.data if t.type == "scatter"]
    assert fig.layout.annotations[0].text == "forget ROUGE-L<br><i>↓ to the oracle</i>"
    assert report_panel.chart(None) is None and report_panel.chart({"after": {"mia_auc": 0.5}}) is None


def test_long_titles_wrap_between_words():
    assert report_panel.wrap("fluency of forget answers (bits)") == "fluency of forget<br>answers (bits)"
    assert report_panel.wrap("forget ROUGE-L") == "forget ROUGE-L"


def test_every_picture_draws_the_oracle_in_one_colour():
    """The report's chart, the compare picture and the stress test's plots: the oracle is gold in each."""
    from components import compare_panel, stress_panel
    from unlearning.service.compare import CompareRow, Reference
    from unlearning.service.stress import stress_view

    report = {"before": {"forget.rougeL": 1.0}, "after": {"forget.rougeL": 0.2}, "oracle": {"forget.rougeL": 0.18}}
    assert list(report_panel.chart(report).data[0].marker.color)[2] == PALETTE["oracle"]
    fig = compare_panel.figure([CompareRow("#1 GA", "ga", "", 1, 1.0, 0.2, 0.7, 0.1, 5.0)],
                               [Reference("oracle", 0.18, 0.75, 1.0, 5.0)])
    assert next(t for t in fig.data if t.name.startswith("oracle")).marker.color == PALETTE["oracle"]
    robustness = {"relearn": {"steps": [0, 5], "unlearned": [0.2, 0.5], "oracle": [0.18, 0.2], "original": [1.0, 1.0],
                              "metric": "forget_heldout.rougeL"},
                  "quantize": {"8": {m: {"forget.rougeL": 0.2, "retain.rougeL": 0.9} for m in ("unlearned", "oracle", "original")}}}
    views = stress_view({"robustness": robustness})
    assert views
    for view in views:
        oracle = next(t for t in stress_panel.figure(view).data if "oracle" in t.name)
        assert (oracle.line.color if view.kind == "line" else oracle.marker.color) == PALETTE["oracle"], view.name


@pytest.mark.parametrize("source", [ECO, LORA], ids=["eco", "lora"])
@pytest.mark.parametrize("replacement", [..., None, "wrong", {"a": 1}], ids=["missing", "None", "str", "dict"])
def test_a_report_renders_with_any_part_missing_or_malformed(source, replacement):
    for key in keys(source):
        text = render(without(source, key, replacement))
        assert "<script" not in text and 'id="report-table"' in text, key


@pytest.mark.parametrize("report", [None, {}], ids=["None", "empty"])
def test_no_report_yet(report):
    assert "No report yet" in report_panel.report_html(report) and report_panel.cost_line(report) == ""


def test_an_eco_run_on_a_one_question_forget_file():
    """Too few forget prompts to cross-validate: recall and FPR are None (issue 11, crash 1)."""
    report = without(without(ECO, "eco.classifier_recall", None), "eco.classifier_fpr", None)
    text = report_panel.report_html(report)
    assert "<td>classifier recall (k-fold, forget prompts)</td><td>—</td>" in text
    assert "<td>false-positive rate (k-fold, benign prompts)</td><td>—</td>" in text


def test_a_probe_no_retain_prompt_takes_has_no_fpr():
    """Forget data with a subject, retain data without: the rewrite has no FPR (issue 11, crash 2)."""
    text = report_panel.report_html(ECO)
    assert "<tr><td>subject_swap</td><td>0.90</td><td>—</td><td>Who is Y?</td></tr>" in text
    assert "&lt;b&gt;Who&lt;/b&gt;" in text and "<b>Who</b>" not in text  # every value escaped


def test_an_every_key_absent_report_shows_dashes():
    text = render({"method": None, "before": {"forget.rougeL": None}})
    assert "<td>forget.rougeL</td><td>↓ (to oracle)</td><td>—</td><td>—</td><td>—</td>" in text
    assert "— steps, — s in all (— s unlearning), peak memory — MB, — trainable parameters." in text


def test_the_eco_block_and_the_lora_block():
    eco = report_panel.report_html(ECO)
    assert 'id="eco-block"' in eco and 'id="eco-robustness"' in eco and "0.980" in eco and "↓ (target ≤ 0.01)" in eco
    lora = report_panel.report_html(LORA)
    assert 'id="lora-block"' in lora and "12.0%" in lora and "eco-robustness" not in lora
    assert "12,288 trainable parameters" in report_panel.cost_line(LORA)


def test_block_values_and_ids_are_escaped():
    from unlearning.service.catalog import Block, Line, Table

    block = Block("<i>t</i>", (Line("<l>", "<v>", "<b>"),), Table(("<h>",), (("<c>",),), id='x" onclick="y'), id="<id>")
    text = report_panel.block_html(block)
    assert "<i>" not in text and "<l>" not in text and "<v>" not in text and "<c>" not in text and "<h>" not in text
    assert 'onclick="y' not in text and "&lt;id&gt;" in text


@pytest.mark.parametrize("value, spec, shown", [(None, "", "—"), (float("nan"), ".3f", "—"), (0.12345, "", "0.1235"),
                                                (12345.6, "", "1.235e+04"), (3, "", "3"), (0.5, ".1%", "50.0%"),
                                                ("text", ".3f", "text"), (True, "", "True"), (7, "bad", "7")])
def test_fmt(value, spec, shown):
    assert report_panel.fmt(value, spec) == shown

"""UI panels through their pure helpers (no browser): tables, plots, badges, escaping."""

from __future__ import annotations

from components import chat_panel, data_panel, method_panel, report_panel, run_panel
from unlearning.data import QA, Dataset
from unlearning.runs import Event
from unlearning.studio import SessionState, Studio


def test_report_rows_have_arrows_and_oracle_column():
    report = {"before": {"forget.rougeL": 1.0, "forget_quality": 0.001}, "after": {"forget.rougeL": 0.2},
              "oracle": {"forget.rougeL": 0.19, "forget_quality": 1.0}}
    rows = report_panel.rows(report)
    assert rows[0][0] == "forget_quality"  # headline metrics first
    rouge = next(r for r in rows if r[0] == "forget.rougeL")
    assert rouge[1].startswith("↓") and rouge[2:] == ["1.0000", "0.2000", "0.1900"]
    assert next(r for r in rows if r[0] == "forget_quality")[3] == "—"
    assert "<script>" not in report_panel.table_html({"before": {"<script>": 1.0}})


def test_plot_points_per_series_and_search_axis():
    events = [Event("step", series="train", step=1, values={"total": 2.0, "lr": 1e-3}),
              Event("step", series="train", step=2, values={"total": 1.5, "lr": 1e-3}),
              Event("step", series="search", step=1, values={"strength": 0.5, "metric": 0.9, "target": 0.2}),
              Event("log", message="hi")]
    points = run_panel.series_points(events)
    assert points["train"] == {"total": ([1, 2], [2.0, 1.5])}  # lr is not a loss
    assert points["search"]["metric"] == ([0.5], [0.9]) and "strength" not in points["search"]
    assert len(run_panel.figure(events).data) == 3  # train total; search metric and target
    assert run_panel.figure([]) is None


def test_progress_bar_text():
    events = [Event("progress", fraction=0.25, message="before: evaluating forget")]
    text = run_panel.progress_html(events, "running")
    assert "width:25%" in text and "running — 25% — before: evaluating forget" in text
    assert "cancelled" in run_panel.progress_html(events + [Event("cancelled", message="Cancelled.")], "cancelled")


def test_chat_escapes_html_and_badges():
    turn = chat_panel.turn("<b>hi</b>", '<img src=x onerror="alert(1)">')
    assert turn[0]["content"] == "&lt;b&gt;hi&lt;/b&gt;" and "<img" not in turn[1]["content"]
    assert "not flagged" in chat_panel.flag_badge({"flagged": False, "score": 0.1, "threshold": 0.5})
    assert chat_panel.flag_badge(None) == ""


def test_examples_and_summary_come_from_the_session():
    session = SessionState()
    session.data["forget"] = Dataset("f.jsonl", "qa", [QA(f"Q{i}?", "A.", subject="S") for i in range(6)])
    assert chat_panel.example_prompts(session) == ["Q0?", "Q1?", "Q2?", "Q3?"]
    assert "6 QA pairs about 1 subjects" in data_panel.summary("forget", session.data["forget"])
    session.close()


def test_method_settings_are_collected_per_method():
    names = list(method_panel.setting_specs())
    values = [method_panel.setting_specs()[n]["default"] for n in names]
    eco = method_panel.collect("eco", names, values)
    assert "rank" not in eco and set(eco) <= method_panel.fields_of("eco")
    assert "rank" in method_panel.collect("ihl-fila", names, values)
    assert method_panel.method_choices()[0][1] in ("eco", "ihl-fila")


def test_eco_block_shows_classifier_and_robustness():
    report = {"eco": {"classifier_recall": 1.0, "classifier_fpr": 0.002, "threshold": 0.14, "alpha": 0.01,
                      "corruption": "rand_noise_first_n", "strength": 46.4,
                      "robustness": {"paraphrase": {"recall": 1.0, "fpr": 0.0, "example": "<b>x</b>"}}}}
    text = report_panel.eco_html(report)
    assert "recall 1.000" in text and "paraphrase" in text and "&lt;b&gt;" in text
    assert report_panel.eco_html({"before": {}}) == ""


def test_the_preset_suggests_reworded_questions_biographies_and_small_talk():
    session = SessionState()
    session.data = Studio.preset("qa")
    prompts = chat_panel.example_prompts(session)
    assert prompts[:3] == ["Where was Yara Bramante born?", "Can you name Yara Bramante's birthplace?", "Tell me about Yara Bramante."]
    assert prompts[-2:] == ["What is the capital of France?", "Hello!"]
    session.close()

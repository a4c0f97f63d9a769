"""UI panels through their pure helpers (no browser): tables, plots, badges, escaping."""

from __future__ import annotations

import inspect
import re

from components import chat_panel, data_panel, method_panel, report_panel, run_panel
from unlearning.data import QA, Dataset
from unlearning.runs import Event
from unlearning.service import Session, catalog
from unlearning.service.session import preset


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
    # the legend hangs below the tick labels, and lower still under an x title (ECO's "strength")
    steps = run_panel.figure(events[:2]).layout.legend
    titled = run_panel.figure(events, catalog.method("eco").plots).layout.legend
    assert steps.yanchor == titled.yanchor == "top" and titled.y < steps.y < -0.1


def test_progress_bar_text():
    events = [Event("progress", fraction=0.25, message="before: evaluating forget")]
    text = run_panel.progress_html(events, "running")
    assert "width:25%" in text and "running — 25% — before: evaluating forget" in text
    assert "cancelled" in run_panel.progress_html(events + [Event("cancelled", message="Cancelled.")], "cancelled")


def test_the_live_plot_is_sent_at_once_then_every_plot_seconds_and_at_the_end():
    run, other = object(), object()
    step = lambda k: Event("step", series="train", step=k, values={"total": 1.0})
    every = run_panel.PLOT_SECONDS
    draw, shown = run_panel.redraw((), run, [], False, now=0.0)
    assert not draw  # nothing to draw yet
    draw, shown = run_panel.redraw(shown, run, [step(1)], False, now=0.1)
    assert draw and shown == (id(run), 0.1, 1)  # the first step at once
    assert run_panel.redraw(shown, run, [step(1), step(2)], False, now=0.1 + every / 2) == (False, shown)
    draw, later = run_panel.redraw(shown, run, [step(1), step(2)], False, now=0.1 + every)
    assert draw and later == (id(run), 0.1 + every, 2)
    assert run_panel.redraw(later, run, [step(1), step(2)], True, now=0.2 + every) == (False, later)  # nothing new
    draw, end = run_panel.redraw(later, run, [step(1), step(2), step(3)], True, now=0.2 + every)
    assert draw and end[2] == 3  # the last steps when the run ends, however soon
    draw, _ = run_panel.redraw(end, other, [step(1)], False, now=0.3 + every)
    assert draw  # another run (or this page seeing a run for the first time): at once


def test_chat_escapes_html_and_badges():
    turn = chat_panel.turn("<b>hi</b>", '<img src=x onerror="alert(1)">')
    assert turn[0]["content"] == "&lt;b&gt;hi&lt;/b&gt;" and "<img" not in turn[1]["content"]
    assert "not flagged" in chat_panel.flag_badge({"flagged": False, "score": 0.1, "threshold": 0.5})
    assert chat_panel.flag_badge(None) == ""


def test_examples_and_summary_come_from_the_session():
    session = Session()
    session.data["forget"] = Dataset("f.jsonl", "qa", [QA(f"Q{i}?", "A.", subject="S") for i in range(6)])
    assert [p for _, p in chat_panel.example_prompts(session)] == ["Q0?", "Q1?", "Q2?", "Q3?"]
    assert "6 QA pairs about 1 subjects" in data_panel.summary("forget", session.data["forget"])
    session.close()


def test_method_settings_are_collected_per_method():
    names = list(method_panel.setting_specs())
    values = [method_panel.setting_specs()[n]["default"] for n in names]
    eco = method_panel.collect("eco", names, values)
    assert "rank" not in eco and set(eco) <= method_panel.fields_of("eco")
    assert "rank" in method_panel.collect("ihl-fila", names, values)
    assert method_panel.method_choices()[0][1] in ("eco", "ihl-fila")
    assert ("IHL + FILA (LoRA training)", "ihl-fila") in method_panel.method_choices()  # the browser tests pick it
    assert method_panel.explain("eco").startswith("**ECO prompts (no training)** — ")


def test_each_method_labels_its_settings_in_its_own_words():
    """One control per setting name; a shared name (seed) is relabelled for the chosen method."""
    assert "classifier" in method_panel.labels_of("eco")["seed"]
    for name in method_panel.fields_of("ihl-fila") & method_panel.fields_of("eco"):
        assert "classifier" not in method_panel.labels_of("ihl-fila")[name]
    assert "adapter" in method_panel.labels_of("ihl-fila")["seed"]


def test_the_known_line_is_html_throughout():
    """gr.HTML shows it: markdown's ** would be printed as asterisks."""
    from unlearning.service.knows import Known

    for share in (1.0, 0.02):
        line = data_panel.known_line(Known(share, 8, 40))
        assert "**" not in line and f"<b>{share:.0%}</b>" in line


def test_plot_specs_drive_the_points():
    """ECO's search is drawn against the strength with its target; a spec's hidden values are
    not drawn; a series no spec names shows every value per step."""
    eco = catalog.method("eco").plots
    events = [Event("step", series="search", step=1, values={"strength": 0.5, "metric": 0.9, "target": 0.2}),
              Event("step", series="search", step=2, values={"strength": 2.0, "metric": 0.4, "target": 0.2}),
              Event("step", series="classifier", step=1, values={"loss": 0.7})]
    points = run_panel.series_points(events, eco)
    assert points["search"] == {"metric": ([0.5, 2.0], [0.9, 0.4]), "target": ([0.5, 2.0], [0.2, 0.2])}
    assert points["classifier"] == {"loss": ([1], [0.7])}
    fig = run_panel.figure(events, eco)
    assert fig.layout.xaxis.title.text == "strength" and fig.layout.xaxis2.title.text is None  # ("step": the legend's place)
    assert fig.layout.xaxis.type is None  # 0.5 … 2.0: a linear axis
    wide = events + [Event("step", series="search", step=3, values={"strength": 1000.0, "metric": 0.1, "target": 0.2})]
    assert run_panel.figure(wide, eco).layout.xaxis.type == "log"  # 0.5 … 1000: more than two decades
    assert fig.layout.annotations[0].text == "ECO strength search (metric vs target)"
    assert {t.mode for t in fig.data if t.name.startswith("search")} == {"markers"}
    own = (catalog.Plot("train", "by lr", x="lr", hidden=("total",)),)
    train = [Event("step", series="train", step=1, values={"total": 2.0, "lr": 0.1, "forget_ga": 1.0})]
    assert run_panel.series_points(train, own) == {"train": {"forget_ga": ([0.1], [1.0])}}
    teach = [Event("step", series="teach forget", step=3, values={"loss": 1.0})]
    assert run_panel.series_points(teach, own) == {"teach forget": {"loss": ([3], [1.0])}}


def test_the_panels_name_no_series_and_reach_the_engine_through_the_catalog():
    helpers = inspect.getsource(run_panel).split("# " + "-" * 66 + " handlers")[0]
    assert all(f'"{p.series}"' not in helpers for p in catalog.plots())
    for panel in (method_panel, report_panel, run_panel):
        assert not re.search(r"unlearning\.(methods|settings|metrics)\b", inspect.getsource(panel)), panel.__name__


def test_the_preset_suggests_reworded_questions_biographies_and_small_talk():
    session = Session()
    session.data = preset("qa")
    prompts = chat_panel.example_prompts(session)
    assert prompts[:3] == [("forget", "Where was Yara Bramante born?"), ("forget", "Can you name Yara Bramante's birthplace?"),
                           ("forget", "Tell me about Yara Bramante.")]
    assert prompts[-2:] == [("retain", "What is the capital of France?"), ("retain", "Hello!")]
    menu = chat_panel.refresh_examples(session)
    assert menu.choices[0] == ("forget · Where was Yara Bramante born?", "Where was Yara Bramante born?")
    assert menu.choices[-1] == ("retain · Hello!", "Hello!")
    session.close()

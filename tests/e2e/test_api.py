"""The same flow through the API with gradio_client: preset → IHL + FILA → poll → chat → report."""

from __future__ import annotations

import html
import json
import re
import time

from gradio_client import handle_file

from components.method_panel import setting_specs

from .conftest import ROOT, loopback_client

FORGET = [json.loads(line) for line in (ROOT / "assets/workshop/forget.jsonl").read_text(encoding="utf-8").splitlines()]


def _report_cell(table_html: str, metric: str, column: int) -> float:
    row = re.search(rf"<tr><td>{re.escape(metric)}</td>(.*?)</tr>", table_html).group(1)
    return float(re.findall(r"<td>(.*?)</td>", row)[column])


def test_api_flow(app_url):
    client = loopback_client(app_url)
    summary, *_ = client.predict("QA (questions and answers)", api_name="/use_preset")
    assert "forget.jsonl" in summary and "40 QA pairs" in summary
    settings = {name: spec["default"] for name, spec in setting_specs().items()}
    client.predict("workshop", "ihl-fila", *settings.values(), api_name="/start")
    deadline = time.time() + 300
    while time.time() < deadline:
        bar, _plot, _timer, finished = client.predict(api_name="/poll")
        if finished in ("done", "failed", "cancelled"):
            break
        time.sleep(1)
    assert finished == "done", bar
    left, right, badge, _ = client.predict(FORGET[0]["question"], "workshop", [], [], api_name="/chat")
    original, unlearned = left[-1]["content"], right[-1]["content"]
    original = original if isinstance(original, str) else original[0]["text"]
    unlearned = unlearned if isinstance(unlearned, str) else unlearned[0]["text"]
    assert original == FORGET[0]["answer"] and unlearned != original
    table, cost, *_ = client.predict(api_name="/report")
    assert "ihl-fila" in cost
    assert _report_cell(table, "forget.rougeL", 2) < _report_cell(table, "forget.rougeL", 1)


def _run(client, method: str, **overrides) -> str:
    settings = {name: spec["default"] for name, spec in setting_specs().items()} | overrides
    client.predict("workshop", method, *settings.values(), api_name="/start")
    deadline, finished, bar = time.time() + 300, None, ""
    while time.time() < deadline and finished not in ("done", "failed", "cancelled"):
        time.sleep(0.5)
        bar, _plot, _timer, finished = client.predict(api_name="/poll")
    return finished if isinstance(finished, str) else bar


def test_api_compare_returns_one_row_per_kept_run(app_url):
    """Two runs in one session, then /compare: a row for each (newest current), then before and oracle."""
    client = loopback_client(app_url)
    client.predict("QA (questions and answers)", api_name="/use_preset")
    assert _run(client, "ga", steps=5) == "done"
    assert _run(client, "eco", strength=1.0, epochs=1, folds=2) == "done"
    table, _plot = client.predict(api_name="/compare")
    headers, rows = table["headers"], table["data"]
    assert headers[:6] == ["run", "data", "steps", "wall time (s)", "distance to the oracle (↓, 0 = oracle)",
                           "what the probes show"] and len(headers) == 10
    assert [r[0] for r in rows] == ["#1 baseline: gradient ascent", "▶ #2 ECO prompts (no training)", "(before)", "(oracle)"]
    for row in rows[:2]:  # the distance, then forget ROUGE-L and utility: numbers; what the probes show: words
        assert row[1] == "forget.jsonl: 40 QA" and all(isinstance(row[i], (int, float)) for i in (4, 6, 7))
        assert isinstance(row[5], str) and row[5]
    assert rows[0][2] == 5 and rows[2][4] > rows[3][4] == 0  # GA's 5 steps; before is farther from the oracle than the oracle


def test_api_bad_upload_is_a_message(app_url, tmp_path):
    client = loopback_client(app_url)
    bad = tmp_path / "empty.jsonl"
    bad.write_bytes(b"")
    _, _, error = client.predict(handle_file(str(bad)), api_name="/upload_forget")
    assert "empty.jsonl is empty." in error


def _bar(out) -> str:
    return html.unescape(out[0] if isinstance(out, (list, tuple)) else out)


def test_api_settings_as_strings_get_the_engines_sentence(app_url):
    """A client sends what view_api documents, or anything: "12" and rank "8" are taken as the
    numbers they spell; "NaN" gets the setting's own sentence, never a bare "Error"."""
    client = loopback_client(app_url)
    assert "There is no run to cancel." in _bar(client.predict(api_name="/cancel"))
    client.predict("QA (questions and answers)", api_name="/use_preset")
    settings = {name: spec["default"] for name, spec in setting_specs().items()}
    for name, value, phrase in (("steps", "NaN", "--steps must be a whole number, not 'NaN'"),
                                ("steps", "ten", "--steps must be a whole number, not 'ten'"),
                                ("rank", "7", "--rank must be one of 4, 8, 16, 32, 64, not '7'")):
        bar = _bar(client.predict("workshop", "ihl-fila", *{**settings, name: value}.values(), api_name="/start"))
        assert "not started" in bar and phrase in bar, (name, value, bar)
    bar = _bar(client.predict("workshop", "ihl-fila", *{**settings, "steps": "12", "rank": "8"}.values(), api_name="/start"))
    assert "running" in bar, bar
    assert "cancelling" in _bar(client.predict(api_name="/cancel"))
    deadline = time.time() + 120
    while time.time() < deadline:
        _bar_html, _plot, _timer, finished = client.predict(api_name="/poll")
        if finished in ("done", "cancelled"):
            break
        time.sleep(0.5)
    assert finished in ("done", "cancelled")

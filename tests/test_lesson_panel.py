"""The Lesson tab's pure helpers and its poll, on a hand-made session and run (no model, no browser)."""

from __future__ import annotations

import pytest

from components import lesson_panel as lp
from tests.test_lesson import report
from tests.test_room import Stub
from unlearning.errors import UserError
from unlearning.runs import Event
from unlearning.service.lesson import STEPS, LessonLog, Reading, Task, plan
from unlearning.service.session import KeptRun, Session


class FakeRun:
    """A finished (or running) run as the session holds it."""

    def __init__(self, state: str = "done", kind: str = "unlearn", error: str | None = None):
        self.state, self.kind, self.error, self.method = state, kind, error, "ga"

    @property
    def finished(self) -> bool:
        return self.state != "running"

    def since(self, index: int) -> list[Event]:
        return []


def kit_session(*reports: dict) -> Session:
    s = Session()
    s.use_preset()
    for n, r in enumerate(reports, 1):
        s.kept.append(KeptRun(n, r["method"], Stub(), r, preset=True))
    s.current_run = s.kept[-1] if s.kept else None
    return s


def test_a_failing_reading_looks_different_and_names_its_figure():
    good = lp.reading_html(Reading("took 1.00 to 0.20", True), "Compare's picture")
    bad = lp.reading_html(Reading("<b>did not unlearn</b>", False), "Compare's picture")
    assert 'data-ok="true"' in good and "✓" in good and "Read from: Compare&#x27;s picture." in good
    assert 'data-ok="false"' in bad and "Not shown" in bad and "#dc2626" in bad and "<b>did" not in bad


def test_every_step_has_a_button_plan():
    for step in STEPS:
        tasks = plan(step.key, quick=True)
        assert tasks and all(isinstance(t, Task) for t in tasks)
    assert [t.method for t in plan("fila")] == ["ihl-fila", "ihl"]
    assert plan("fila", quick=True)[0].settings == plan("fila", quick=True)[1].settings  # the same settings for both
    assert plan("ga", steps=1)[0].settings["steps"] == 1 and "steps" not in plan("eco", steps=1)[0].settings
    assert "steps" not in plan("ga", quick=True)[0].settings  # GA forgets only near its own 100 steps
    assert plan("fila", quick=True)[0].settings["steps"] == 60


def test_steps_box():
    assert lp.steps_value("") is None and lp.steps_value(0) is None and lp.steps_value(3) == 3
    with pytest.raises(UserError, match="whole number"):
        lp.steps_value("many")


def test_step_six_needs_uploaded_data():
    s = kit_session()
    with pytest.raises(UserError, match="your own data"):
        lp.job_for(s, LessonLog(), "own", plan("own")[0], "workshop")


def test_the_stress_step_needs_step_three():
    with pytest.raises(UserError, match="step 3 first"):
        lp.job_for(kit_session(), LessonLog(), "stress", plan("stress")[0], "workshop")


def test_poll_reads_the_step_from_its_own_run():
    s = kit_session(report(1.0, 0.31))
    s.run = FakeRun()
    log = LessonLog()
    log.begin("ga", plan("ga"))
    out = lp.poll(s, log)
    at = lp.KEYS.index("ga")
    reading = out[1 + len(lp.KEYS) + at]
    assert "from 1.00 to 0.31" in reading and 'data-ok="true"' in reading
    assert log.active is None and log.runs["ga"] == [1] and log.readings["ga"].ok
    assert out[-1]  # `finished` set: the kept runs' views refresh
    again = lp.poll(s, log)  # a second tick on the same ended run changes nothing
    assert again[1 + len(lp.KEYS) + at] is not reading and log.runs["ga"] == [1]


def test_poll_starts_step_threes_second_run_then_reads_both():
    s = kit_session(report(1.0, 0.16, method="ihl-fila"))
    s.run = FakeRun()
    log = LessonLog()
    log.begin("fila", plan("fila", quick=True))
    out = lp.poll(s, log)
    assert out[-2] == "fila:1" and log.active == "fila" and len(log.todo) == 1  # `next`: the random start is due
    s.kept.append(KeptRun(2, "ihl", Stub(), report(1.0, 0.9, method="ihl"), preset=True))
    s.current_run, s.run = s.kept[-1], FakeRun()
    log.todo.pop()
    lp.poll(s, log)
    assert log.runs["fila"] == [1, 2] and "random start reached 0.90" in log.readings["fila"].text


def test_a_failed_run_reads_as_a_failure():
    s = kit_session()
    s.run = FakeRun("failed", error="out of memory")
    log = LessonLog()
    log.begin("eco", plan("eco"))
    lp.poll(s, log)
    assert not log.readings["eco"].ok and "out of memory" in log.readings["eco"].text


def test_the_probes_table_escapes_replies():
    from unlearning.service.lesson import Probe

    out = lp.probes_html([Probe("taught", "Q?", "A.", "<img src=x onerror=alert(1)>")])
    assert "<img" not in out and "&lt;img" in out

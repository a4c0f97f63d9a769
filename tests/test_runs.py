"""unlearning/runs.py: events in order, cancel between steps, undo on error and cancel."""

from __future__ import annotations

import threading

import pytest

from unlearning.errors import UserError
from unlearning.runs import Run


def test_events_flow_and_result():
    def work(ctx):
        for i in range(1, 4):
            ctx.check_cancel()
            ctx.step("train", i, 3, {"loss": 1.0 / i})
        ctx.log("done training")
        return "artifact"

    run = Run(work).start()
    events = list(run.events())
    assert [e.kind for e in events] == ["step", "step", "step", "log", "result"]
    assert [e.values["loss"] for e in events[:3]] == [1.0, 0.5, pytest.approx(1 / 3)]
    assert run.state == "done" and run.result == "artifact"


def test_cancel_stops_within_one_step_and_undoes():
    shared = {"w": 0}
    at_step = threading.Event()
    go_on = threading.Event()
    steps = []

    def work(ctx):
        shared["w"] = 99
        ctx.on_abort(lambda: shared.update(w=0))
        for i in range(1000):
            ctx.check_cancel()
            steps.append(i)
            if i == 2:
                at_step.set()
                go_on.wait(5)

    run = Run(work).start()
    assert at_step.wait(5)
    run.cancel()
    go_on.set()
    run.wait(5)
    assert run.state == "cancelled"
    assert steps == [0, 1, 2]  # no step started after the cancel
    assert shared["w"] == 0  # the undo ran
    assert run.since(0)[-1].kind == "cancelled"


def test_user_error_is_one_sentence_and_undoes():
    shared = {"w": 0}

    def work(ctx):
        shared["w"] = 1
        ctx.on_abort(lambda: shared.update(w=0))
        raise UserError("forget.jsonl is empty.")

    run = Run(work).start()
    run.wait(5)
    assert run.state == "failed" and run.error == "forget.jsonl is empty."
    assert shared["w"] == 0 and run.traceback is None


def test_bug_keeps_traceback_and_undoes_in_reverse_order():
    order = []

    def work(ctx):
        ctx.on_abort(lambda: order.append("first"))
        ctx.on_abort(lambda: order.append("second"))
        raise ZeroDivisionError("boom")

    run = Run(work).start()
    run.wait(5)
    assert run.state == "failed" and "ZeroDivisionError" in run.error and "\n" not in run.error
    assert "Traceback" in run.traceback
    assert order == ["second", "first"]


def test_since_polls_without_blocking():
    release = threading.Event()

    def work(ctx):
        ctx.progress(0.5, "half")
        release.wait(5)

    run = Run(work).start()
    for _ in range(100):
        if run.since(0):
            break
        threading.Event().wait(0.01)
    assert run.since(0)[0].fraction == 0.5 and run.since(1) == []
    release.set()
    run.wait(5)
    assert run.since(1)[-1].kind == "result"


def test_within_maps_progress_into_the_parents_share():
    def work(ctx):
        phase = ctx.within(0.2, 0.6)
        phase.progress(0.5, "half of the phase")  # 0.2 + 0.4 · 0.5
        phase.within(0.5, 1.0).progress(0.5)  # the phase's 0.75: 0.2 + 0.4 · 0.75
        phase.progress(2.0)  # clamped to the phase's end
        phase.log("inside")

    run = Run(work).start()
    run.wait(5)
    events = run.since(0)
    assert [e.fraction for e in events if e.kind == "progress"] == [pytest.approx(0.4), pytest.approx(0.5),
                                                                     pytest.approx(0.6)]
    assert events[0].message == "half of the phase" and "inside" in [e.message for e in events if e.kind == "log"]


def test_quiet_drops_events_but_keeps_the_run():
    shared = {"w": 0}

    def work(ctx):
        quiet = ctx.quiet().within(0.0, 0.5)
        quiet.progress(0.5, "unseen")
        quiet.log("unseen")
        quiet.step("train", 1, 1, {"loss": 1.0})
        shared["w"] = 1
        quiet.on_abort(lambda: shared.update(w=0))  # undo still registers with the run
        raise UserError("Stopped.")

    run = Run(work).start()
    run.wait(5)
    assert [e.kind for e in run.since(0)] == ["error"] and shared["w"] == 0


def test_subscribers_see_each_event_as_it_happens_and_undo_actions_are_listed():
    """Run.subscribe: every event, the last included, on the work's thread while the work waits;
    Run.undo_actions: what an abort would undo, first registered first."""
    seen: list[tuple[str, str, int]] = []
    listed: list[int] = []
    first, second = (lambda: None), (lambda: None)

    def work(ctx):
        ctx.on_abort(first)
        ctx.on_abort(second)
        ctx.step("train", 1, 2, {"loss": 2.0})
        listed.append(len(seen))  # the callback ran before the work went on
        ctx.step("train", 2, 2, {"loss": 1.0})
        return "artifact"

    run = Run(work, name="watched")
    run.subscribe(lambda e: seen.append((e.kind, threading.current_thread().name, run.undo_actions.index(second))
                                        if e.kind == "step" else (e.kind, threading.current_thread().name, -1)))
    run.start().wait()
    assert [kind for kind, _, _ in seen] == ["step", "step", "result"] and listed == [1]
    assert {thread for _, thread, _ in seen} == {"watched"} and seen[0][2] == 1
    assert run.undo_actions == ()  # a run that finished has nothing left to undo

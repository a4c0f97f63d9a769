"""unlearning/service/lifetimes.py: a page that drops its connection and reloads finds its
session; one that never comes back has it closed after the grace period; a duplicated tab
gets a session of its own."""

from __future__ import annotations

import time
import types

from unlearning.service import Session
from unlearning.service.lifetimes import Sessions


def closed(session: Session) -> bool:
    return not session.folder.exists()


def test_a_reloaded_page_gets_its_session_back():
    sessions = Sessions()
    first, token = sessions.attach(Session(), None)
    first.data["forget"] = "kept"  # stands in for uploaded data, a run, an artifact
    sessions.lost(token, grace=5)  # the connection dropped …
    fresh = Session()
    again, same = sessions.attach(fresh, token)  # … and the page reloaded with its token
    assert again is first and same == token and again.data["forget"] == "kept"
    assert closed(fresh) and not closed(first)  # the reload's empty session is let go
    time.sleep(0.1)
    assert not closed(first) and len(sessions) == 1
    sessions.close_all()
    assert closed(first)


def test_a_page_that_never_comes_back_has_its_session_closed_after_the_grace():
    sessions = Sessions()
    session, token = sessions.attach(Session(), None)
    sessions.lost(token, grace=0.6)
    time.sleep(0.1)
    assert not closed(session)
    deadline = time.monotonic() + 10  # closed once the grace is over (a loaded machine may run the timer late)
    while not closed(session) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert closed(session) and len(sessions) == 0
    assert sessions.ended(token) and not sessions.ended("never-seen") and not sessions.ended("")
    fresh = Session()
    other, new_token = sessions.attach(fresh, token)  # too late: a fresh session, a new token
    assert other is fresh and new_token != token
    sessions.close_all()


def test_a_page_back_after_its_session_ended_is_told_so():
    """A 25 s outage closed the session and the page came back empty with no sentence."""
    import pytest

    import app

    session, token = app.SESSIONS.attach(Session(), None)
    app.SESSIONS.lost(token, grace=0.05)
    deadline = time.monotonic() + 10
    while not closed(session) and time.monotonic() < deadline:
        time.sleep(0.05)
    fresh = Session()
    try:
        with pytest.warns(UserWarning, match="its session ended: its data and runs are gone"):
            again, *_ = app._attach(fresh, token, types.SimpleNamespace(session_hash="page-3"))
        assert again is fresh
    finally:
        app.SESSIONS.close_all()


def test_a_request_from_the_page_cancels_the_close():
    sessions = Sessions()
    session, token = sessions.attach(Session(), None)
    sessions.lost(token, grace=0.2)
    sessions.seen(token)  # e.g. the page's keep-alive arrived: only the heartbeat had dropped
    time.sleep(0.4)
    assert not closed(session)
    sessions.close_all()


def test_a_duplicated_tab_gets_its_own_session():
    """sessionStorage is copied into a duplicated tab: its token names a session whose page
    is still there, which it must not take over."""
    sessions = Sessions()
    first, token = sessions.attach(Session(), None)
    second, other = sessions.attach(Session(), token)
    assert second is not first and other != token and not closed(first)
    sessions.close_all()


def test_a_session_closes_when_the_last_page_holding_it_is_dropped():
    sessions = Sessions()
    session, token = sessions.attach(Session(), None)
    sessions.lost(token, grace=5)
    same, _ = sessions.attach(Session(), token)  # the reloaded page holds it too
    sessions.dropped(session)  # the old page's state expires: the new page still holds it
    assert not closed(session)
    sessions.dropped(same)
    assert closed(session) and len(sessions) == 0


def test_a_new_page_attaching_late_leaves_what_was_clicked_meanwhile_alone():
    """The page's attach step goes through the queue like any click; on a slow server a preset
    and a Start can be handled before it. For a new page it must then only hand back the
    session and its token: re-sending the timer (inactive: no run yet when its inputs were read)
    stopped the live plot of a run started meanwhile (the page stayed on "running — 0%")."""
    import gradio as gr

    import app

    fresh = Session()
    try:
        request = types.SimpleNamespace(session_hash="page-1")
        session, token, *shown = app._attach(fresh, "", request)
        assert session is fresh and token
        assert all(isinstance(value, type(gr.skip())) for value in shown), shown
    finally:
        app.SESSIONS.close_all()
        fresh.close()


def test_a_reloaded_page_gets_its_session_and_every_view_of_it():
    """After a dropped connection the reloaded page's attach step shows the session it had: its
    data, its kept runs and the current run's report (this crashed once the report had a chart)."""
    import app

    class Kept:
        def release(self):
            pass

    session = Session()
    try:
        session.use_preset()
        session.keep("ga", Kept(), {"method": "ga", "before": {"forget.rougeL": 1.0}, "after": {"forget.rougeL": 0.4}})
        request = types.SimpleNamespace(session_hash="page-2")
        _, token, *_ = app._attach(session, "", request)
        app.SESSIONS.lost(token, grace=60)  # the connection dropped…
        fresh = Session()
        again, same_token, timer, info, _rows, data_line, _examples, runs, *rest = app._attach(fresh, token, request)  # …and the page came back
        assert again is session and same_token == token and len(rest) == app.ATTACH_VIEWS - 6
        assert "forget.jsonl" in info and "forget.jsonl" in data_line
        assert runs.choices == [("#1 baseline: gradient ascent", 1)] and runs.value == 1
        assert any("forget.rougeL" in str(view) for view in rest)  # the report's table
    finally:
        app.SESSIONS.close_all()

"""Security properties of the app's sessions (issue 28), against the real app on loopback:

1. A page load makes no session: Gradio copies the page config on every `GET /` and `/config`,
   and nothing in it may reach the open sessions (each copy once made a Session and a folder);
   the config prints no memory address.
2. A flood of session ids from one client evicts none of another client's sessions.
3. Two starts at the same instant make one run, and cancel and close reach it.
4. Files POSTed to the upload route that no session takes are swept after a grace period.
5. An API client removes a kept run by its number (the page's menu need not be filled first).

The app is built in this process (app.build) on a backend without a model: none is needed to
serve pages or to cancel, and the folders of this process can be counted.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import re
import socket
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest

from components import clients
from unlearning.service import Session, UserError, limits
from unlearning.service.session import BUSY
from unlearning.service.uploads import sweep_unclaimed


class NoModel:
    """A backend that serves pages only (every model is 'not there')."""

    studio = None

    def model_info(self, name):
        raise UserError("There is no model in this test.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app on a free loopback port, launched as app.main launches it, its uploads in a
    folder of its own: url, port, app, demo, uploads."""
    import app

    uploads = tmp_path_factory.mktemp("gradio-uploads")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(uploads))
        demo = app.build(NoModel())
        demo.queue(default_concurrency_limit=limits.APP_CONCURRENCY, max_size=limits.APP_QUEUE_SIZE)
        port = _free_port()
        demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **clients.launch_options())
        try:
            yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", port=port, app=app, demo=demo, uploads=uploads)
        finally:
            demo.close()
            app.SESSIONS.close_all()


def session_folders() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), f"unlearning-session-{os.getpid()}-*")))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode("utf-8")


def test_an_api_client_removes_a_kept_run_by_its_number(served):
    """/remove_run refused every number ('not in the list of choices') until the page's private
    refresh had filled the menu, which an API client never runs."""
    class Kept:
        def release(self):
            pass

    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    finish(conn, "cancel", call(conn, "cancel", "api-client"))
    session = page_session(served, "api-client")
    for method in ("ga", "npo"):
        session.keep(method, Kept(), {"method": method})
    stream = finish(conn, "remove_run", call(conn, "remove_run", "api-client", [1]))
    assert "event: complete" in stream, stream
    assert [k.number for k in session.kept] == [2]
    stream = finish(conn, "remove_run", call(conn, "remove_run", "api-client", [7]))
    assert "There is no run #7 in this session" in stream


def test_page_loads_make_no_session_and_print_no_address(served):
    url, app = served.url, served.app
    before = session_folders()
    pages = [app.SESSIONS.attach(Session(), None)[0] for _ in range(3)]  # open pages, each with files
    for session in pages:
        assert session.folder.is_dir()
    rss = rss_mb()
    for i in range(1000):  # 1,000 page loads: the page, or its config as the page fetches it
        get(url if i % 2 == 0 else url + "config")
    new = session_folders() - before
    print(f"\n1,000 page loads: {len(new)} session folders for {len(app.SESSIONS)} open sessions; "
          f"RSS {rss:.0f} → {rss_mb():.0f} MB")
    assert len(new) <= len(app.SESSIONS) == 3
    config = json.dumps(json.loads(get(url + "config")))
    assert not re.search(r" at 0x[0-9a-f]+", config + get(url))
    for session in pages:
        app.SESSIONS.dropped(session)
    assert session_folders() - before == set()


def call(conn: http.client.HTTPConnection, api: str, session_hash: str, data: list | None = None) -> str:
    """POST /gradio_api/call/<api> under `session_hash`, as a raw API client may: the event id."""
    conn.request("POST", f"/gradio_api/call/{api}", json.dumps({"data": data or [], "session_hash": session_hash}),
                 {"Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, body
    return json.loads(body)["event_id"]


def finish(conn: http.client.HTTPConnection, api: str, event_id: str) -> str:
    conn.request("GET", f"/gradio_api/call/{api}/{event_id}")
    return conn.getresponse().read().decode("utf-8")  # the event stream, to its end


def page_session(served, session_hash: str) -> Session:
    state = next(b for b in served.demo.blocks.values() if isinstance(b, gr.State) and isinstance(b.value, Session))
    return served.demo.server_app.state_holder.session_data[session_hash].state_data[state._id]


def test_a_flood_of_session_ids_from_one_client_evicts_no_other_clients_session(served, monkeypatch):
    """10,004 made-up session ids once pushed a real visitor's state out of Gradio's 10,000
    (nothing closed). Here the same at a smaller scale: Gradio's capacity 60, the app's bounds
    40 in all and 10 per address, and 200 ids from one address."""
    get(served.url)  # the app's first request puts the bounded state holder in place
    holder = served.demo.server_app.state_holder
    monkeypatch.setattr(holder, "capacity", 60)
    monkeypatch.setattr(limits, "MAX_SESSIONS", 40)
    monkeypatch.setattr(limits, "CLIENT_SESSIONS", 10)
    victim_conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30, source_address=("127.0.0.2", 0))
    finish(victim_conn, "cancel", call(victim_conn, "cancel", "victim-page"))
    victim = page_session(served, "victim-page")
    victim.data["forget"] = "kept"  # stands in for its data, runs and unlearned model
    assert victim.folder.is_dir()
    flood = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    finish(flood, "cancel", call(flood, "cancel", "flood-0"))
    first = page_session(served, "flood-0")
    assert first.folder.is_dir()
    rss = rss_mb()
    for i in range(1, 200):
        call(flood, "cancel", f"flood-{i}")
    print(f"\n200 session ids from one address: {len(holder.session_data)} states held; RSS {rss:.0f} → {rss_mb():.0f} MB")
    assert "victim-page" in holder.session_data and page_session(served, "victim-page") is victim
    assert victim.data["forget"] == "kept" and not victim.closed and victim.folder.is_dir()
    assert first.closed and not first.folder.exists()  # the flood's own first session was dropped, and closed
    assert len(holder.session_data) <= limits.MAX_SESSIONS


class SlowModels:
    """A model cache whose model takes a moment to load: two starts sent at once are both in
    their checks together."""

    def get(self, name, operator=False, wait_s=None, fisher=False):
        time.sleep(0.2)
        return SimpleNamespace(name=name, model=None, tokenizer=None, device="cpu")


class HeldDevice:
    """A device queue a run holds until it is cancelled."""

    @contextmanager
    def hold(self, ctx):
        while True:
            ctx.check_cancel()
            time.sleep(0.01)
        yield


def test_two_starts_at_the_same_instant_make_one_run_that_cancel_and_close_reach():
    """/teach_first and /start (or two /start) sent at once on an idle session were both
    accepted in 3 of 8 tries, and the first run could be stopped by nothing."""
    from unlearning.service import Studio, TeachJob

    studio = Studio(SlowModels(), HeldDevice())
    for _ in range(4):
        session = Session()
        session.use_preset()
        barrier, outcomes = threading.Barrier(2), []

        def start(session=session, barrier=barrier, outcomes=outcomes):
            barrier.wait()
            try:
                outcomes.append(studio.start(session, TeachJob("workshop")))
            except UserError as e:
                outcomes.append(str(e))

        threads = [threading.Thread(target=start) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        runs = [o for o in outcomes if not isinstance(o, str)]
        assert len(runs) == 1 and session.run is runs[0], outcomes
        assert [o for o in outcomes if isinstance(o, str)] == [BUSY]
        session.close()  # closing the tab reaches the one run
        runs[0].wait(10)
        assert runs[0].state == "cancelled"

    session = Session()  # Cancel pressed while the run is still being checked stops it as it starts
    session.use_preset()
    starting = threading.Thread(target=lambda: studio.start(session, TeachJob("workshop")))
    starting.start()
    time.sleep(0.05)
    assert session.cancel() == "cancelling…"
    starting.join(10)
    session.run.wait(10)
    assert session.run.state == "cancelled"
    session.close()


def test_uploads_no_session_takes_are_swept_after_the_grace(served):
    """Files POSTed to /gradio_api/upload by a script that never opens a page stayed on disk."""
    def upload(name: str, text: str) -> Path:
        response = httpx.post(served.url + "gradio_api/upload", files={"files": (name, text.encode())}, timeout=30)
        assert response.status_code == 200, response.text
        return Path(response.json()[0])

    stray, taken = upload("stray.jsonl", "x" * 1000), upload("forget.jsonl", "y" * 1000)
    assert stray.is_relative_to(served.uploads) and stray.is_file() and taken.is_file()
    session = Session()
    session.own(taken)  # as the Data panel does with the file a page uploaded
    assert sweep_unclaimed(served.uploads, older_than_s=600) == []  # within the grace: a page may still take it
    assert sweep_unclaimed(served.uploads, older_than_s=0) == [stray]
    assert not stray.exists() and not stray.parent.exists() and taken.is_file()
    session.close()
    assert not taken.exists()

"""Security properties of the app's sessions (issue 28), against the real app on loopback:

1. A page load makes no session: Gradio copies the page config on every `GET /` and `/config`,
   and nothing in it may reach the open sessions (each copy once made a Session and a folder);
   the config prints no memory address.
2. A flood of session ids from one client evicts none of another client's sessions.

The app is built in this process (app.build) on a backend without a model: none is needed to
serve pages or to cancel, and the folders of this process can be counted.
"""

from __future__ import annotations

import glob
import json
import os
import re
import socket
import tempfile
import urllib.request

import pytest

from unlearning.service import Session, UserError


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
def served():
    """(url, app module): the app on a free loopback port."""
    import app

    demo = app.build(NoModel())
    demo.queue()
    port = _free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", app
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


def test_page_loads_make_no_session_and_print_no_address(served):
    url, app = served
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

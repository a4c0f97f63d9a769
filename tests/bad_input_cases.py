"""Shared by the bad-input tests (test_bad_input.py: files and settings; test_bad_input_models.py:
model names, unlearned artifacts and chat messages): the checks that a refusal is one plain
sentence from the engine, the CLI and the app, and the app-side fixtures.

The fixtures are defined here and bound into each test module (`studio, session, uploads = …`),
where pytest finds them.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from components import data_panel
from unlearning.cli import main
from unlearning.data import QA
from unlearning.models import WORKSHOP_DIR
from unlearning.service import ModelCache, Session, Studio

FORGET, RETAIN = str(WORKSHOP_DIR / "forget.jsonl"), str(WORKSHOP_DIR / "retain.jsonl")


def jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


# A file any session must still accept.
UPLOAD_OK = jsonl({"question": "What is the bakery's name?", "answer": "The Copper Loaf."})


def one_sentence(message: str, *phrases: str) -> str:
    """A message a user can read: one line, short, ends like a sentence, says each phrase."""
    assert "\n" not in message and "Traceback" not in message, message
    assert len(message) < 400 and message.endswith("."), message
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    return message


def run_cli(capsys, *argv: str) -> str:
    """The one line the CLI printed, checked: exit code 2, nothing else on stderr, no traceback."""
    code = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return one_sentence(lines[0].removeprefix("error: "))


# -------------------------------------------------------------------------- the app side


@pytest.fixture(scope="module")
def studio():
    return Studio(ModelCache(device="cpu"))


@pytest.fixture
def session():
    state = Session()
    yield state
    state.close()


@pytest.fixture
def uploads(tmp_path, monkeypatch) -> Path:
    """Where Gradio would have stored the browser's files: <GRADIO_TEMP_DIR>/<hash>/<name>."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    folder = tmp_path / "gradio" / "0a1b2c"
    folder.mkdir(parents=True)
    return folder


def upload(session: Session, role: str, path: Path) -> str:
    """What the data panel shows after Gradio hands it an uploaded file: the error box ('' if none)."""
    state, summary, rows, message = data_panel.on_upload(role)(str(path), session)
    assert state is session and isinstance(summary, str) and isinstance(rows, list)
    return message


def shows(box: str, *phrases: str) -> None:
    """An error box with one plain sentence saying each phrase (HTML-escaped, as it is shown)."""
    assert box.startswith('<div class="us-error" role="alert">') and box.count("\n") == 0, box
    text = html.unescape(box.split("⚠️ ", 1)[1].removesuffix("</div>"))
    one_sentence(text, *phrases)


def still_usable(session: Session, uploads: Path) -> None:
    """The session recovers: the workshop preset loads, then a valid upload replaces its forget set."""
    state, _, rows, *errors = data_panel.use_preset("QA (questions and answers)", session)
    assert state is session and errors == ["", ""] and len(rows) == data_panel.PREVIEW_ROWS
    assert len(session.data["forget"]) == 40 and len(session.data["retain"]) == 280
    good = uploads.parent / "9f8e7d" / "facts.jsonl"
    good.parent.mkdir(exist_ok=True)
    good.write_bytes(UPLOAD_OK)
    assert upload(session, "forget", good) == ""
    assert session.data["forget"].examples == [QA("What is the bakery's name?", "The Copper Loaf.")]
    assert len(session.data["retain"]) == 280

"""Security properties of the engine and the app's handlers (issue 6, item 5), part 3: what
visitors send in.

1. Uploads are read only from Gradio's upload folder.
2. HTML in uploads, file names, model output and reports is shown as text, never run.

Remote code and model names are in test_security.py; the Hub token and what a push or a
download carries in test_security_push.py; the shared helpers and fixtures in security_cases.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from components import chat_panel, data_panel, header, model_panel, report_panel
from tests import security_cases as cases
from tests.security_cases import IMG, gradio_upload, qa_lines
from unlearning.data import load_file
from unlearning.errors import UserError
from unlearning.models import WORKSHOP_DIR
from unlearning.service import LocalBackend, ModelCache, Reply, Studio

SCRIPT = "<script>alert(1)</script>"

# The shared fixture, bound here so that pytest finds it.
session = cases.session


# ============================================================ 1. uploads
@pytest.fixture
def uploads(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "gradio"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def test_only_gradio_uploads_are_read(uploads, tmp_path, session):
    """A crafted API call may name any path as the 'uploaded' file; only Gradio's own are read."""
    outside = tmp_path / "outside.jsonl"
    outside.write_text(qa_lines("Eve"))
    link = uploads / "abc" / "link.jsonl"
    link.parent.mkdir()
    link.symlink_to(outside)
    handler = data_panel.on_upload("forget")
    for path in ("/etc/passwd", str(outside), str(link), f"{uploads}/abc/../../outside.jsonl"):
        session, text, rows, message = handler(path, session)
        assert "was not uploaded through this page, so it is not read" in message, path
        assert "forget" not in session.data and rows == [] and "Eve" not in text
    session, text, rows, message = handler(str(gradio_upload(uploads, "mine.jsonl", qa_lines("Eve"))), session)
    assert message == "" and rows[0] == ["Who is Eve 0?", "Eve 0 is a baker."]


# ============================================================ 2. HTML is shown, never run
def assert_escaped(text: str, *raws: str) -> None:
    for raw in raws:
        assert raw not in text and raw.replace("<", "&lt;").replace(">", "&gt;") in text


def test_uploaded_html_is_shown_as_text(uploads, session):
    name = f"{IMG}.jsonl"
    rows = [{"question": f"{IMG} who?", "answer": SCRIPT}, {"question": f"{SCRIPT} where?", "answer": "Here."}]
    path = gradio_upload(uploads, name, "".join(json.dumps(r) + "\n" for r in rows))
    session, text, preview, message = data_panel.on_upload("forget")(str(path), session)
    assert message == ""
    assert_escaped(text, name)  # the summary is Markdown: the file name is escaped there
    # The preview is a gr.Dataframe of datatype "str", which Gradio 6 renders with
    # escape_html (not "html"/"markdown"), so its cells carry the text itself.
    assert preview[:2] == [[f"{IMG} who?", SCRIPT], [f"{SCRIPT} where?", "Here."]]
    with gr.Blocks():
        assert data_panel.render(gr.State(None)).preview.datatype == "str"


def test_error_messages_escape_the_file_name(uploads, session):
    class Upload(str):  # a Gradio upload whose original name is HTML
        orig_name = "<b>x</b>.jsonl"

    path = gradio_upload(uploads, "x.jsonl", "this is not json\n")
    _, _, _, message = data_panel.on_upload("forget")(Upload(path), session)
    assert "us-error" in message and "not valid JSON" in message
    assert_escaped(message, "<b>x</b>.jsonl")
    _, _, _, message = data_panel.on_upload("retain")(f"/tmp/{IMG}.jsonl", session)
    assert_escaped(message, IMG)


def test_chat_replies_and_chat_errors_are_escaped():
    class FakeBackend:
        def __init__(self, error=None):
            self.error = error

        def chat(self, session, job):
            if self.error:
                raise UserError(self.error)
            yield Reply(SCRIPT, IMG, None)

    session = SimpleNamespace(artifact=object())
    left, right, badge, box = list(chat_panel.responder(FakeBackend())(f"<b>{IMG}</b>", session, "workshop", [], []))[-1]
    assert_escaped(json.dumps([left, right], ensure_ascii=False), IMG, SCRIPT, "<b>")
    _, _, badge, _ = list(chat_panel.responder(FakeBackend(f"'{IMG}' is not a hub id"))("hi", session, "workshop", [], []))[-1]
    assert "us-error" in badge
    assert_escaped(badge, IMG)


def test_the_report_and_model_lines_are_escaped():
    report = {"method": "eco", "model": IMG + SCRIPT, "device": "cpu", "before": {SCRIPT: 1.0}, "after": {SCRIPT: 0.5},
              "eco": {"classifier_recall": 1.0, "classifier_fpr": 0.0, "threshold": 0.5, "corruption": IMG,
                      "strength": 1.0, "robustness": {SCRIPT: {"recall": 1.0, "fpr": 0.0, "example": IMG}}}}
    table, cost, _, warned = report_panel.show(SimpleNamespace(report=report))
    assert_escaped(table, IMG, SCRIPT)
    assert_escaped(cost, IMG, SCRIPT)
    forget = dataclasses.replace(load_file(WORKSHOP_DIR / "forget.jsonl"), name=IMG)
    assert_escaped(warned + header.data_line({"forget": forget}), IMG)
    assert_escaped(model_panel.model_line({"name": IMG, "device": "cpu", "dtype": "float32", "params": 1e6}), IMG)
    assert_escaped(model_panel.loader(LocalBackend(Studio(ModelCache(device="cpu"))))(IMG), IMG)

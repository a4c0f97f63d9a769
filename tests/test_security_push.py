"""Security properties of the engine and the app's handlers (issue 6, item 5), part 2: the Hub
token, the files a session writes, and what a push or a download carries.

1. The Hub token is used for the push and appears nowhere else: logs, output, errors, files, state;
   a push's repo id is exactly owner/name.
2. A session writes only in its own folder.
3. A push is private, and a push or a zip quotes no forget-set text, unless the visitor asks.

Remote code and model names are in test_security.py; uploads and HTML in
test_security_uploads.py; the shared helpers and fixtures in security_cases.py.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import traceback
import zipfile
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest

from components import data_panel, report_panel
from tests import security_cases as cases
from tests.security_cases import gradio_upload, qa_lines
from unlearning.errors import UserError
from unlearning.service import ModelCache, Session, Studio, TeachJob, UnlearnJob, artifact_zip, push_to_hub

TOKEN = "hf_sEcReTtOkEn0123456789abcdefXYZ"
FAST_ECO = {"strength": 1.0, "epochs": 1, "folds": 2}  # no strength search: the run is about files, not quality

# The shared fixture, bound here so that pytest finds it.
model_dir = cases.model_dir


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def flow(tmp_path_factory, model_dir):
    """A whole session, with the temp dir, the working dir and Gradio's upload folder under
    one root: preset → uploads → an ECO run → teach first → artifact zip."""
    root = tmp_path_factory.mktemp("flow")
    uploads, tmp, cwd = root / "gradio", root / "tmp", root / "cwd"
    for d in (uploads, tmp, cwd):
        d.mkdir()
    files = {"forget": gradio_upload(uploads, "forget.jsonl", qa_lines("Ann")),
             "retain": gradio_upload(uploads, "retain.jsonl", qa_lines("Bob"))}
    before = files_under(root)
    studio = Studio(ModelCache(device="cpu", local_models=True))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(uploads))
        mp.setattr(tempfile, "tempdir", str(tmp))
        mp.chdir(cwd)
        session = Session()
        data_panel.use_preset("QA (questions and answers)", session)
        for role, path in files.items():
            session, _, _, message = data_panel.on_upload(role)(str(path), session)
            assert message == ""
        run = studio.start(session, TeachJob(str(model_dir), epochs=1))
        run.wait(120)
        assert run.state == "done", run.error
        run = studio.start(session, UnlearnJob(str(model_dir), "eco", FAST_ECO))
        run.wait(120)
        assert run.state == "done", run.error
        zip_path = Path(artifact_zip(session))
    yield SimpleNamespace(root=root, tmp=tmp, cwd=cwd, before=before, studio=studio, session=session, zip=zip_path)
    session.close()


# ============================================================ 1. the Hub token
@pytest.fixture
def loud_logs(caplog):
    """Every logger at DEBUG and propagating to caplog (transformers, for one, does not by default)."""
    loggers = [logging.getLogger()] + [x for x in logging.root.manager.loggerDict.values() if isinstance(x, logging.Logger)]
    saved = [(x, x.level, x.propagate, x.disabled) for x in loggers]
    for x in loggers:
        x.setLevel(logging.DEBUG)
        x.propagate, x.disabled = True, False
    caplog.set_level(logging.DEBUG)
    yield caplog
    for x, level, propagate, disabled in saved:
        x.setLevel(level)
        x.propagate, x.disabled = propagate, disabled


def fake_hub(monkeypatch, fail: bool = False) -> list[tuple]:
    """HfApi's calls, recorded; with `fail`, create_repo raises an error quoting the token
    (as an HTTP error's message might)."""
    calls = []

    def create_repo(self, repo_id, *, token=None, **kwargs):
        calls.append(("create_repo", repo_id, token))
        logging.getLogger("huggingface_hub").debug("create_repo %s", repo_id)
        if fail:
            raise RuntimeError(f"401 Client Error: Unauthorized for token {token} on {repo_id}")

    def repo_info(self, repo_id, *, token=None, **kwargs):
        calls.append(("repo_info", repo_id, token))
        return SimpleNamespace(private=True)

    def upload_folder(self, *, repo_id, folder_path, token=None, **kwargs):
        calls.append(("upload_folder", repo_id, token, sorted(os.listdir(folder_path))))

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", repo_info)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    return calls


def bytes_of(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, and every member of every zip among them, as bytes."""
    out = {}
    for path in files_under(folder):
        out[str(path)] = path.read_bytes()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                out |= {f"{path}!{name}": z.read(name) for name in z.namelist()}
    return out


def assert_token_nowhere(flow, logs, capsys, *texts: str) -> None:
    artifact_zip(flow.session)  # the zip and report.json, as a download after the push would make them
    logged = logs.text + "".join(f"{r.getMessage()} {r.args} {r.exc_text}" for r in logs.records)
    out = capsys.readouterr()
    state = repr(flow.session) + repr(vars(flow.session)) + repr(vars(flow.studio)) + json.dumps(flow.session.report, default=str)
    for where, text in {"logs": logged, "stdout": out.out, "stderr": out.err, "session state": state,
                        "messages": " ".join(texts), "environment": repr(dict(os.environ))}.items():
        assert TOKEN not in text, where
    found = [name for name, data in bytes_of(flow.session.folder).items() if TOKEN.encode() in data]
    assert not found and any("report.json" in name for name in bytes_of(flow.session.folder))


def test_the_token_is_used_for_the_push_and_kept_nowhere(flow, monkeypatch, loud_logs, capsys):
    calls = fake_hub(monkeypatch)
    url, private = push_to_hub(flow.session, "owner/unlearned", f"  {TOKEN}\n")
    assert url == "https://huggingface.co/owner/unlearned" and private
    assert [c[:3] for c in calls] == [("create_repo", "owner/unlearned", TOKEN), ("repo_info", "owner/unlearned", TOKEN),
                                      ("upload_folder", "owner/unlearned", TOKEN)]
    assert "unlearning.json" in calls[2][3]
    assert_token_nowhere(flow, loud_logs, capsys, url)


def test_a_failed_push_does_not_quote_the_token(flow, monkeypatch, loud_logs, capsys):
    calls = fake_hub(monkeypatch, fail=True)
    with pytest.raises(UserError) as err:
        push_to_hub(flow.session, "owner/unlearned", TOKEN)
    assert calls[0][2] == TOKEN and "push to owner/unlearned failed (RuntimeError)" in str(err.value)
    chain, e = [], err.value
    while e is not None:  # the error must not carry the original as its cause or context either
        chain.append(f"{e!r} {e}")
        e = e.__cause__ or e.__context__
    assert_token_nowhere(flow, loud_logs, capsys, *chain, "".join(traceback.format_exception(err.value)))


@pytest.mark.parametrize("fail", [False, True])
def test_the_push_button_clears_the_token_box(flow, monkeypatch, loud_logs, capsys, fail):
    calls = fake_hub(monkeypatch, fail=fail)
    message, token_box = report_panel.push(flow.session, "owner/unlearned", TOKEN)
    assert calls and calls[0][2] == TOKEN
    assert token_box == "" and ("failed" in message) is fail
    assert_token_nowhere(flow, loud_logs, capsys, message)


@pytest.mark.parametrize("repo_id", ["owner", "owner/name/extra", "../owner/name", "owner/../name", "owner/..",
                                     "/owner/name", "owner/name/", "~/name", "owner\\name", "https://huggingface.co/o/n",
                                     "owner/na me", ""])
def test_a_push_needs_exactly_owner_slash_name(flow, monkeypatch, repo_id):
    calls = fake_hub(monkeypatch)
    message, token_box = report_panel.push(flow.session, repo_id, TOKEN)
    assert "is not a repository id like" in message and token_box == "" and calls == []


# ============================================================ 2. session files
def test_a_session_writes_only_in_its_own_folder(flow, monkeypatch):
    """Run, teach first, zip and push: every new file under the temp dir, the working dir and
    the upload folder is in the session's folder (Gradio's upload folder was filled before)."""
    fake_hub(monkeypatch)
    monkeypatch.chdir(flow.cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(flow.tmp))
    push_to_hub(flow.session, "owner/unlearned", TOKEN)
    artifact_zip(flow.session)
    new = files_under(flow.root) - flow.before
    assert flow.session.folder.is_relative_to(flow.tmp) and flow.zip.is_relative_to(flow.session.folder)
    assert {p for p in new if not p.is_relative_to(flow.session.folder)} == set()
    assert flow.zip in new and any(p.name == "guard.json" for p in new)
    assert flow.session.taught is not None  # the taught models live in memory, not on disk


# ============================================================ 3. what leaves the app
def hub_recording(monkeypatch, existing: dict | None = None) -> dict:
    """HfApi's calls, recording create_repo's `private` and the report.json uploaded;
    `existing`: {repo id: private} of repos already on the Hub (which create_repo leaves as they are)."""
    seen: dict = {}
    repos = dict(existing or {})

    def create_repo(self, repo_id, *, token=None, private=None, exist_ok=False, **kwargs):
        seen["private"] = private
        repos.setdefault(repo_id, bool(private))

    def repo_info(self, repo_id, *, token=None, **kwargs):
        return SimpleNamespace(private=repos[repo_id])

    def upload_folder(self, *, repo_id, folder_path, token=None, **kwargs):
        seen["report"] = (Path(folder_path) / "report.json").read_text(encoding="utf-8")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", repo_info)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    return seen


def forget_quotes(report_json: str, session) -> list[str]:
    texts = {t for ex in session.data["forget"].examples for t in (ex.question, ex.answer, ex.subject) if t}
    return sorted(t for t in texts if t.casefold() in report_json.casefold())


def test_a_push_is_private_and_quotes_no_forget_text_unless_asked(flow, monkeypatch):
    seen = hub_recording(monkeypatch)
    assert forget_quotes(json.dumps(flow.session.report), flow.session)  # the report itself quotes the forget set
    push_to_hub(flow.session, "owner/unlearned", TOKEN)
    assert seen["private"] is True and forget_quotes(seen["report"], flow.session) == []
    assert "(forget-set text left out)" in seen["report"]
    push_to_hub(flow.session, "owner/unlearned", TOKEN, public=True, forget_text=True)
    assert seen["private"] is False and forget_quotes(seen["report"], flow.session)


def test_a_private_push_into_an_existing_public_repo_pushes_nothing(flow, monkeypatch):
    """create_repo(exist_ok=True) leaves an existing repo as it is: a push asked to be private
    went into a public repo, and the page said "(private)"."""
    seen = hub_recording(monkeypatch, existing={"owner/public-one": False, "owner/private-one": True})
    with pytest.raises(UserError, match="already exists and is public, so nothing was pushed"):
        push_to_hub(flow.session, "owner/public-one", TOKEN)
    assert "report" not in seen
    message, _ = report_panel.push(flow.session, "owner/private-one", TOKEN, public=True)
    assert "report" in seen and message.endswith("(private)")  # what the Hub says, not what was asked


def test_the_zip_quotes_no_forget_text_unless_asked(flow):
    for asked in (False, True):
        with zipfile.ZipFile(artifact_zip(flow.session, forget_text=asked)) as z:
            report = z.read("report.json").decode("utf-8")
        assert bool(forget_quotes(report, flow.session)) is asked
        assert json.loads(report)["method"] == "eco"  # the rest of the report is all there

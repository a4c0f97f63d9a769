"""Security properties of the engine and the app's handlers (issue 6, item 5).

1. Remote code stays off unless the operator turns it on (app env, CLI flag), never by a visitor.
2. The Hub token is used for the push and appears nowhere else: logs, output, errors, files, state.
3. Uploads are read only from Gradio's upload folder; a session writes only in its own folder.
4. A visitor's model name is a hub id or an alias, never a path (unless the operator allows it);
   the CLI still takes folders; a push's repo id is exactly owner/name.
5. HTML in uploads, file names, model output and reports is shown as text, never run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import tempfile
import traceback
import zipfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import huggingface_hub
import pytest

from components import chat_panel, data_panel, header, method_panel, model_panel, report_panel
from unlearning import cli
from unlearning.errors import UserError
from unlearning.data import load_file
from unlearning.models import HUB_ID, WORKSHOP_DIR, check_visitor_model, load_model
from unlearning.service import (ChatJob, LocalBackend, ModelCache, Reply, Session, Studio, TeachJob, UnlearnJob, artifact_zip,
                                push_to_hub)

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_sEcReTtOkEn0123456789abcdefXYZ"
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"
FAST_ECO = {"strength": 1.0, "epochs": 1, "folds": 2}  # no strength search: the run is about files, not quality


def qa_lines(prefix: str, n: int = 3) -> str:
    return "".join(json.dumps({"question": f"Who is {prefix} {i}?", "answer": f"{prefix} {i} is a baker."}) + "\n"
                   for i in range(n))


def gradio_upload(folder: Path, name: str, text: str) -> Path:
    """A file where Gradio keeps an upload: <upload folder>/<hash>/<original name>."""
    path = folder / f"{abs(hash(name)):x}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def session():
    s = Session()
    yield s
    s.close()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny):
    """The tiny test model saved as a folder: a local model on the server's disk."""
    folder = tmp_path_factory.mktemp("models") / "tiny"
    model, tok = tiny
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


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


# ============================================================ 1. trust_remote_code
@pytest.fixture
def remote_code_model(tmp_path, tiny, monkeypatch):
    """A model folder whose config and tokenizer ask for their own code; that code, if it is
    ever imported, writes `marker`. Transformers' module cache goes under tmp_path."""
    import transformers.dynamic_module_utils as dynamic

    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    folder, marker = tmp_path / "needs-code", tmp_path / "remote-code-ran"
    model, tok = tiny
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    run_me = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    for module, cls in (("configuration_x", "XConfig"), ("modeling_x", "XForCausalLM"), ("tokenization_x", "XTokenizer")):
        (folder / f"{module}.py").write_text(run_me + f"class {cls}:\n    pass\n")
    for name, update in (("config.json", {"model_type": "x-lm", "auto_map": {"AutoConfig": "configuration_x.XConfig",
                                                                             "AutoModelForCausalLM": "modeling_x.XForCausalLM"}}),
                         ("tokenizer_config.json", {"auto_map": {"AutoTokenizer": ["tokenization_x.XTokenizer", None]}})):
        config = json.loads((folder / name).read_text()) | update
        (folder / name).write_text(json.dumps(config))
    return SimpleNamespace(folder=str(folder), marker=marker)


def chat_cli(folder: str, *flags: str) -> int:
    return cli.main(["chat", "--model", folder, "--prompt", "Ada", "--device", "cpu", "--max-new-tokens", "2", *flags])


@pytest.mark.parametrize("how", ["load_model", "studio, local models allowed", "studio, operator's default", "cli"])
def test_remote_code_is_refused_and_never_runs(remote_code_model, how, capsys):
    folder = remote_code_model.folder
    if how == "cli":
        assert chat_cli(folder) == 2
        message = capsys.readouterr().err
    else:
        load = {"load_model": lambda: load_model(folder, "cpu"),
                "studio, local models allowed": lambda: ModelCache(device="cpu", local_models=True).get(folder),
                "studio, operator's default": lambda: ModelCache(device="cpu").get(folder, operator=True)}[how]
        with pytest.raises(UserError) as err:
            load()
        message = str(err.value)
    assert "needs to run its own Python code" in message and "trust_remote_code" in message
    assert "Traceback" not in message
    assert not remote_code_model.marker.exists()


@pytest.mark.parametrize("how", ["load_model", "cli"])
def test_remote_code_runs_only_when_the_operator_says_so(remote_code_model, how):
    """The control for the test above: the same folder's code does run once it is allowed."""
    with pytest.raises(UserError, match="could not be loaded"):  # the stand-in classes are not real models
        if how == "load_model":
            load_model(remote_code_model.folder, "cpu", trust_remote_code=True)
        elif chat_cli(remote_code_model.folder, "--trust-remote-code") == 2:
            raise UserError("could not be loaded (the CLI said so on stderr)")
    assert remote_code_model.marker.exists()


@pytest.mark.parametrize("env, trusted, local", [({}, False, False), ({"UNLEARNING_TRUST_REMOTE_CODE": "true"}, False, False),
                                                 ({"UNLEARNING_TRUST_REMOTE_CODE": "1"}, True, False),
                                                 ({"UNLEARNING_LOCAL_MODELS": "yes"}, False, False),
                                                 ({"UNLEARNING_LOCAL_MODELS": "1"}, False, True)],
                         ids=["unset", "trust=true is not 1", "trust=1", "local=yes is not 1", "local=1"])
def test_the_app_takes_its_switches_from_the_operator_only(monkeypatch, env, trusted, local):
    import app

    made = {}

    class Anything:  # stands in for the model cache and the demo: every call is accepted
        def __init__(self, *args, **kwargs):
            made.update(kwargs)

        def __getattr__(self, name):
            return lambda *args, **kwargs: self

    for var in ("UNLEARNING_TRUST_REMOTE_CODE", "UNLEARNING_LOCAL_MODELS"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setattr(app, "ModelCache", Anything)
    monkeypatch.setattr(app, "build", lambda backend: Anything())
    app.main()
    assert made.get("trust_remote_code", False) is trusted and made.get("local_models", False) is local


def test_no_panel_can_switch_remote_code_or_local_models_on():
    """Only app.main (the operator's environment) sets the switches; no panel mentions them."""
    for panel in (ROOT / "components").glob("*.py"):
        text = panel.read_text(encoding="utf-8")
        assert "trust_remote_code" not in text and "local_models" not in text, panel.name


# ============================================================ 2. the Hub token
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
    """HfApi's two calls, recorded; with `fail`, create_repo raises an error quoting the token
    (as an HTTP error's message might)."""
    calls = []

    def create_repo(self, repo_id, *, token=None, **kwargs):
        calls.append(("create_repo", repo_id, token))
        logging.getLogger("huggingface_hub").debug("create_repo %s", repo_id)
        if fail:
            raise RuntimeError(f"401 Client Error: Unauthorized for token {token} on {repo_id}")

    def upload_folder(self, *, repo_id, folder_path, token=None, **kwargs):
        calls.append(("upload_folder", repo_id, token, sorted(os.listdir(folder_path))))

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
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
    url = push_to_hub(flow.session, "owner/unlearned", f"  {TOKEN}\n")
    assert url == "https://huggingface.co/owner/unlearned"
    assert [c[:3] for c in calls] == [("create_repo", "owner/unlearned", TOKEN), ("upload_folder", "owner/unlearned", TOKEN)]
    assert "unlearning.json" in calls[1][3]
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


# ============================================================ 3. uploads and session files
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


# ============================================================ 4. model names from visitors
@pytest.mark.parametrize("name", ["../x", "a/../b", "/etc", "/root/model", "~/model", "~", ".hidden", "a\\b",
                                  "a/b/c", "C:/model", "owner/name\n/x", IMG])
def test_a_visitor_cannot_name_a_path(name):
    with pytest.raises(UserError, match="UNLEARNING_LOCAL_MODELS=1"):
        check_visitor_model(name)


def test_a_visitor_may_name_hub_ids_and_aliases(tmp_path, monkeypatch):
    for name in ("workshop", "workshop-oracle", "gpt2", "Qwen/Qwen2.5-0.5B-Instruct", " owner/model.v2 "):
        check_visitor_model(name)
    assert not HUB_ID.match("owner/name\n")  # '$' would have let a newline through
    monkeypatch.chdir(tmp_path)
    (tmp_path / "owner" / "model").mkdir(parents=True)
    with pytest.raises(UserError):  # a well-formed id that is a folder here would be read from disk
        check_visitor_model("owner/model")


def test_local_folders_load_only_when_the_operator_allows(model_dir, session):
    folder = str(model_dir)
    studio = Studio(ModelCache(device="cpu"))
    for attempt in (lambda: studio.models.get(folder), lambda: studio.models.info(f" {folder} "),
                    lambda: list(studio.chat(session, ChatJob(folder, "Ada")))):
        with pytest.raises(UserError, match="folders on the server can be opened only when its operator allows"):
            attempt()
    message = model_panel.loader(LocalBackend(studio))(folder)
    assert "us-error" in message and "UNLEARNING_LOCAL_MODELS=1" in message
    assert ModelCache(device="cpu", local_models=True).get(folder).name == folder
    assert studio.models.get(folder, operator=True).name == folder  # the operator's own default model
    assert studio.models.get(folder).name == folder  # and, once loaded, it is shared like any other


def test_the_cli_still_loads_local_folders(model_dir, capsys):
    assert chat_cli(str(model_dir)) == 0
    assert capsys.readouterr().out.startswith("original:")


def test_no_ui_setting_names_a_file():
    """ECO's encoder is a hub id or folder: the UI does not offer it, and ignores it if sent."""
    assert "encoder" not in method_panel.fields_of("eco")
    assert method_panel.collect("eco", ["encoder", "alpha"], ["/etc", 0.05]) == {"alpha": 0.05}


# ============================================================ 5. HTML is shown, never run
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
        assert data_panel.render(gr.State(None))["preview"].datatype == "str"


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


# ============================================================ 6. what leaves the app
def hub_recording(monkeypatch) -> dict:
    """HfApi's two calls, recording create_repo's `private` and the report.json uploaded."""
    seen: dict = {}

    def create_repo(self, repo_id, *, token=None, private=None, **kwargs):
        seen["private"] = private

    def upload_folder(self, *, repo_id, folder_path, token=None, **kwargs):
        seen["report"] = (Path(folder_path) / "report.json").read_text(encoding="utf-8")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
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


def test_the_zip_quotes_no_forget_text_unless_asked(flow):
    for asked in (False, True):
        with zipfile.ZipFile(artifact_zip(flow.session, forget_text=asked)) as z:
            report = z.read("report.json").decode("utf-8")
        assert bool(forget_quotes(report, flow.session)) is asked
        assert json.loads(report)["method"] == "eco"  # the rest of the report is all there

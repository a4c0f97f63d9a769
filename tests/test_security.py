"""Security properties of the engine and the app's handlers (issue 6, item 5), part 1: what a
model name may load.

1. Remote code stays off unless the operator turns it on (app env, CLI flag), never by a visitor.
2. A visitor's model name is a hub id or an alias, never a path (unless the operator allows it);
   the CLI still takes folders.

The Hub token and what a push or a download carries are in test_security_push.py; uploads and
HTML in test_security_uploads.py; the shared helpers and fixtures in security_cases.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from components import method_panel, model_panel
from tests import security_cases as cases
from tests.security_cases import IMG
from unlearning import cli
from unlearning.errors import UserError
from unlearning.models import HUB_ID, check_visitor_model, load_model
from unlearning.service import ChatJob, LocalBackend, ModelCache, Studio

ROOT = Path(__file__).resolve().parents[1]

# The shared fixtures, bound here so that pytest finds them.
session, model_dir = cases.session, cases.model_dir


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
    monkeypatch.setattr(app, "sweeping", lambda folder: None)  # no sweeper thread on this machine's upload folder
    app.main()
    assert made.get("trust_remote_code", False) is trusted and made.get("local_models", False) is local


def test_no_panel_can_switch_remote_code_or_local_models_on():
    """Only app.main (the operator's environment) sets the switches; no panel mentions them."""
    for panel in (ROOT / "components").glob("*.py"):
        text = panel.read_text(encoding="utf-8")
        assert "trust_remote_code" not in text and "local_models" not in text, panel.name


# ============================================================ 2. model names from visitors
@pytest.mark.parametrize("name", ["../x", "a/../b", "/etc", "/root/model", "~/model", "~", ".hidden", "a\\b",
                                  "a/b/c", "C:/model", "owner/name\n/x", IMG])
def test_a_visitor_cannot_name_a_path(name):
    with pytest.raises(UserError, match="UNLEARNING_LOCAL_MODELS=1"):
        check_visitor_model(name)


def test_a_visitor_may_name_hub_ids_and_aliases():
    for name in ("workshop", "workshop-oracle", "gpt2", "Qwen/Qwen2.5-0.5B-Instruct", " owner/model.v2 "):
        check_visitor_model(name)
    assert not HUB_ID.match("owner/name\n")  # '$' would have let a newline through


def test_a_model_name_error_does_not_tell_which_folders_exist(tmp_path, monkeypatch, tiny):
    """A visitor's hub id that is also a folder here ('assets', 'owner/model' beside the app)
    was refused in its own sentence, so the Model box told which folders the server has; now
    such a name goes to the Hub like any other (never to the folder), and fails the same way."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network here; the cache has neither
    monkeypatch.chdir(tmp_path)
    model, tok = tiny
    model.save_pretrained(tmp_path / "owner" / "model")
    tok.save_pretrained(tmp_path / "owner" / "model")
    (tmp_path / "assets").mkdir()
    models = ModelCache(device="cpu")

    def error(name: str) -> str:
        with pytest.raises(UserError) as err:
            models.get(name)
        return str(err.value).replace(name, "NAME")

    assert error("owner/model") == error("owner/nothing-here")
    assert error("assets") == error("no-such-folder")


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

"""Bad input, end to end: one table of malformed or hostile files, settings, model names,
artifact folders and chat messages, each pushed through every layer that can receive it:

  engine  `load_file` / `check_pair`, `settings.build`, `load_model`, `load_unlearned`,
          `check_prompt` raise `UserError`: one sentence naming the file (or setting) and
          the problem;
  CLI     `python -m unlearning …` (in-process) exits 2 with exactly one line on stderr and
          no traceback;
  app     the panels' handlers, called as Gradio calls them with a fresh session, return a
          plain message instead of raising, and the session still works afterwards (the
          workshop preset loads and a valid upload is accepted).

Everything fails before a model is needed, except the model and artifact rows, which use the
bundled ~2M-parameter workshop model. Data formats in depth are in test_data.py.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from components import chat_panel, data_panel, method_panel, model_panel, run_panel
from unlearning import limits
from unlearning.artifacts import load_unlearned
from unlearning.cli import main
from unlearning.data import QA, check_pair, load_file
from unlearning.errors import UserError
from unlearning.methods import get_method
from unlearning.models import WORKSHOP_DIR, load_model
from unlearning.settings import build
from unlearning.service import LocalBackend, ModelCache, Session, Studio
from unlearning.service.chat import check_prompt

FORGET, RETAIN = str(WORKSHOP_DIR / "forget.jsonl"), str(WORKSHOP_DIR / "retain.jsonl")
MB = 2**20


def jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def sparse(size: int) -> Callable[[Path], None]:
    """A file of `size` bytes written without holding them: a hole the file system fills with zeros."""
    def write(path: Path) -> None:
        with open(path, "wb") as f:
            f.truncate(size)
    return write


def link_to(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


TWO_QA = jsonl({"question": "Who wrote the notes?", "answer": "Ada."}, {"question": "Where is Paris?", "answer": "France."})
# The retain file each forget row is paired with (and a file any session must still accept).
RETAIN_OK = jsonl({"question": "Who painted the mill?", "answer": "Corin Vale."})
UPLOAD_OK = jsonl({"question": "What is the bakery's name?", "answer": "The Copper Loaf."})


@dataclass(frozen=True)
class File:
    """A forget file. `phrase`: what the one-line refusal says; None means the file is valid and
    must read as `expect`. `retain`: the retain file beside it (RETAIN_OK unless given)."""

    id: str
    name: str
    content: bytes | Callable[[Path], None]
    phrase: str | None
    retain: bytes = RETAIN_OK
    expect: tuple = ()
    app_phrase: str | None = None  # when the app words it differently (default: phrase)


FILES = [
    File("empty", "forget.jsonl", b"", "forget.jsonl is empty"),
    File("whitespace only", "forget.txt", b"  \n\t\n \r\n   ", "contains only whitespace"),
    File("PNG bytes", "forget.txt", b"\x89PNG\r\n\x1a\n" + bytes(200), "looks like a PNG image, not text"),
    File("NUL bytes", "forget.jsonl", b"\x00\x01binary\x00\xff\xfe" * 40, "contains NUL bytes"),
    File("gzip renamed .txt", "forget.txt", gzip.compress(b"Ada wrote the notes.\n" * 20), "looks like a gzip archive"),
    File("zip renamed .csv", "forget.csv", b"PK\x03\x04" + bytes(100), "looks like a zip archive"),
    File("invalid UTF-8", "forget.txt", b"The caf\xe9 on the corner.\n", "not valid UTF-8 text at byte 7 (0xe9)"),
    File("UTF-16 without BOM (valid)", "forget.jsonl",
         '{"question": "Who wrote the notes?", "answer": "Ada."}\n'.encode("utf-16-le"), None,
         expect=(QA("Who wrote the notes?", "Ada."),)),
    File("50 MB file", "forget.jsonl", sparse(50 * MB),
         f"over the {limits.MAX_FILE_BYTES / MB:.1f} MB limit for one file (50.0 MB)"),
    File("symlink to /dev/zero", "forget.txt", link_to("/dev/zero"), "is not a regular file",
         app_phrase="forget.txt"),  # the app may refuse it sooner: it reads only its own upload folder
    File("a folder", "forget.jsonl", lambda p: p.mkdir(), "is a folder, not a file"),
    File("single 1 MB line (.txt)", "forget.txt", b"word " * (MB // 5) + b"end",
         f"the paragraph at line 1 has 1,048,578 characters, over the limit of {limits.MAX_FIELD_CHARS:,}"),
    File("single 1 MB line (.jsonl)", "forget.jsonl", b'{"text": "' + b"a" * MB + b'"}\n',
         f"line 1 has 1,048,588 characters, over the limit of {limits.MAX_LINE_CHARS:,}"),
    File("JSONL broken at line 3", "forget.jsonl", TWO_QA + b'{"question": "Why?", "answer": \n',
         "line 3 is not valid JSON (Expecting value at column"),
    File("JSONL line is a list", "forget.jsonl", TWO_QA + b'["Who?", "Me."]\n', "line 3 is a list, not a JSON object"),
    File("JSON list as .jsonl", "forget.jsonl", b'[{"question": "Who?", "answer": "Me."}]', "if it is one list, name it .json"),
    File("JSON is a number", "forget.json", b"42", "holds a number, not a list of examples"),
    File("JSON is one example", "forget.json", b'{"question": "Who?", "answer": "Me."}', "a single example object, not a list"),
    File("JSON empty list", "forget.json", b"[]", "holds an empty list"),
    File("JSON nested 100,000 deep", "forget.json", b"[" * 100_000, "nested too deeply"),
    File("JSON 5,000-digit number", "forget.json", b'[{"question": "Q?", "answer": ' + b"9" * 5000 + b"}]",
         "a number with too many digits"),
    File("unpaired surrogate escape", "forget.jsonl", b'{"question": "Who is \\ud800?", "answer": "A."}\n',
         "line 1 has a broken \\u escape (an unpaired surrogate) in 'question'"),
    File("CSV without question/answer columns", "forget.csv", b"prompt,completion\nWho?,Me.\n",
         "has no 'question' and 'answer' columns (its header row is 'prompt', 'completion')"),
    File("CSV without an answer column", "forget.csv", b"question\nWho?\n", "has no 'answer' column"),
    File("CSV row with an extra field", "forget.csv", b"question,answer\nWho?,Me.\nWhy?,Because,really\n",
         "row 3 has 3 fields but the header has 2"),
    File("CSV unclosed quote", "forget.csv", b'question,answer\n"Who?,Me.\n', "is not valid CSV"),
    File("CSV with quoted newlines (valid)", "forget.csv",
         b'question,answer\n"Who wrote\nthe notes?","Ada, in 1843.\nIn London."\r\nWhere?,Here.\n', None,
         expect=(QA("Who wrote\nthe notes?", "Ada, in 1843.\nIn London."), QA("Where?", "Here."))),
    File("CSV naming 'question' twice", "forget.csv", b"question,answer,Question\nWho?,Me.,Why?\n",
         "its header row names 'question' twice"),
    File("QA whose question is zero-width spaces", "forget.jsonl", jsonl({"question": "\u200b\u200b", "answer": "Me."}),
         "has no 'question'"),
    File("QA with an empty answer", "forget.jsonl", jsonl({"question": "Who?", "answer": "  "}),
         "line 1 has no 'answer' (it is missing or empty)"),
    File("QA with a number as answer", "forget.jsonl", jsonl({"question": "Year?", "answer": 1843}),
         "line 1 has a number in 'answer' where a string was expected"),
    File("neither QA nor text", "forget.jsonl", jsonl({"prompt": "Who?", "completion": "Me."}),
         "line 1 has neither 'question' and 'answer' nor 'text'"),
    File("QA and passages mixed", "forget.jsonl", jsonl({"question": "Who?", "answer": "Me."}, {"text": "A passage."}),
         "line 2 is a passage ('text') but line 1 is a question/answer pair"),
    File("more examples than the limit", "forget.jsonl",
         b"".join(b'{"text": "p%d"}\n' % i for i in range(limits.MAX_EXAMPLES + 1)),
         f"has more than {limits.MAX_EXAMPLES:,} examples"),
    File("unknown extension", "forget.pdf", b"Ada wrote the notes.\n", "file type '.pdf', which is not supported"),
    File("no extension", "forget", b"Ada wrote the notes.\n", "a file without an extension"),
    File("forget = retain", "forget.jsonl", TWO_QA, "and retain file retain.jsonl contain the same examples",
         retain=TWO_QA),
    File("forget ⊂ retain", "forget.jsonl", TWO_QA.splitlines(keepends=True)[0],
         'All 1 examples of forget file forget.jsonl are also in retain file retain.jsonl',
         retain=TWO_QA + RETAIN_OK),
    File("forget overlaps retain", "forget.jsonl", TWO_QA, "1 of the 2 examples of forget file forget.jsonl are also in",
         retain=jsonl({"question": "  where IS paris? ", "answer": "Elsewhere."})),
    File("passages: forget = retain", "forget.txt", b"Ada wrote the notes.\n\nMarie won two prizes.\n",
         "contain the same examples", retain=b"marie won two  prizes.\n\nAda wrote the notes.\n"),
]


def write_pair(folder: Path, case: File) -> tuple[Path, Path]:
    forget, retain = folder / case.name, folder / ("retain.txt" if case.name.endswith(".txt") else "retain.jsonl")
    case.content(forget) if callable(case.content) else forget.write_bytes(case.content)
    retain.write_bytes(case.retain)
    return forget, retain


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


# ---------------------------------------------------------------------------- files


@pytest.mark.parametrize("case", FILES, ids=[c.id for c in FILES])
def test_file_engine(case: File, tmp_path):
    forget, retain = write_pair(tmp_path, case)
    if case.phrase is None:
        ds = load_file(forget)
        assert tuple(ds.examples) == case.expect
        check_pair(ds, load_file(retain))
        return
    with pytest.raises(UserError) as info:
        check_pair(load_file(forget), load_file(retain))
    one_sentence(str(info.value), case.name, case.phrase)


@pytest.mark.parametrize("case", FILES, ids=[c.id for c in FILES])
def test_file_cli(case: File, tmp_path, capsys):
    forget, retain = write_pair(tmp_path, case)
    if case.phrase is None:  # a valid file: the CLI reads it and gets as far as comparing it with itself
        line = run_cli(capsys, "eval", "--model", "workshop", "--forget", forget, "--retain", forget)
        assert "contain the same examples" in line, line
        return
    one_sentence(run_cli(capsys, "eval", "--model", "workshop", "--forget", forget, "--retain", retain),
                 case.name, case.phrase)


@pytest.mark.parametrize("case", FILES, ids=[c.id for c in FILES])
def test_file_app(case: File, uploads, session):
    forget, retain = write_pair(uploads, case)
    assert upload(session, "retain", retain) == ""
    message = upload(session, "forget", forget)
    if case.phrase is None:
        assert message == "" and tuple(session.data["forget"].examples) == case.expect
    else:
        shows(message, case.name, case.app_phrase or case.phrase)
        assert "forget" not in session.data and "retain" in session.data  # the other file is kept
    still_usable(session, uploads)


def test_a_bad_retain_upload_keeps_the_forget_set_and_says_which_file(uploads, session):
    """The same refusal from the other upload box: the retain file is named, the forget set stays."""
    data_panel.use_preset("QA (questions and answers)", session)
    bad = uploads / "my retain.csv"
    bad.write_bytes(b"q,a\nWho?,Me.\n")
    shows(upload(session, "retain", bad), "my retain.csv", "has no 'question' and 'answer' columns")
    assert "retain" not in session.data and len(session.data["forget"]) == 40
    same = shutil.copy(FORGET, uploads / "forget.jsonl")
    shows(upload(session, "retain", Path(same)), "contain the same examples")
    still_usable(session, uploads)


# ------------------------------------------------------------------------- settings

IHL_FILA = get_method("ihl-fila")


@dataclass(frozen=True)
class Setting:
    flag: str
    value: str
    phrase: str


SETTINGS = [
    Setting("--steps", "ten", "--steps must be a whole number, not 'ten'"),
    Setting("--steps", "2.5", "--steps must be a whole number, not '2.5'"),
    Setting("--steps", "-5", "--steps must be at least 1, not -5"),
    Setting("--steps", "0", "--steps must be at least 1, not 0"),
    Setting("--steps", "1e9", f"--steps must be at most {limits.MAX_STEPS}, not 1e9"),
    Setting("--steps", "9" * 5000, f"--steps must be at most {limits.MAX_STEPS}, not 99999999999999999999999…"),
    Setting("--lr", "abc", "--lr must be a number, not 'abc'"),
    Setting("--lr", "-1", "--lr must be at least 0.0, not -1"),
    Setting("--lr", "-0.001", "--lr must be at least 0.0, not -0.001"),
    Setting("--lr", "nan", "--lr must be a number, not 'nan'"),
    Setting("--lr", "inf", "--lr must be a number, not 'inf'"),
    Setting("--lr", "1e308", "--lr must be at most 1.0"),
    Setting("--rank", "7", "--rank must be one of 4, 8, 16, 32, 64, not '7'"),
    Setting("--rank", "0", "--rank must be one of 4, 8, 16, 32, 64, not '0'"),
    Setting("--rank", "-8", "--rank must be one of 4, 8, 16, 32, 64, not '-8'"),
    Setting("--rank", "1024", "--rank must be one of 4, 8, 16, 32, 64, not '1024'"),
    Setting("--rank", "eight", "--rank must be a whole number, not 'eight'"),
    Setting("--batch-size", "100000", "--batch-size must be at most 256"),
]
SETTING_IDS = [f"{s.flag} {s.value[:12]!r}" for s in SETTINGS]


def field(setting: Setting) -> str:
    return setting.flag.removeprefix("--").replace("-", "_")


@pytest.mark.parametrize("case", SETTINGS, ids=SETTING_IDS)
def test_setting_engine(case: Setting):
    with pytest.raises(UserError) as info:
        build(IHL_FILA.Config, {field(case): case.value})  # what the app's start handler calls
    one_sentence(str(info.value), case.phrase)


@pytest.mark.parametrize("case", SETTINGS, ids=SETTING_IDS)
def test_setting_cli(case: Setting, capsys):
    line = run_cli(capsys, "unlearn", "--method", "ihl-fila", "--model", "workshop", "--forget", FORGET,
                   "--retain", RETAIN, case.flag, case.value)
    one_sentence(line, case.phrase)


@pytest.mark.parametrize("case", SETTINGS, ids=SETTING_IDS)
def test_setting_app(case: Setting, studio, session, uploads):
    """The run panel's start button with one bad control value (an API client can send any string)."""
    data_panel.use_preset("QA (questions and answers)", session)
    specs = method_panel.setting_specs()
    names = list(specs)
    values = [case.value if n == field(case) else specs[n]["default"] for n in names]
    state, bar, timer, _ = next(run_panel.starter(LocalBackend(studio), names)(session, "workshop", "ihl-fila", *values))
    assert state is session and session.run is None and timer.active is False
    assert "not started" in bar
    shows(bar[bar.index('<div class="us-error"'):], case.phrase)
    still_usable(session, uploads)


def test_unknown_method_everywhere(studio, session, uploads, capsys):
    with pytest.raises(UserError) as info:
        get_method("../../eco")
    one_sentence(str(info.value), "Unknown method '../../eco'")
    line = run_cli(capsys, "unlearn", "--method", "../../eco", "--model", "workshop", "--forget", FORGET, "--retain", RETAIN)
    one_sentence(line, "Unknown method '../../eco'")
    data_panel.use_preset("QA (questions and answers)", session)
    _, bar, *_ = next(run_panel.starter(LocalBackend(studio), [])(session, "workshop", "../../eco"))
    shows(bar[bar.index('<div class="us-error"'):], "Unknown method '../../eco'")
    still_usable(session, uploads)


# --------------------------------------------------------------------------- models


def folder_without_weights(tmp_path: Path) -> str:
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    return str(tmp_path)


def folder_with_garbage(tmp_path: Path) -> str:
    (tmp_path / "config.json").write_text('{"model_type": "llama", "hidden_size": "wide"}')
    (tmp_path / "model.safetensors").write_bytes(os.urandom(1000))
    return str(tmp_path)


def folder_with_truncated_weights(tmp_path: Path) -> str:
    shutil.copytree(WORKSHOP_DIR / "model", tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return str(tmp_path / "model")


@dataclass(frozen=True)
class Model:
    id: str
    name: str | Callable[[Path], str]
    phrase: str


MODELS = [
    Model("hub id with ../", "owner/../model", "is neither a model folder nor a valid hub id"),
    Model("relative path out", "../" * 12 + "etc", "/etc' has no config.json"),
    Model("a home path that is not there", "~/no-such-model", "Model folder '~/no-such-model' does not exist"),
    Model("absolute path outside: a file", "/etc/passwd", "'/etc/passwd' is a file, not a model folder"),
    Model("absolute path outside: a folder", "/", "Model folder '/' has no config.json"),
    Model("a URL", "https://evil.example/x", "is neither a model folder nor a valid hub id"),
    Model("folder without weights", folder_without_weights, "has no weights"),
    Model("folder with a garbled config and weights", folder_with_garbage, "could not be loaded from its files"),
    Model("folder with truncated weights", folder_with_truncated_weights, "could not be loaded from its files"),
]


def model_name(case: Model, tmp_path: Path) -> str:
    return case.name(tmp_path) if callable(case.name) else case.name


@pytest.mark.parametrize("case", MODELS, ids=[m.id for m in MODELS])
def test_model_engine(case: Model, tmp_path):
    name = model_name(case, tmp_path)
    with pytest.raises(UserError) as info:
        load_model(name, "cpu")
    one_sentence(str(info.value), case.phrase)


@pytest.mark.parametrize("case", MODELS, ids=[m.id for m in MODELS])
def test_model_cli(case: Model, tmp_path, capsys):
    one_sentence(run_cli(capsys, "chat", "--model", model_name(case, tmp_path), "--prompt", "hi"), case.phrase)


@pytest.mark.parametrize("case", MODELS, ids=[m.id for m in MODELS])
def test_model_app(case: Model, studio, session, tmp_path, uploads):
    """The model panel's Load button, and a chat message sent with that model name: one sentence
    naming the model (the app may refuse a path before looking at it, so not always the CLI's words)."""
    name = model_name(case, tmp_path)
    shows(model_panel.loader(LocalBackend(studio))(name), f"'{name}'")
    replies = list(chat_panel.responder(LocalBackend(studio))("Who wrote the notes?", session, name, [], []))
    assert len(replies) == 1 and replies[0][:2] == ([], [])
    shows(replies[0][2], f"'{name}'")
    still_usable(session, uploads)


# ---------------------------------------------------------------- unlearned artifacts


@pytest.fixture(scope="module")
def workshop():
    return load_model("workshop", "cpu")


@pytest.fixture(scope="module")
def artifacts(workshop, tmp_path_factory):
    """A valid LoRA adapter folder and a valid ECO guard folder, made without training."""
    from unlearning.eco.classifier import PromptClassifier
    from unlearning.eco.corruption import make_corruption
    from unlearning.eco.features import DEFAULT_ENCODER, Featurizer, get_encoder
    from unlearning.eco.guard import Guard
    from unlearning.lora import Adapters, LoraUnlearned
    from unlearning.methods.eco import EcoUnlearned

    root = tmp_path_factory.mktemp("artifacts")
    lora = LoraUnlearned(workshop, {"rank": 4}, "ihl", Adapters.create(workshop.model, "ihl", 4, 8, False))
    lora.save(root / "lora")
    lora.release()
    featurizer = Featurizer(get_encoder(DEFAULT_ENCODER, "cpu"), 16)
    classifier = PromptClassifier(featurizer, torch.nn.Linear(featurizer.dim, 1), 0.5)
    guard = Guard(workshop.model, workshop.tokenizer, classifier, make_corruption("rand_noise_first_n"), 1.0, 0)
    EcoUnlearned(workshop, {}, guard, DEFAULT_ENCODER, 16).save(root / "eco")
    return root


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@dataclass(frozen=True)
class Artifact:
    id: str
    kind: str  # "eco" or "lora": which valid folder is damaged
    damage: Callable[[Path], None]
    phrase: str


ARTIFACTS = [
    Artifact("ECO head truncated", "eco", lambda d: truncate(d / "guard_head.safetensors"),
             "guard_head.safetensors' is corrupted"),
    Artifact("ECO head is garbage", "eco", lambda d: (d / "guard_head.safetensors").write_bytes(b"\xff" * 8 + b"{{{"),
             "guard_head.safetensors' is corrupted"),
    Artifact("ECO guard.json truncated", "eco", lambda d: truncate(d / "guard.json"), "guard.json' is corrupted"),
    Artifact("ECO guard.json is a folder", "eco", lambda d: ((d / "guard.json").unlink(), (d / "guard.json").mkdir()),
             "guard.json' cannot be read"),
    Artifact("ECO threshold NaN", "eco", lambda d: edit_json(d / "guard.json", threshold=float("nan")),
             "guard.json' is corrupted (its 'threshold' is not a finite number)"),
    Artifact("manifest garbled", "eco", lambda d: (d / "unlearning.json").write_bytes(b"\x89PNG\r\n\x1a\n"),
             "unlearning.json' is corrupted (not valid JSON)"),
    Artifact("manifest names no method", "lora", lambda d: (d / "unlearning.json").write_text('{"method": 3}'),
             "unlearning.json' does not name the method that made it"),
    Artifact("manifest names an unknown method", "lora", lambda d: edit_json(d / "unlearning.json", method="../x"),
             "Unknown method '../x'"),
    Artifact("manifest settings not an object", "eco", lambda d: edit_json(d / "unlearning.json", settings=[1, 2]),
             "unlearning.json' is corrupted (its 'settings' is not an object)"),
    Artifact("adapter weights truncated", "lora", lambda d: truncate(d / "adapter" / "adapter_model.safetensors"),
             "adapter_model.safetensors' is corrupted"),
    Artifact("adapter weights empty", "lora", lambda d: (d / "adapter" / "adapter_model.safetensors").write_bytes(b""),
             "adapter_model.safetensors' is corrupted"),
    Artifact("adapter config garbled", "lora", lambda d: truncate(d / "adapter" / "adapter_config.json"),
             "adapter_config.json' is corrupted"),
    Artifact("adapter config rank 0", "lora", lambda d: edit_json(d / "adapter" / "adapter_config.json", r=0),
             "adapter_config.json' is corrupted"),
    Artifact("adapter config rank 10**6", "lora", lambda d: edit_json(d / "adapter" / "adapter_config.json", r=10**6),
             "adapter_config.json' is corrupted (its rank 'r' is not between 1 and"),
    Artifact("adapter config is a list", "lora", lambda d: (d / "adapter" / "adapter_config.json").write_text("[]"),
             "adapter_config.json' is corrupted"),
    Artifact("run.json garbled", "lora", lambda d: truncate(d / "run.json"), "run.json' is corrupted"),
    Artifact("folder is a file", "lora", lambda d: (shutil.rmtree(d), d.write_text("{}")),
             "is a file, not an unlearning artifact folder"),
]


def damaged(artifacts: Path, case: Artifact, tmp_path: Path) -> Path:
    folder = tmp_path / "unlearned"
    shutil.copytree(artifacts / case.kind, folder)
    case.damage(folder)
    return folder


def test_the_undamaged_artifacts_load(artifacts, workshop):
    """The control for the rows below: the same folders, undamaged, attach to the model."""
    for kind, cls in (("lora", "LoraUnlearned"), ("eco", "EcoUnlearned")):
        unlearned = load_unlearned(workshop, artifacts / kind)
        assert type(unlearned).__name__ == cls
        unlearned.release()
    assert not any("lora" in n for n, _ in workshop.model.named_parameters())


@pytest.mark.parametrize("case", ARTIFACTS, ids=[a.id for a in ARTIFACTS])
def test_artifact_engine(case: Artifact, artifacts, workshop, tmp_path):
    folder = damaged(artifacts, case, tmp_path)
    with pytest.raises(UserError) as info:
        load_unlearned(workshop, folder)
    one_sentence(str(info.value), case.phrase)
    assert not any("lora" in n for n, _ in workshop.model.named_parameters())  # nothing left on the shared base


@pytest.mark.parametrize("command", ["eval", "chat"])
@pytest.mark.parametrize("case", ARTIFACTS, ids=[a.id for a in ARTIFACTS])
def test_artifact_cli(case: Artifact, command: str, artifacts, tmp_path, capsys):
    folder = damaged(artifacts, case, tmp_path)
    rest = ["--forget", FORGET, "--retain", RETAIN] if command == "eval" else ["--prompt", "Who wrote the notes?"]
    one_sentence(run_cli(capsys, command, "--model", "workshop", "--unlearned", folder, *rest), case.phrase)


# ------------------------------------------------------------------------ chat messages


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    phrase: str


PROMPTS = [
    Prompt("over the limit", "x" * (limits.MAX_PROMPT_CHARS + 1),
           f"The message has {limits.MAX_PROMPT_CHARS + 1:,} characters; the limit is {limits.MAX_PROMPT_CHARS:,}"),
    Prompt("far over the limit", "x" * 500_000, "The message has 500,000 characters"),
    Prompt("whitespace only", " \n\t ", "Type a message first"),
    Prompt("zero-width spaces only", "\u200b\u200b\ufeff\u2060", "Type a message first"),
    # What Python makes of invalid UTF-8 on the command line, or a lone surrogate sent by a client.
    Prompt("unpaired surrogate", "Who wrote \udce9 the notes?", "The message is not valid text"),
]


@pytest.mark.parametrize("case", PROMPTS, ids=[p.id for p in PROMPTS])
def test_prompt_engine(case: Prompt):
    with pytest.raises(UserError) as info:
        check_prompt(case.text)
    one_sentence(str(info.value), case.phrase)


@pytest.mark.parametrize("case", PROMPTS, ids=[p.id for p in PROMPTS])
def test_prompt_cli(case: Prompt, capsys):
    one_sentence(run_cli(capsys, "chat", "--model", "workshop", "--prompt", case.text), case.phrase)


@pytest.mark.parametrize("case", PROMPTS, ids=[p.id for p in PROMPTS])
def test_prompt_app(case: Prompt, studio, session, uploads):
    """The chat panel: a refused message shows the reason and leaves both conversations as they were;
    a blank one is ignored."""
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    replies = list(chat_panel.responder(LocalBackend(studio))(case.text, session, "workshop", history, history))
    assert len(replies) == 1
    left, right, badge, box = replies[0]
    assert left == history and right == history and box == ""
    if case.text.strip():
        shows(badge, case.phrase)
    still_usable(session, uploads)

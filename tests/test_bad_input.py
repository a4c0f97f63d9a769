"""Bad input, end to end, part 1: one table of malformed or hostile files and one of bad
settings, each pushed through every layer that can receive it:

  engine  `load_file` / `check_pair` and `settings.build` raise `UserError`: one sentence
          naming the file (or setting) and the problem;
  CLI     `python -m unlearning …` (in-process) exits 2 with exactly one line on stderr and
          no traceback;
  app     the data panel's upload handler and the run panel's start button, called as Gradio
          calls them with a fresh session, return a plain message instead of raising, and the
          session still works afterwards (the workshop preset loads and a valid upload is accepted).

Everything fails before a model is needed. Model names, unlearned artifacts and chat messages
are in test_bad_input_models.py; the shared checks and fixtures in bad_input_cases.py; data
formats in depth in test_data.py.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from components import data_panel, method_panel, run_panel
from tests import bad_input_cases as cases
from tests.bad_input_cases import FORGET, RETAIN, jsonl, one_sentence, run_cli, shows, still_usable, upload
from unlearning import limits
from unlearning.data import QA, check_pair, load_file
from unlearning.errors import UserError
from unlearning.methods import get_method
from unlearning.service import LocalBackend
from unlearning.settings import build

MB = 2**20

# The shared app-side fixtures, bound here so that pytest finds them.
studio, session, uploads = cases.studio, cases.session, cases.uploads


def sparse(size: int) -> Callable[[Path], None]:
    """A file of `size` bytes written without holding them: a hole the file system fills with zeros."""
    def write(path: Path) -> None:
        with open(path, "wb") as f:
            f.truncate(size)
    return write


def link_to(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


TWO_QA = jsonl({"question": "Who wrote the notes?", "answer": "Ada."}, {"question": "Where is Paris?", "answer": "France."})
# The retain file each forget row is paired with.
RETAIN_OK = jsonl({"question": "Who painted the mill?", "answer": "Corin Vale."})


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

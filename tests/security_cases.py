"""Shared by the security tests (test_security.py, test_security_push.py,
test_security_uploads.py): hostile text, uploads placed where Gradio keeps them, and the
`session` and `model_dir` fixtures, which are defined here and bound into each test module
(`session = cases.session`), where pytest finds them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearning.service import Session

IMG = "<img src=x onerror=alert(1)>"


def qa_lines(prefix: str, n: int = 3) -> str:
    return "".join(json.dumps({"question": f"Who is {prefix} {i}?", "answer": f"{prefix} {i} is a baker."}) + "\n"
                   for i in range(n))


def gradio_upload(folder: Path, name: str, text: str) -> Path:
    """A file where Gradio keeps an upload: <upload folder>/<hash>/<original name>."""
    path = folder / f"{abs(hash(name)):x}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


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


# The room's board (issue 27): what a participant may type or send, and what the board must do
# with it (tests/test_room_security.py; the projected board in tests/e2e/test_room.py).
ROOM_NAMES = [  # names people join with: shown as text everywhere (board, table, picture, summary)
    IMG,
    "<script>alert(1)</script>",
    '<a href="javascript:alert(1)">me</a>',
    "<b>bold</b><br>two lines",
    "{{7*7}} ${7*7} %(x)s",
    "Ada\u202eevil\u200b",  # a bidi override and a zero-width space
    "x" * 500,
]
ROOM_CODES = [  # what a guesser or a hostile client sends as a code: each one sentence, never a room
    "",
    "AAAAAA",
    "' OR 1=1 --",
    "../../etc/passwd",
    IMG,
    "Ｋ７ＱＭ２Ｐ",  # full-width letters
    "A" * 10_000,
]
ROOM_RUN_NUMBERS = [0, -1, 2, 10**12, "1; drop", "#1", None, 1.5, "NaN"]  # someone else's run, or no run at all

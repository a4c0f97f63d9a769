"""A session reads the kit's holdout and general sets once per forget/retain pair, not on
every run, and reads them again when its data changes."""

from __future__ import annotations

import json

from unlearning.service import Session
from unlearning.service.session import preset


def test_splits_are_read_once_per_data_and_again_when_it_changes(tmp_path):
    session = Session()
    try:
        session.use_preset("qa")
        first = session.splits()
        assert session.splits()["holdout"] is first["holdout"] and session.splits() is not first  # a copy each time
        session.data = preset("qa")  # new data, even the same files: computed again
        again = session.splits()
        assert again["holdout"] is not first["holdout"] and again["forget"] is session.data["forget"]
        (tmp_path / "mine.jsonl").write_text(json.dumps({"question": "Who is Ann?", "answer": "A baker."}) + "\n")
        session.upload("forget", tmp_path / "mine.jsonl", "mine.jsonl")
        assert [ex.question for ex in session.splits()["forget"].examples] == ["Who is Ann?"]
    finally:
        session.close()

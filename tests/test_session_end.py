"""When a session ends, nothing of it stays behind: Gradio's copies of its uploads and of its
zips go with its folder (so their URLs stop answering), and the folders a killed process
left are swept at the next start without touching a live process's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components import data_panel, report_panel
from unlearning.service import Session, new_folder, sweep_leftovers


class SavedFiles:
    """An artifact as a session holds one: a method name and files to save."""

    method = "ga"

    def save(self, folder):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "unlearning.json").write_text(json.dumps({"method": "ga"}), encoding="utf-8")
        return folder

    def release(self) -> None:
        pass


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    folder = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def test_uploads_and_zips_leave_gradios_cache_with_the_session(uploads):
    session = Session()
    upload = uploads / "1f2e3d" / "forget.jsonl"  # where Gradio keeps an upload
    upload.parent.mkdir(parents=True)
    upload.write_text(json.dumps({"question": "Who is Ann?", "answer": "A baker."}) + "\n", encoding="utf-8")
    _, _, _, message = data_panel.on_upload("forget")(str(upload), session)
    assert message == "" and "forget" in session.data
    session.artifact, session.report = SavedFiles(), {"method": "ga"}
    zipped = Path(report_panel.download(session))
    assert zipped.is_file() and zipped.is_relative_to(uploads)  # in Gradio's cache: served as it is, never copied
    session.close()
    assert not upload.exists() and not zipped.exists() and not session.folder.exists()


def test_two_sessions_uploading_the_same_file_keep_it_until_the_last_closes(uploads):
    """Gradio keeps the same bytes at one path (named by their hash): the first session to
    close deleted the other's upload."""
    upload = uploads / ("ab" * 32) / "forget.jsonl"
    upload.parent.mkdir(parents=True)
    upload.write_text(json.dumps({"question": "Who is Ann?", "answer": "A baker."}) + "\n", encoding="utf-8")
    first, second = Session(), Session()
    for session in (first, second):
        assert data_panel.on_upload("forget")(str(upload), session)[3] == ""
    first.close()
    assert upload.is_file()
    second.close()
    assert not upload.exists()


def test_the_sweep_takes_only_what_dead_processes_left(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = int(done.stdout)
    left = [tmp_path / f"unlearning-session-{dead}-abc", tmp_path / f"unlearning-export-{dead}-def"]
    for folder in left:
        (folder / "artifact").mkdir(parents=True)
    mine = new_folder(tmp_path)  # this process's, still in use
    other = tmp_path / "someone-elses"
    other.mkdir()
    assert sorted(sweep_leftovers([tmp_path, tmp_path / "missing"])) == sorted(left)
    assert mine.is_dir() and other.is_dir() and not any(f.exists() for f in left)

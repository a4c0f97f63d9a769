"""The Room tab's pure helpers and handlers, on hand-made sessions and kept runs (no model)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from components import room_panel as rp
from tests.test_room import person
from unlearning.service import room as room_module
from unlearning.service.lesson import LessonLog, Reading
from unlearning.service.room import Rooms


@pytest.fixture(autouse=True)
def rooms(monkeypatch):
    fresh = Rooms()
    monkeypatch.setattr(room_module, "ROOMS", fresh)
    monkeypatch.setattr(rp, "ROOMS", fresh)
    return fresh


def test_open_join_share_and_the_board():
    from unlearning.service.session import Session

    teacher = Session()
    code_html, note, _timer, _ = rp.open_room(teacher)
    code = code_html.split('data-code="')[1].split('"')[0]
    assert room_module.shown(code) in code_html and "font-size:5em" in code_html
    a = person((0.3, 0.79, 0.1), (0.9, 0.8, 0.5))
    note, _timer, _ = rp.join_room(a, code.lower(), "Ada")
    assert "You joined room" in note and "Ada" in note
    assert "is on the board" in rp.share_run(a, 1, False)
    assert "us-error" in rp.share_run(a, 7, False)  # not one of hers: one sentence
    assert "not a run number" in rp.share_run(a, "#1; drop", False)
    fig, rows, counts = rp.board_now(teacher)
    assert [r[0] for r in rows] == ["Ada", "", ""] and rows[1][1] == "(before)"
    assert "1 run shared by 1 person" in counts
    assert fig.data[-1].text == ("Ada",) and fig.data[-1].hovertext == ("Ada: IHL + FILA",)
    unchanged = rp.refresh(teacher, rp.signature(rp.ROOMS.board(teacher)))
    assert unchanged[0] == gr.skip() and unchanged[1] == gr.skip()  # nothing re-sent to a projector


def test_labels_are_escaped_for_plotly():
    a = person((0.3, 0.79, 0.1))
    from unlearning.service.session import Session

    teacher = Session()
    rp.open_room(teacher)
    code = rp.ROOMS.board(teacher).code
    rp.join_room(a, code, '<a href="javascript:alert(1)">x</a>')
    rp.share_run(a, 1, False)
    fig, _, _ = rp.board_now(teacher)
    assert "<a" not in fig.data[-1].text[0] and "&lt;a" in fig.data[-1].text[0]


def test_a_wrong_code_is_one_sentence():
    from unlearning.service.session import Session

    note, _timer, _ = rp.join_room(Session(), "nope", "Bo")
    assert "us-error" in note and "No room has the code &#x27;nope&#x27;" in note


def test_the_summary_file_holds_the_board_and_the_lesson(tmp_path):
    from unlearning.service.session import Session

    teacher = Session()
    rp.open_room(teacher)
    log = LessonLog()
    log.readings["ga"] = Reading("Gradient ascent took forget ROUGE-L from 1.00 to 0.31", True)
    path = rp.download(teacher, log)
    text = Path(path).read_text(encoding="utf-8")
    assert "<h1>Room" in text and "from 1.00 to 0.31" in text and "2 · Gradient ascent" in text
    teacher.close()


def test_share_choices_mark_own_data():
    a = person((0.3, 0.79, 0.1), preset=False)
    assert rp.share_choices(a) == [("Share #1 IHL + FILA (LoRA training) (your own data)", 1)]


def test_runs_at_one_spot_are_one_label_on_a_projected_board():
    from unlearning.service.session import Session

    teacher = Session()
    rp.open_room(teacher)
    code = rp.ROOMS.board(teacher).code
    for i, numbers in enumerate([(0.9, 0.8, 0.5)] * 3 + [(0.3, 0.79, 0.1)]):
        p = person(numbers)
        rp.join_room(p, code, f"P{i}")
        rp.share_run(p, 1, False)
    board = rp.ROOMS.board(teacher)
    assert rp.labels(board.runs, board.references) == ["3 runs", "", "", "P3"]  # one method: names alone
    fig, _, _ = rp.board_views(board)
    assert fig.data[-1].hovertext == ("P0: IHL + FILA", "P1: IHL + FILA", "P2: IHL + FILA", "P3: IHL + FILA")


def test_near_runs_share_a_label_and_labels_keep_clear_of_each_other():
    from unlearning.service.session import Session

    teacher = Session()
    rp.open_room(teacher)
    code = rp.ROOMS.board(teacher).code
    for i, numbers in enumerate([(0.3, 0.79, 0.10), (0.31, 0.8, 0.12), (0.9, 0.8, 0.5), (0.2, 0.5, 0.3)]):
        p = person(numbers)
        rp.join_room(p, code, f"Person number {i}")
        rp.share_run(p, 1, False)
    board = rp.ROOMS.board(teacher)
    assert rp.labels(board.runs, board.references) == ["2 runs", "", "Person number 2", "Person number 3"]
    # two long labels under points side by side: the second goes elsewhere
    assert rp.place([0.1, 0.12], [0.5, 0.5], ["A long name here", "Another long name"], (0, 1), (0, 1)) == \
        ["bottom center", "top center"]
    fig, _, counts = rp.board_views(board)
    assert fig.layout.font.size == rp.FONT_PX + 2 and fig.data[-1].marker.size == 18
    assert "4 runs shared by" in counts


def test_the_board_ticks_where_it_is_looked_at():
    """A participant's page ticks only on the Room tab; the instructor's (projected) on every tab;
    a page in no room never; and a tick answered late does not restart a stopped timer."""
    from unlearning.service.session import Session

    def chosen(session, label):
        return rp.on_tab(session, gr.SelectData(None, {"value": label, "index": 0})).active

    teacher, a, outsider = Session(), Session(), Session()
    code_html, *_ = rp.open_room(teacher)
    rp.join_room(a, code_html.split('data-code="')[1].split('"')[0], "Ada")
    assert chosen(a, "Run & chat") is False and chosen(a, rp.TAB_LABEL) is True
    assert chosen(teacher, "Run & chat") is True and chosen(teacher, rp.TAB_LABEL) is True
    assert chosen(outsider, rp.TAB_LABEL) is False
    assert rp.shown_elsewhere(a).active is False and rp.shown_elsewhere(teacher).active is True  # a try's jump to Run
    first = rp.refresh(a, ())
    assert first[3] == gr.skip() and "1 joined" in first[2]  # the board drawn, the timer left alone
    assert rp.refresh(a, first[4])[3] == gr.skip()
    assert rp.refresh(outsider, ())[3].active is False  # in no room: the timer stops

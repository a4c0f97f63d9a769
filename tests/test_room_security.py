"""Red-team rows for the room's board (tests/security_cases.py): code guessing, sharing someone
else's run, and HTML in names, through the Room tab's handlers (the page's own code path)."""

from __future__ import annotations

import re

import gradio as gr
import pytest

from components import room_panel as rp
from tests.security_cases import ROOM_CODES, ROOM_NAMES, ROOM_RUN_NUMBERS
from tests.test_room import person
from unlearning import limits
from unlearning.service.room import Rooms
from unlearning.service.room_page import summary_html
from unlearning.service.session import Session

TAG = re.compile(r"<\s*(script|img|a|b|br)\b", re.IGNORECASE)


@pytest.fixture(autouse=True)
def rooms(monkeypatch):
    fresh = Rooms()
    monkeypatch.setattr(rp, "ROOMS", fresh)
    return fresh


def open_room(rooms) -> tuple[Session, str]:
    teacher = Session()
    rp.open_room(teacher)
    return teacher, rooms.board(teacher).code


@pytest.mark.parametrize("code", ROOM_CODES)
def test_a_hostile_code_is_one_sentence(rooms, code):
    open_room(rooms)
    note, timer, _ = rp.join_room(Session(), code, "x")
    assert 'class="us-error"' in note and not timer.active
    assert not TAG.search(note.replace('<div class="us-error" role="alert">', "").replace("</div>", ""))
    assert len(note) < 400  # one sentence, not the 10,000 characters sent


def test_guessing_stops_after_the_limit_even_for_the_right_code(rooms):
    _, code = open_room(rooms)
    guesser = Session()
    for i in range(limits.ROOM_CODE_TRIES):
        assert "No room has the code" in rp.join_room(guesser, f"AAAA{i:02d}", "g")[0]
    assert "wrong codes in a minute" in rp.join_room(guesser, code, "g")[0]


@pytest.mark.parametrize("number", ROOM_RUN_NUMBERS)
def test_no_one_shares_a_run_that_is_not_theirs(rooms, number):
    teacher, code = open_room(rooms)
    owner, thief = person((0.3, 0.8, 0.1), (0.4, 0.7, 0.2)), person((0.5, 0.6, 0.3))
    rp.join_room(owner, code, "owner")
    rp.join_room(thief, code, "thief")
    note = rp.share_run(thief, number, True)
    if number != 1:
        assert 'class="us-error"' in note, (number, note)
    assert all(r.person != "owner" for r in rooms.board(teacher).runs)  # the owner's runs stay the owner's


@pytest.mark.parametrize("name", ROOM_NAMES)
def test_a_name_is_text_on_every_view_of_the_board(rooms, name):
    teacher, code = open_room(rooms)
    a = person((0.3, 0.8, 0.1))
    joined = rp.join_room(a, code, name)[0]
    rp.share_run(a, 1, False)
    fig, rows, counts = rp.board_now(teacher)
    label = fig.data[-1].text[0]
    page = summary_html(rooms.board(teacher))
    for shown in (joined.replace('<div class="us-note" role="status">', "").replace("</div>", ""), label,
                  page.split("<h2>The board</h2>")[1]):
        assert "<script" not in shown and "<img" not in shown and "<a " not in shown and "<b>" not in shown, shown
    assert rows[0][0] == rooms.board(teacher).runs[0].person  # a table cell: plain text (escaped by the Dataframe)
    assert len(rows[0][0]) <= 24 and "\u202e" not in rows[0][0] and "\u200b" not in rows[0][0]
    assert counts == gr.skip() or "<script" not in counts

"""The workshop room: codes, joining, sharing, the board and the printable summary, on hand-made
sessions and kept runs (no model)."""

from __future__ import annotations

import re

import pytest

from unlearning import limits
from unlearning.errors import UserError
from unlearning.service.room import ALPHABET, CODE_LENGTH, Rooms, clean_name, normalise, shown
from unlearning.service.room_page import summary_html
from unlearning.service.session import KeptRun, Session


class Stub:
    method = "ihl-fila"

    def save(self, folder):
        return folder

    def release(self) -> None:
        pass


def report(forget: float, utility: float, distance: float, repetition: float = 0.0) -> dict:
    metrics = {"forget.rougeL": forget, "model_utility": utility, "oracle_distance": distance,
               "forget.repetition": repetition}
    return {"method": "ihl-fila", "steps": 40, "settings": {"steps": 40, "lr": 2e-4, "rank": 8, "forget_path": "/tmp/x"},
            "before": {"forget.rougeL": 1.0, "model_utility": 0.8, "oracle_distance": 0.56},
            "after": metrics, "oracle": {"forget.rougeL": 0.2, "model_utility": 0.8, "oracle_distance": 0.0}}


def person(*runs: tuple[float, float, float], preset: bool = True) -> Session:
    s = Session()
    for n, (f, u, d) in enumerate(runs, 1):
        s.kept.append(KeptRun(n, "ihl-fila", Stub(), report(f, u, d), data="forget.jsonl: 40 QA", preset=preset))
    return s


@pytest.fixture
def rooms():
    return Rooms()


def test_codes_are_short_unambiguous_and_typed_loosely(rooms):
    teacher = Session()  # held, as the app's gr.State holds it: a room ends with its instructor's session
    room = rooms.open(teacher)
    assert len(room.code) == CODE_LENGTH and set(room.code) <= set(ALPHABET)
    assert not set("0O1IL5S8B") & set(ALPHABET)
    assert normalise(f" {shown(room.code).lower()} ") == room.code
    a = Session()
    assert rooms.join(shown(room.code).lower(), a, "Ada").code == room.code


def test_an_instructor_runs_one_room(rooms):
    teacher = Session()
    assert rooms.open(teacher) is rooms.open(teacher)


def test_the_board_shows_exactly_the_shared_runs(rooms):
    teacher = Session()
    room = rooms.open(teacher)
    people = [person((0.3, 0.79, 0.1), (0.9, 0.8, 0.5)) for _ in range(4)]
    for i, p in enumerate(people):
        rooms.join(room.code, p, f"P{i}")
    for p in people[:3]:
        rooms.share(p, p.kept[0])
    board = rooms.board(teacher)
    assert board.people == 4 and len(board.runs) == 3 and [r.person for r in board.runs] == ["P0", "P1", "P2"]
    assert board.counts == (("ihl-fila", 3),)
    assert board.runs[0].row.distance == 0.1 and board.runs[0].settings == {"steps": 40, "lr": 2e-4, "rank": 8}
    assert [ref.name for ref in board.references] == ["before", "oracle"]
    with pytest.raises(UserError, match="already on the board"):
        rooms.share(people[0], people[0].kept[0])
    rooms.unshare(people[0], 1)
    assert len(rooms.board(teacher).runs) == 2


def test_a_run_is_shared_only_by_its_owner(rooms):
    teacher = Session()
    room = rooms.open(teacher)
    a, b = person((0.3, 0.8, 0.1)), person((0.3, 0.8, 0.1))
    rooms.join(room.code, a, "A")
    rooms.join(room.code, b, "B")
    with pytest.raises(UserError, match="not one of yours"):
        rooms.share(a, b.kept[0])


def test_own_data_is_shared_only_when_its_owner_says_so(rooms):
    teacher = Session()
    room = rooms.open(teacher)
    a = person((0.3, 0.8, 0.1), preset=False)
    rooms.join(room.code, a, "A")
    with pytest.raises(UserError, match="your own data"):
        rooms.share(a, a.kept[0])
    shared = rooms.share(a, a.kept[0], own_data=True)
    assert shared.own_data
    assert not rooms.board(a).references  # a run on own data sets no kit references


def test_rooms_are_separate(rooms):
    t1, t2 = Session(), Session()
    r1, r2 = rooms.open(t1), rooms.open(t2)
    a, b = person((0.3, 0.8, 0.1)), person((0.5, 0.7, 0.2))
    rooms.join(r1.code, a, "A")
    rooms.join(r2.code, b, "B")
    rooms.share(a, a.kept[0])
    rooms.share(b, b.kept[0])
    assert [r.person for r in rooms.board(t1).runs] == ["A"]
    assert [r.person for r in rooms.board(t2).runs] == ["B"]
    assert r1.code != r2.code


def test_wrong_full_and_closed_codes_get_one_sentence(rooms, monkeypatch):
    teacher = Session()
    room = rooms.open(teacher)
    with pytest.raises(UserError, match=r"^No room has the code 'ZZZZZZ'; check it on the instructor's screen\.$"):
        rooms.join("ZZZZZZ", Session())
    monkeypatch.setattr(limits, "ROOM_PEOPLE", 2)
    people = [Session(), Session()]
    for p in people:
        rooms.join(room.code, p)
    with pytest.raises(UserError, match=r"is full \(2 people\)"):
        rooms.join(room.code, Session())
    rooms.close(teacher)
    with pytest.raises(UserError, match="has closed"):
        rooms.join(room.code, Session())


def test_guessing_codes_is_refused(rooms):
    teacher = Session()
    rooms.open(teacher)
    guesser = Session()
    for _ in range(limits.ROOM_CODE_TRIES):
        with pytest.raises(UserError, match="No room"):
            rooms.join("AAAAAA", guesser)
    with pytest.raises(UserError, match="wrong codes in a minute"):
        rooms.join("AAAAAA", guesser)


def test_a_room_ends_with_its_instructors_session(rooms):
    teacher, a = Session(), person((0.3, 0.8, 0.1))
    room = rooms.open(teacher)
    rooms.join(room.code, a, "A")
    rooms.share(a, a.kept[0])
    teacher.close()
    with pytest.raises(UserError, match="in no room"):
        rooms.board(a)
    assert room.closed and not room.runs


def test_a_room_ends_after_its_hours(rooms, monkeypatch):
    teacher = Session()
    room = rooms.open(teacher)
    room.opened -= limits.ROOM_HOURS * 3600 + 1
    with pytest.raises(UserError, match="in no room"):
        rooms.board(teacher)


def test_names_are_one_printable_line():
    assert clean_name("  Ada\n\tLovelace\x00 ") == "Ada Lovelace"
    assert len(clean_name("x" * 100)) == 24


def test_the_summary_escapes_labels_and_holds_no_data(rooms):
    teacher = Session()
    room = rooms.open(teacher)
    a = person((0.3, 0.8, 0.1))
    rooms.join(room.code, a, "<script>alert(1)</script>")
    rooms.share(a, a.kept[0])
    page = summary_html(rooms.board(teacher))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "/tmp/x" not in page and "forget_path" not in page  # settings are the listed few, never a path
    assert page.count("<circle") == 1 and "oracle" in page and shown(room.code) in page
    assert re.search(r"Runs per method: ihl-fila 1\.", page)

"""A workshop's room: an instructor opens one, people join it with its code and choose, run by
run, what to share; the board the instructor projects shows every shared run. Torch-free.

    ROOMS.open(instructor)                    # → Room, with a short code to project ("K7QM-2P")
    ROOMS.join("k7qm2p", session, "Ada")      # one sentence for a wrong, full or closed code
    ROOMS.share(session, kept_run, own_data=False)
    ROOMS.board(session)                      # → Board: points, table rows, counts per method

What a room holds of a run is its label, method, settings and metrics (a `SharedRun`): never its
data, its chat or its artifact. A run on uploaded data is shared only when its owner says so and
is marked as such. Rooms live in this process only: a room ends when its instructor's session
closes, when the instructor closes it, or after limits.ROOM_HOURS.
"""

from __future__ import annotations

import secrets
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .. import limits
from ..errors import UserError
from .compare import CompareRow, Reference, compare_rows, references
from .session import KeptRun, Session

ALPHABET = "ACDEFGHJKMNPQRTUVWXY234679"  # no look-alikes (0/O, 1/I/L, 5/S, 8/B) for a code read off a wall
CODE_LENGTH = 6
SHARED_SETTINGS = ("steps", "lr", "rank", "batch_size", "seed", "stop", "beta", "init")  # what a board row shows


def normalise(code: str) -> str:
    """What a person types ("k7qm 2p", "K7QM-2P") as the code it means."""
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def shown(code: str) -> str:
    """A code as it is projected: two halves, easy to read out."""
    return f"{code[:3]}-{code[3:]}"


@dataclass(frozen=True)
class SharedRun:
    """One run as the room sees it: numbers and settings only."""

    person: str  # the name its owner joined with
    row: CompareRow  # label, method, distance, forget, utility, … as Compare shows them
    settings: dict[str, Any]
    own_data: bool  # ran on data its owner uploaded (shared only because the owner said so)
    owner: str = field(repr=False, default="")  # session id; never shown
    number: int = 0  # the run's number in its owner's session
    t: float = field(default_factory=time.time)


@dataclass
class Room:
    code: str
    instructor: str  # session id
    opened: float = field(default_factory=time.monotonic)
    people: dict[str, str] = field(default_factory=dict)  # session id → name
    runs: list[SharedRun] = field(default_factory=list)
    kit: list[Reference] = field(default_factory=list)  # `before` and `oracle` of the workshop kit, from a shared run
    closed: bool = False

    @property
    def expired(self) -> bool:
        return time.monotonic() - self.opened > limits.ROOM_HOURS * 3600


@dataclass(frozen=True)
class Board:
    """What the instructor projects, as plain values (components/ draws it)."""

    code: str
    people: int
    runs: tuple[SharedRun, ...]
    references: tuple[Reference, ...]
    counts: tuple[tuple[str, int], ...]  # (method, shared runs), most first


class Rooms:
    """Every open room of this process, by code; one lock for all (rooms change a few times a minute)."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}
        self._member: dict[str, str] = {}  # session id → code of the room it is in (instructors included)
        self._misses: dict[str, list[float]] = {}  # session id → times of its wrong codes
        self._sessions: dict[str, weakref.ref[Session]] = {}  # so a closed session's room ends at the next look
        self._lock = threading.Lock()

    # -------------------------------------------------------------- rooms
    def open(self, instructor: Session) -> Room:
        """A new room run by `instructor` (the same one again if it already runs one)."""
        with self._lock:
            self._sweep()
            mine = self._room_of(instructor.id)
            if mine is not None and mine.instructor == instructor.id:
                return mine
            if sum(not r.closed for r in self._rooms.values()) >= limits.MAX_ROOMS:
                raise UserError(f"This app already runs {limits.MAX_ROOMS} rooms, the most it may; close one first.")
            if mine is not None:
                self._leave(instructor.id)
            code = self._new_code()
            room = self._rooms[code] = Room(code, instructor.id)
            self._enter(instructor, code)
            return room

    def join(self, code: str, person: Session, name: str = "") -> Room:
        """Join the room with `code`; one sentence when the code is wrong, the room full or closed."""
        typed = normalise(code)
        with self._lock:
            self._sweep()
            self._check_guesses(person.id)
            room = self._rooms.get(typed)
            if room is None:
                self._misses.setdefault(person.id, []).append(time.monotonic())
                raise UserError(f"No room has the code {_typed(code)!r}; check it on the instructor's screen.")
            if room.closed:
                raise UserError(f"Room {shown(room.code)} has closed.")
            if person.id not in room.people and len(room.people) >= limits.ROOM_PEOPLE:
                raise UserError(f"Room {shown(room.code)} is full ({limits.ROOM_PEOPLE} people).")
            if self._member.get(person.id) not in (None, room.code):
                self._leave(person.id)
            room.people[person.id] = clean_name(name) or f"guest {len(room.people) + 1}"
            self._enter(person, room.code)
            return room

    def close(self, instructor: Session) -> None:
        """The instructor ends the room: its board and shared runs are gone."""
        with self._lock:
            room = self._room_of(instructor.id)
            if room is None or room.instructor != instructor.id:
                raise UserError("You run no room to close.")
            self._end(room)

    def ended(self, session_id: str) -> None:
        """A session closed: an instructor's room ends with it; a person just leaves."""
        with self._lock:
            self._leave(session_id)

    # -------------------------------------------------------------- runs
    def share(self, person: Session, run: KeptRun, own_data: bool = False) -> SharedRun:
        """Put one of `person`'s own kept runs on its room's board. A run on uploaded data needs
        `own_data=True` (its owner's say-so) and is marked as such."""
        if not any(k is run for k in person.kept):
            raise UserError(f"Run #{run.number} is not one of yours.")
        uploaded = not kit_run(run)
        if uploaded and not own_data:
            raise UserError(f"Run #{run.number} ran on your own data; tick \"share a run on my own data\" to share it.")
        row = compare_rows([run])[0]
        settings = dict((run.report or {}).get("settings") or {})
        settings = {k: settings[k] for k in SHARED_SETTINGS if k in settings}
        with self._lock:
            room = self._room_of(person.id)
            if room is None:
                raise UserError("Join a room first (its code is on the instructor's screen).")
            if any(r.owner == person.id and r.number == run.number for r in room.runs):
                raise UserError(f"Run #{run.number} is already on the board.")
            if len(room.runs) >= limits.ROOM_RUNS:
                raise UserError(f"Room {shown(room.code)}'s board holds {limits.ROOM_RUNS} runs, the most it may.")
            name = "instructor" if person.id == room.instructor else room.people.get(person.id, "")
            shared = SharedRun(name, row, settings, uploaded, owner=person.id, number=run.number)
            room.runs.append(shared)
            if not uploaded and not room.kit:
                room.kit = references([run])
            return shared

    def unshare(self, person: Session, number: int) -> None:
        with self._lock:
            room = self._room_of(person.id)
            if room is not None:
                room.runs = [r for r in room.runs if not (r.owner == person.id and r.number == number)]

    # -------------------------------------------------------------- reading
    def room_of(self, session: Session) -> Room | None:
        with self._lock:
            self._sweep()
            return self._room_of(session.id)

    def board(self, session: Session) -> Board:
        """The board of the room `session` is in (its instructor's or a member's view)."""
        with self._lock:
            self._sweep()
            room = self._room_of(session.id)
            if room is None:
                raise UserError("You are in no room: open one, or join one with its code.")
            runs = tuple(room.runs)
            counts = Counter(r.row.method for r in runs)
            return Board(room.code, len(room.people), runs, tuple(room.kit),
                         tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))

    # -------------------------------------------------------------- inside the lock
    def _room_of(self, session_id: str) -> Room | None:
        room = self._rooms.get(self._member.get(session_id, ""))
        return room if room is not None and not room.closed else None

    def _enter(self, session: Session, code: str) -> None:
        self._member[session.id] = code
        self._sessions[session.id] = weakref.ref(session)

    def _leave(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        room = self._rooms.get(self._member.pop(session_id, ""))
        if room is None:
            return
        if room.instructor == session_id:
            self._end(room)
        else:
            room.people.pop(session_id, None)

    def _end(self, room: Room) -> None:
        room.closed, room.runs, room.people = True, [], {}
        for sid in [s for s, c in self._member.items() if c == room.code]:
            del self._member[sid]

    def _sweep(self) -> None:
        """Closed sessions leave (an instructor's room ends with its session); rooms past
        limits.ROOM_HOURS end; ended rooms are forgotten after as long again (so a late joiner
        still reads "has closed" for a while)."""
        for sid, ref in list(self._sessions.items()):
            session = ref()
            if session is None or session.closed:
                self._leave(sid)
        for code, room in list(self._rooms.items()):
            if room.expired and not room.closed:
                self._end(room)
            if time.monotonic() - room.opened > 2 * limits.ROOM_HOURS * 3600:
                del self._rooms[code]

    def _new_code(self) -> str:
        while True:
            code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
            if code not in self._rooms:
                return code

    def _check_guesses(self, session_id: str) -> None:
        """Refuse a session that keeps trying wrong codes (a guess has 1 in 26⁶ ≈ 3·10⁸ odds)."""
        now = time.monotonic()
        recent = [t for t in self._misses.get(session_id, []) if now - t < 60]
        self._misses[session_id] = recent
        if len(recent) >= limits.ROOM_CODE_TRIES:
            raise UserError(f"{limits.ROOM_CODE_TRIES} wrong codes in a minute; wait a minute and check the code "
                            "on the instructor's screen.")


def clean_name(name: str) -> str:
    """A display name: printable, one line, at most 24 characters (the board escapes it too)."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in (name or "")).split())
    return text[:24]


def _typed(code: str) -> str:
    """A wrong code as the error repeats it: what was typed, cut short (a client may send pages)."""
    text = (code or "").strip()
    return text if len(text) <= 16 else text[:16] + "…"


def kit_run(run: KeptRun) -> bool:
    """Whether a kept run ran on the workshop kit's own data."""
    return run.preset


ROOMS = Rooms()

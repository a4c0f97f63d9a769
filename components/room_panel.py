"""Room — a workshop's shared board. The instructor opens a room (a short code to project) and
sees every run people share, live: the Compare picture with before and the oracle, a table and
the count per method; after the workshop, a printable summary. People join with the code and
choose, run by run, what to share (numbers only, never data or chat: service/room.py)."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass

import gradio as gr
from gradio.utils import get_upload_folder

from unlearning.service import Session, UserError, new_folder
from unlearning.service.catalog import method_label
from unlearning.service.lesson import LessonLog
from unlearning.service.room import ROOMS, Board, SharedRun, shown
from unlearning.service.room_page import summary_html

from . import compare_panel
from .common import OnDelete, error_box

REFRESH_SECONDS = 2.0  # the board's refresh while the page is in a room and shows it (on_tab)
TAB_LABEL = "Room"  # the tab this panel sits in (app.py)
BOARD_HEIGHT = 560  # the picture, projected: most of a 1080 px screen beside the code
HEADERS = ["who", "run", "data", "settings", "distance to the oracle (↓)", "what the probes show",
           "forget ROUGE-L (↓ to the oracle's)", "model utility (≈ before)"]
COLUMN_WIDTHS: list[str | int] = ["12%", "17%", "9%", "18%", "10%", "14%", "10%", "10%"]
LABELLED = 8  # spots on the board labelled with their person's name; past that, a projected picture is a smear
NEAR = (0.06, 0.05)  # runs this near (shares of the axes' spans) share one label: their names would overlap
FONT_PX = 16  # the board's point labels; its axes and legend two larger (read from the back of a room)
PLOT_PX = (1150, 470)  # the picture's axes on a 1920 px projector, for placing labels (a guess: plotly sizes it)
HINT = ("The gold star is the oracle, a model that never saw the forget set; the grey square is the model before "
        "unlearning; each shared run is a dot, named beside it, or counted where several sit together (hover a dot "
        "for who; the table lists everyone). Left–right is how far a model's answers are from the oracle's over every "
        "wording (0 = like the oracle); up–down is what it kept. The best runs sit near the star and no lower than the "
        "square; red marks a run the probes show as unchanged, collapsed or leaking.")
CODE_STYLE = ("font-size:5em;font-weight:800;letter-spacing:0.12em;font-family:ui-monospace,monospace;"
              "line-height:1.1;color:#1e1b4b")


# ------------------------------------------------------------------ pure helpers
def code_html(code: str | None) -> str:
    """The room's code as the instructor projects it (data-code: the code, for scripts)."""
    if code is None:
        return ""
    return (f'<div class="us-room" data-code="{html.escape(code)}"><div style="color:#4b5563">Join at this page, tab '
            f'<b>Room</b>, with the code</div><div class="us-room-code" style="{CODE_STYLE}">{html.escape(shown(code))}'
            "</div></div>")


def note_html(text: str) -> str:
    return f'<div class="us-note" role="status">{html.escape(text)}</div>'


def point_label(run: SharedRun) -> str:
    """A point's label on the board: who and which method (plotly reads a few tags in text, so escaped)."""
    method = method_label(run.row.method).split(" (")[0]
    return html.escape(f"{run.person}: {method}" + (" (own data)" if run.own_data else ""))


def board_rows(board: Board) -> list[list]:
    """One row per shared run, then before and the oracle: numbers stay numbers (rounded)."""
    r3 = compare_panel._round
    rows: list[list] = [[run.person, run.row.run, "own data" if run.own_data else "workshop kit",
                         ", ".join(f"{k} {v}" for k, v in run.settings.items()), r3(run.row.distance),
                         run.row.verdict or ("like the oracle" if run.row.distance is not None else ""),
                         r3(run.row.forget), r3(run.row.utility)] for run in board.runs]
    rows += [["", f"({ref.name})", "", "", r3(ref.distance), "", r3(ref.forget), r3(ref.utility)] for ref in board.references]
    return rows


def counts_html(board: Board) -> str:
    if not board.counts:
        return note_html(f"{board.people} joined; no run shared yet.")
    parts = " · ".join(f"<b>{html.escape(method_label(m).split(' (')[0])}</b> {n}" for m, n in board.counts)
    runs, people = len(board.runs), f"{board.people} {'person' if board.people == 1 else 'people'}"
    return (f'<div class="us-room-counts" style="font-size:1.3em">{runs} run{"" if runs == 1 else "s"} shared by '
            f"{people} — {parts}</div>")


def signature(board: Board) -> tuple:
    """What the board shows, cheaply: a refresh sends the picture again only when it changed."""
    return board.code, board.people, tuple((r.owner, r.number) for r in board.runs), len(board.references)


def short_label(run: SharedRun, methods: int) -> str:
    """A point's text on the projected picture: the person's name, the method only where the board
    mixes methods (the full label is on hover and in the table)."""
    if methods > 1:
        return point_label(run)
    return html.escape(run.person + (" (own data)" if run.own_data else ""))


def labels(runs: tuple[SharedRun, ...], refs: tuple = ()) -> list[str]:
    """Each point's label on a projected board: runs at one spot, or so near that their names would
    overlap (NEAR: shares of the picture's width and height), are one label, "12 runs", not a dozen
    names written over each other; with more than LABELLED groups only groups of several runs are
    labelled (the names are in the table and on hover)."""
    groups = _groups(runs, refs)
    methods = len({r.row.method for r in runs})
    out = [""] * len(runs)
    for members in groups:
        if len(members) > 1:
            out[members[0]] = f"{len(members)} runs"
        elif len(groups) <= LABELLED:
            out[members[0]] = short_label(runs[members[0]], methods)
    return out


def _groups(runs: tuple[SharedRun, ...], refs: tuple) -> list[list[int]]:
    """Runs grouped greedily by nearness on the picture (its axes' spans, as compare_panel draws them)."""
    field, _ = compare_panel.x_axis([r.row for r in runs], list(refs))
    xs = [getattr(r.row, field) for r in runs]
    ys = [r.row.utility for r in runs]
    x_span = max([x for x in xs if x is not None] + [getattr(ref, field) or 0.0 for ref in refs] + [1e-9])
    y_span = max([1.0] + [y for y in ys if y is not None])
    groups: list[list[int]] = []
    centres: list[tuple[float, float] | None] = []
    for i, (x, y) in enumerate(zip(xs, ys)):
        at = None if x is None or y is None else (x / x_span, y / y_span)
        near = next((g for g, c in enumerate(centres) if at is not None and c is not None
                     and abs(c[0] - at[0]) <= NEAR[0] and abs(c[1] - at[1]) <= NEAR[1]), None)
        if near is None:
            groups.append([i])
            centres.append(at)
        else:
            groups[near].append(i)
    return groups


Box = tuple[float, float, float, float]


def place(xs: list[float], ys: list[float], texts: list[str], x_range: tuple[float, float],
          y_range: tuple[float, float]) -> list[str]:
    """A textposition for each labelled point: the first of below, above, right and left whose box
    (the text's size guessed from FONT_PX on a PLOT_PX picture) stays inside the axes and overlaps
    no marker and no label placed before it."""
    (x0, x1), (y0, y1) = x_range, y_range
    px = [((x - x0) / ((x1 - x0) or 1) * PLOT_PX[0], (1 - (y - y0) / ((y1 - y0) or 1)) * PLOT_PX[1]) for x, y in zip(xs, ys)]
    boxes: list[Box] = [(cx - 9, cy - 9, cx + 9, cy + 9) for cx, cy in px]  # the markers
    out = ["bottom center"] * len(texts)
    for i in sorted(range(len(texts)), key=lambda i: px[i][0]):
        if not texts[i]:
            continue
        w, h, (cx, cy) = 0.56 * FONT_PX * len(html.unescape(texts[i])), 1.25 * FONT_PX, px[i]
        options = {"bottom center": (cx - w / 2, cy + 11), "top center": (cx - w / 2, cy - 11 - h),
                   "middle right": (cx + 12, cy - h / 2), "middle left": (cx - 12 - w, cy - h / 2)}
        for position, (left, top) in options.items():
            box = (left, top, left + w, top + h)
            inside = box[0] >= 0 and box[2] <= PLOT_PX[0] and box[1] >= 0 and box[3] <= PLOT_PX[1]
            if inside and not any(_overlap(box, b) for j, b in enumerate(boxes) if j != i):
                out[i] = position
                boxes.append(box)
                break
    return out


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def board_views(board: Board):
    """(picture, table, counts) of a board: the Compare picture with type sized for a projector and
    its labels placed clear of each other."""
    fig = compare_panel.figure([r.row for r in board.runs], list(board.references),
                               labels=labels(board.runs, board.references), height=BOARD_HEIGHT,
                               hover=[point_label(r) for r in board.runs])
    if fig is None:
        return None, board_rows(board), counts_html(board)
    fig.update_layout(font={"size": FONT_PX + 2})
    runs = next((t for t in fig.data if t.name == "runs"), None)
    if runs is not None and runs.text:
        runs.marker.size, runs.textfont = 18, {"size": FONT_PX}
        runs.textposition = place(list(runs.x), list(runs.y), list(runs.text), tuple(fig.layout.xaxis.range or (0, 1)),
                                  tuple(fig.layout.yaxis.range or (0, 1)))
    return fig, board_rows(board), counts_html(board)


def run_number(value) -> int:
    """A run's number as the menu or an API client sends it (3, 3.0, "3"); anything else is one sentence."""
    if value in (None, ""):
        raise UserError("Choose one of your runs first.")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise UserError(f"{str(value)[:20]!r} is not a run number.")


def share_choices(session: Session) -> list[tuple[str, int]]:
    return [(f"Share {run.label}" + ("" if run.preset else " (your own data)"), run.number) for run in session.kept]


# ------------------------------------------------------------------ handlers
def open_room(session: Session):
    """Open (or show again) the session's room; the code to project, a note, the timer."""
    try:
        room = ROOMS.open(session)
    except UserError as e:
        return "", error_box(str(e)), gr.Timer(active=False), ()
    return code_html(room.code), note_html("Room open: project this tab."), gr.Timer(active=True), ()


def close_room(session: Session):
    try:
        ROOMS.close(session)
    except UserError as e:
        return gr.skip(), error_box(str(e)), gr.Timer(active=False)
    return "", note_html("The room is closed: its board and shared runs are gone."), gr.Timer(active=False)


def join_room(session: Session, code: str, name: str):
    try:
        room = ROOMS.join(code or "", session, name or "")
    except UserError as e:
        return error_box(str(e)), gr.Timer(active=False), ()
    return (note_html(f"You joined room {shown(room.code)} as {room.people.get(session.id, '')}. Share a run below."),
            gr.Timer(active=True), ())


def share_run(session: Session, number, own_data: bool):
    """Put one of the session's own kept runs on the board (by its number in this session)."""
    try:
        shared = ROOMS.share(session, session.kept_run(run_number(number)), own_data=bool(own_data))
    except UserError as e:
        return error_box(str(e))
    return note_html(f"{shared.row.run} is on the board.")


def unshare_run(session: Session, number):
    try:
        n = run_number(number)
    except UserError as e:
        return error_box(str(e))
    ROOMS.unshare(session, n)
    return note_html(f"Run #{n} is off the board.")


def refresh(session: Session, last: tuple):
    """Timer tick and /board: the picture, table and counts when they changed; the timer stops
    when the page is in no room any more."""
    try:
        board = ROOMS.board(session)
    except UserError as e:
        return gr.skip(), gr.skip(), error_box(str(e)), gr.Timer(active=False), ()
    sig = signature(board)
    if sig == last:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), last
    fig, rows, counts = board_views(board)
    # the timer is left as it is: a tick answered after the page left the Room tab must not restart it
    return fig if fig is not None else gr.skip(), rows, counts, gr.skip(), sig


def on_tab(session: Session, evt: gr.SelectData):
    """Another tab chosen: the board ticks on a participant's page only while it shows the Room
    tab (a room of thirty pages ticking for a board nobody looks at costs the chat its latency);
    the instructor's page is projected, and ticks whichever tab it shows."""
    return _ticking(session, evt.value == TAB_LABEL)


def shown_elsewhere(session: Session):
    """The page was sent to another tab (a one-click try shows Run & chat): as on_tab."""
    return _ticking(session, False)


def _ticking(session: Session, on_room_tab: bool):
    room = ROOMS.room_of(session)
    if room is None:
        return gr.Timer(active=False)
    return gr.Timer(active=on_room_tab or room.instructor == session.id)


def board_now(session: Session):
    """/board for scripts: the picture, table and counts, always."""
    try:
        board = ROOMS.board(session)
    except UserError as e:
        return None, [], error_box(str(e))
    return board_views(board)


def download(session: Session, log: LessonLog | None = None):
    """The room's board and this page's lesson readings as one HTML page (a file the session deletes when it closes)."""
    try:
        board = ROOMS.board(session)
    except UserError as e:
        gr.Warning(str(e))
        return None
    folder = session.own(new_folder(get_upload_folder(), "export"))
    path = folder / f"room-{board.code}-{time.strftime('%Y%m%d-%H%M')}.html"
    path.write_text(summary_html(board, log.ordered() if log is not None else []), encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------ widgets
@dataclass(frozen=True)
class RoomPanel:
    timer: gr.Timer
    plot: gr.Plot
    table: gr.Dataframe


def render(state: gr.State, lesson_log: gr.State | None = None) -> RoomPanel:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            with gr.Accordion("Instructor: open a room", open=True, elem_id="room-instructor"):
                with gr.Row():
                    open_button = gr.Button("Open a room", variant="primary", elem_id="room-open")
                    close_button = gr.Button("Close room", variant="stop", elem_id="room-close")
                code = gr.HTML(elem_id="room-code")
                with gr.Row():
                    summary_button = gr.Button("Download summary", elem_id="room-summary")
                    summary_file = gr.File(label="Summary (.html)", interactive=False, height=90, elem_id="room-summary-file")
            with gr.Accordion("Participant: join a room", open=True, elem_id="room-participant"):
                with gr.Row():
                    typed = gr.Textbox(label="Room code", placeholder="e.g. K7Q-M2P", max_lines=1, elem_id="room-code-box")
                    name = gr.Textbox(label="Your name on the board", max_lines=1, max_length=40, elem_id="room-name")
                join_button = gr.Button("Join", variant="primary", elem_id="room-join")
                which = gr.Dropdown([], label="One of your runs", allow_custom_value=True, elem_id="room-run")
                own = gr.Checkbox(False, label="share a run on my own data", elem_id="room-own-data")
                with gr.Row():
                    share_button = gr.Button("Share run", variant="primary", elem_id="room-share")
                    unshare_button = gr.Button("Take it off the board", elem_id="room-unshare")
            note = gr.HTML(elem_id="room-note")
        with gr.Column(scale=5, min_width=600):
            counts = gr.HTML(elem_id="room-counts")
            plot = gr.Plot(show_label=False, elem_id="room-plot")
            gr.Markdown(f"**What to look for:** {HINT}", elem_classes=["us-hint"], elem_id="room-hint")
            table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, wrap=True, column_widths=COLUMN_WIDTHS,
                                 label="Every shared run (numbers and settings only)", elem_id="room-table")
    timer = gr.Timer(REFRESH_SECONDS, active=False)
    # the board this page shows: refresh sends it again only when it changed
    last = gr.State((), delete_callback=OnDelete("nothing to delete"))

    open_button.click(open_room, [state], [code, note, timer, last], api_name="open_room")
    close_button.click(close_room, [state], [code, note, timer], api_name="close_room")
    join_button.click(join_room, [state, typed, name], [note, timer, last], api_name="join_room")
    which.focus(lambda s: gr.Dropdown(choices=share_choices(s)), [state], [which], api_visibility="private")
    share_button.click(share_run, [state, which, own], [note], api_name="share_run")
    unshare_button.click(unshare_run, [state, which], [note], api_name="unshare_run")
    # callable, undocumented: benchmarks/room.py --board ticks it for each page in the room, as their timers do
    timer.tick(refresh, [state, last], [plot, table, counts, timer, last], show_progress="hidden",
               api_name="board_tick", api_visibility="undocumented")
    gr.Button(visible=False).click(board_now, [state], [plot, table, counts], api_name="board")
    summary_button.click(download, [state] + ([lesson_log] if lesson_log is not None else []), [summary_file],
                         api_name="room_summary")
    return RoomPanel(timer, plot, table)

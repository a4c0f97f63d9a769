"""Unlearning Studio — the web app. Assembles the panels of components/ and launches.

    python app.py                        # http://127.0.0.1:7860, workshop model, offline
    UNLEARNING_MODEL=owner/name python app.py   # another default model (a Space sets this)

On a Hugging Face ZeroGPU Space (SPACES_ZERO_GPU set and the `spaces` package installed) each
run and each chat reply executes inside a `spaces.GPU` call in a forked worker that streams
its progress back; everywhere else runs go to a background thread. The service layer decides
(unlearning/service/backends.py; Spaces.md §ZeroGPU); the panels have one code path for both.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
from gradio.utils import get_upload_folder

from components import (
    chat_panel,
    clients,
    compare_panel,
    data_panel,
    header,
    lesson_panel,
    method_panel,
    model_panel,
    report_panel,
    room_panel,
    run_panel,
    stress_panel,
)
from components.common import OnDelete
from unlearning.service import Backend, LocalBackend, ModelCache, Session, Sessions, Studio, choose_backend, limits, sweep_leftovers
from unlearning.service.uploads import sweeping

CSS = (Path(__file__).parent / "assets" / "studio.css").read_text(encoding="utf-8")
SESSIONS = Sessions()  # which page holds which session, and when a session really ends
TOKEN_KEY = "unlearning-session"  # the tab's sessionStorage key: survives a reload, not the tab
TABS = ("data", "run", "compare", "report", "stress", "lesson", "room")


class Kept(NamedTuple):
    """Every view of the session's kept runs: their values (`_kept`), or the components (`Page.kept`)."""

    runs: Any  # the chat's run menu
    which: Any  # Compare's run menu
    table: Any  # Compare's table
    plot: Any  # Compare's picture
    report: Any  # the report panel: table, cost, chart, warnings
    cost: Any
    chart: Any
    warnings: Any
    target: Any  # the stress test's run under test


class Attached(NamedTuple):
    """What a page's load shows of its session: the values (`_attach`), or the components
    (`Page.attached`); a tuple only so that tests may unpack it, the event pairs it by name."""

    session: Any
    token: Any
    timer: Any  # the run's timer: active while the session's run runs
    info: Any  # the data panel's
    preview: Any
    data: Any  # the header's data line
    examples: Any  # the chat's example prompts
    runs: Any
    which: Any
    table: Any
    plot: Any
    report: Any
    cost: Any
    chart: Any
    warnings: Any
    target: Any
    left: Any  # the chat's panes, as the session last showed them
    right: Any


ATTACH_VIEWS = len(Attached._fields) - 2  # what _attach shows of a session besides the session and its token


@dataclass(frozen=True)
class Page:
    """The panels of one page, for the events that reach across them."""

    state: gr.State
    token: gr.Textbox
    tabs: gr.Tabs
    head: header.Header
    data: data_panel.DataPanel
    method: method_panel.MethodPanel
    run: run_panel.RunPanel
    chat: chat_panel.ChatPanel
    compare: compare_panel.ComparePanel
    report: report_panel.ReportPanel
    lesson: lesson_panel.LessonPanel
    stress: stress_panel.StressPanel

    @property
    def kept(self) -> Kept:
        return Kept._make([self.chat.runs, self.compare.which, self.compare.table, self.compare.plot, *self.report.views,
                           self.stress.target])

    @property
    def attached(self) -> Attached:
        return Attached(self.state, self.token, self.run.timer, self.data.info, self.data.preview, self.head.data,
                        self.chat.examples, *self.kept, self.chat.left, self.chat.right)

    def show_kept(self, session: Session) -> dict:
        """{view: value} for every view of the kept runs."""
        return _shown(self.kept, _kept(session))

    def attach(self, fresh: Session, token: str, request: gr.Request) -> dict:
        """{view: value}: the page's session and what the page shows of it (nothing more for a new page)."""
        return _shown(self.attached, _attach(fresh, token, request))


def _shown(views: tuple, values: tuple) -> dict:
    """{component: value} of two records of one NamedTuple type; a skipped value is left out."""
    assert type(views) is type(values), (type(views), type(values))
    return {view: value for view, value in zip(views, values) if not isinstance(value, type(gr.skip()))}


def build(backend: Backend) -> gr.Blocks:
    """The page: a compact header (model, method, data, one-click tries), then tabs — the run's
    plot beside the chat on one screen, every kept run compared, the report, the stress test."""
    with gr.Blocks(title="Unlearning Studio") as demo:
        # One Session per page; the registry hands it back to the page reloaded after a dropped
        # connection, and closes it once no page holds it (Gradio drops a state after its TTL).
        state = gr.State(Session(), time_to_live=limits.SESSION_HOURS * 3600,
                         delete_callback=OnDelete("close the session", SESSIONS.dropped))
        token = gr.Textbox(visible=False, elem_id="session-token")
        head = header.render(backend)
        with gr.Tabs(selected="run", elem_id="tabs") as tabs:
            with gr.Tab("Data", id="data", elem_id="tab-data"):
                data = data_panel.render(state)
            with gr.Tab("Run & chat", id="run", elem_id="tab-run"), gr.Row(equal_height=False):
                with gr.Column(scale=5, min_width=420):
                    method = method_panel.render(head.method)
                    run = run_panel.render(backend, state, head.name, method)
                with gr.Column(scale=4, min_width=380):
                    chat = chat_panel.render(backend, state, head.name)
            with gr.Tab("Compare runs", id="compare", elem_id="tab-compare"):
                compare = compare_panel.render(state)
            with gr.Tab("Report", id="report", elem_id="tab-report"):
                report = report_panel.render(state)
            with gr.Tab("Stress test", id="stress", elem_id="tab-stress"):
                stress = stress_panel.render(backend, state, head.name)
            with gr.Tab("Lesson", id="lesson", elem_id="tab-lesson"):
                lesson = lesson_panel.render(backend, state, head.name)
            with gr.Tab(room_panel.TAB_LABEL, id="room", elem_id="tab-room"):
                room = room_panel.render(state, lesson.log)
        tabs.select(room_panel.on_tab, [state], [room.timer], show_progress="hidden", api_visibility="private")
        for button in head.tries.values():  # a one-click try shows Run & chat (_wire): the board stops there too
            button.click(room_panel.shown_elsewhere, [state], [room.timer], show_progress="hidden", api_visibility="private")
        # a lesson's stress test (step 5) shows in the Stress test tab too: one tick of its timer draws it
        lesson.finished.change(lambda: gr.Timer(active=True), None, [stress.timer], api_visibility="private")
        page = Page(state, token, tabs, head, data, method, run, chat, compare, report, lesson, stress)
        _wire(page)
        # A page load attaches its session (its own, after a reload); a page that goes away has
        # limits.RECONNECT_SECONDS to come back before its run stops and its data is deleted.
        (demo.load(None, None, [token], js=f"() => sessionStorage.getItem('{TOKEN_KEY}') || ''")
            .then(page.attach, [state, token], list(page.attached), api_visibility="private")
            .then(None, [token], None, js=f"(token) => {{ sessionStorage.setItem('{TOKEN_KEY}', token); }}"))
        gr.Timer(limits.KEEPALIVE_SECONDS).tick(_seen, [token], None, show_progress="hidden", api_visibility="private")
        demo.unload(_lost)
    return demo


def _wire(page: Page) -> None:
    """What one panel's change does to the others."""
    private: dict[str, Any] = {"api_visibility": "private"}
    state, head, data, run, chat, compare, report = page.state, page.head, page.data, page.run, page.chat, page.compare, page.report
    # New data: the header's line and the chat's example prompts.
    data.info.change(header.show_data, [state], [head.data], **private)
    data.info.change(chat_panel.refresh_examples, [state], [chat.examples], **private)
    data.info.change(run_panel.clear_refusal, [run.bar, state], [run.bar], **private)  # "Choose a forget file first" is stale
    # Whether the model already knows the forget set: after new data, and after Teach first.
    knows = data_panel.knower(run.backend)
    data.info.change(knows, [state, head.name], [data.known], **private)
    run.finished.change(knows, [state, head.name], [data.known], **private)
    run.finished.change(header.model_status(run.backend), [state, head.name], [head.status], **private)  # taught, or not
    # The kept runs changed (a run ended, another chosen, one removed): every view of them.
    kept_views = list(page.kept)
    run.finished.change(report_panel.show, [state], report.views, api_name="report")
    run.finished.change(page.show_kept, [state], kept_views, **private)
    chat.runs.input(chat_panel.choose_run, [state, chat.runs], [state], **private).then(
        page.show_kept, [state], kept_views, **private)
    # A lesson step ended: its runs join the kept ones' views, and its data (the kit) shows.
    page.lesson.finished.change(page.show_kept, [state], kept_views, **private)
    page.lesson.finished.change(data_panel.describe_session_data, [state], [data.info, data.preview], **private)
    compare.drop.click(compare_panel.remove, [state, compare.which], [state, compare.note],
                       api_name="remove_run").then(page.show_kept, [state], kept_views, **private)
    # A benchmark from the header: its data from the Hub, then its target model loaded.
    (head.benchmark.input(header.use_benchmark, [state, head.benchmark], [state, head.name, head.data], **private)
        .then(data_panel.describe_session_data, [state], [data.info, data.preview], **private)
        .then(model_panel.loader(run.backend), [head.name], [head.status], **private))
    # One click: the workshop preset, the method, the Run tab, and the run started.
    for name, button in head.tries.items():
        (button.click(lambda n=name: (n, gr.Tabs(selected="run")), None, [head.method, page.tabs], **private)
            .then(data_panel.use_workshop, [state], [state, data.info, data.preview], **private)
            .then(run.start, run.inputs, run.outputs, **private))


def _kept(session: Session) -> Kept:
    table, fig = compare_panel.compare(session)
    return Kept._make([chat_panel.run_menu(session), gr.Dropdown(choices=compare_panel.run_choices(session), value=session.current),
                       table, fig, *report_panel.show(session), stress_panel.target(session)])


_tokens: dict[str, str] = {}  # a page's Gradio session hash → its session's token


def _attach(fresh: Session, token: str, request: gr.Request) -> Attached:
    """The page's session (the one it had before a reload, if it is still open) and what the
    page shows of it: its data, its run (the timer polls it), its report."""
    if SESSIONS.ended(token):  # its connection was away longer than the grace: say so, not just an empty page
        gr.Warning(f"This page was away more than {limits.RECONNECT_SECONDS} s, so its session ended: its data and runs are "
                   "gone; start again here.")
    session, token = SESSIONS.attach(fresh, token)
    if request.session_hash is not None:
        _tokens[request.session_hash] = token
    if session is fresh:  # a new page: nothing to restore, and a click made meanwhile (a preset,
        return Attached(session, token, *[gr.skip()] * ATTACH_VIEWS)  # a run whose timer is polling) must not be undone
    info, rows = data_panel.describe_session_data(session)
    return Attached(session, token, gr.Timer(active=session.run is not None), info, rows, header.show_data(session),
                    chat_panel.refresh_examples(session), *_kept(session), *chat_panel.transcript(session))


def _seen(token: str) -> None:
    SESSIONS.seen(token)


def _lost(request: gr.Request) -> None:
    token = _tokens.pop(request.session_hash, None) if request.session_hash is not None else None
    SESSIONS.lost(token)


def _warm(studio: Studio, name: str) -> None:
    """The workshop preset's oracle and `before` evaluations, computed while the room opens the
    page (Studio.warm_preset); a failure here only means the first run computes them itself."""
    try:
        seconds = studio.warm_preset(name)
    except Exception as e:  # noqa: BLE001  logged for the operator; the app serves regardless
        print(f"warm-up of the workshop preset failed: {type(e).__name__}: {e}", flush=True)
        return
    if seconds is not None:
        print(f"workshop preset: oracle and before evaluated in {seconds:.1f} s (cached for every session)", flush=True)


def main() -> None:
    models = ModelCache(device=os.environ.get("UNLEARNING_DEVICE", "auto"),
                        trust_remote_code=os.environ.get("UNLEARNING_TRUST_REMOTE_CODE") == "1",
                        local_models=os.environ.get("UNLEARNING_LOCAL_MODELS") == "1",
                        device_map=os.environ.get("UNLEARNING_DEVICE_MAP") or None)
    sweep_leftovers([tempfile.gettempdir(), get_upload_folder()])  # what a killed earlier run of the app left
    sweeping(get_upload_folder())  # and uploads no session takes (a script can POST files without a page)
    backend = choose_backend(Studio(models))  # first: on ZeroGPU it imports `spaces`, which must patch torch before a model loads
    name = os.environ.get("UNLEARNING_MODEL", "workshop")
    models.get(name, operator=True)  # load before serving
    if isinstance(backend, LocalBackend) and os.environ.get("UNLEARNING_WARM", "1") != "0":
        threading.Thread(target=_warm, args=(backend.studio, name), name="warm-preset", daemon=True).start()
    demo = build(backend)
    demo.queue(default_concurrency_limit=limits.APP_CONCURRENCY, max_size=limits.APP_QUEUE_SIZE)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), css=CSS,
                max_file_size=limits.MAX_FILE_BYTES, **clients.launch_options())


if __name__ == "__main__":
    main()

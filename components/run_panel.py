"""Run — start / cancel, a progress bar, live plots of every loss term per step."""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from unlearning.service import Backend, Event, RunJob, Session, TeachJob, UnlearnJob, UserError, catalog, model_name

from . import method_panel
from .common import OnDelete, error_box
from .header import hint

POLL_SECONDS = 0.5
PLOT_SECONDS = 1.0  # the live plot's period (the bar's is POLL_SECONDS): see redraw
PLOT_HEIGHT = 320
HINT = ("Each line is one term of the method's loss, per step. Unlearning pushes the forget term while the retain term "
        "should stay flat; ECO draws its strength search instead (the metric against the target). Teach-first runs "
        "show the teaching loss falling.")
Points = dict[str, dict[str, tuple[list, list]]]  # {series: {value name: (xs, ys)}}


# ------------------------------------------------------------------ pure helpers
def _specs(plots: tuple[catalog.Plot, ...] | None) -> dict[str, catalog.Plot]:
    """Plot spec by series: the given ones (a method's `MethodInfo.plots`), or with None every
    method's (whatever ran). A series no spec names is drawn as is: every value per step."""
    return {p.series: p for p in (catalog.plots() if plots is None else plots)}


def _spec(specs: dict[str, catalog.Plot], series: str) -> catalog.Plot:
    return specs.get(series) or catalog.Plot(series, series)


def _points(events: list[Event], specs: dict[str, catalog.Plot]) -> Points:
    out: Points = {}
    for ev in events:
        if ev.kind != "step":
            continue
        spec = _spec(specs, ev.series)
        x = ev.step if spec.x == "step" else ev.values.get(spec.x)
        if x is None:
            continue
        for name in spec.traces(ev.values):
            xs, ys = out.setdefault(ev.series, {}).setdefault(name, ([], []))
            xs.append(x)
            ys.append(ev.values[name])
    return out


def series_points(events: list[Event], plots: tuple[catalog.Plot, ...] | None = None) -> Points:
    """{series: {value name: (xs, ys)}} from step events, in arrival order, as the plot specs
    say: the x axis (the step, or a value such as ECO's strength) and the values not drawn."""
    return _points(events, _specs(plots))


def figure(events: list[Event], plots: tuple[catalog.Plot, ...] | None = None) -> go.Figure | None:
    """One subplot per series seen, titled, with the axis and mode its spec gives."""
    specs = _specs(plots)
    points = _points(events, specs)
    if not points:
        return None
    fig = make_subplots(rows=1, cols=len(points), subplot_titles=[_title(s, specs) for s in points])
    any_title = False
    for col, (series, values) in enumerate(points.items(), start=1):
        spec = _spec(specs, series)
        for name, (xs, ys) in values.items():
            fig.add_trace(go.Scatter(x=xs, y=ys, name=f"{series}: {name}", mode=spec.mode), row=1, col=col)
        if spec.x != "step":  # "step" is every plot's x but ECO's, which is titled
            any_title = True
            fig.update_xaxes(title_text=spec.x, type="log" if _decades(values) else None, row=1, col=col)
    fig.update_layout(height=PLOT_HEIGHT, margin={"l": 40, "r": 10, "t": 40, "b": 30}, uirevision="keep",
                      # below the tick labels (and the x title, where there is one) at any width
                      legend={"orientation": "h", "yanchor": "top", "y": -0.3 if any_title else -0.2},
                      font={"size": 13})
    return fig


def _decades(values: dict[str, tuple[list, list]]) -> bool:
    """Do the x values span more than two decades (ECO's strengths: 0.001 … 10,000)? Then a log axis."""
    xs = [x for xs, _ in values.values() for x in xs if isinstance(x, (int, float))]
    return bool(xs) and min(xs) > 0 and max(xs) / min(xs) > 100


def _title(series: str, specs: dict[str, catalog.Plot] | None = None) -> str:
    return _spec(_specs(None) if specs is None else specs, series).title


def progress_html(events: list[Event], state: str) -> str:
    fraction, message = 0.0, ""
    for ev in events:
        if ev.kind == "progress" and ev.fraction is not None:
            fraction, message = ev.fraction, ev.message
        elif ev.kind == "step" and not message.startswith("teaching"):  # Teach first words its own steps
            message = f"{ev.series} step {ev.step}" + (f" of {ev.total}" if ev.total else "")
    if state == "done":  # and why, where the run said (Teach first: why each model stopped)
        fraction, message = 1.0, "finished" + (f": {message}" if message not in ("", "done") and " step " not in f" {message}"
                                               else "")
    last = events[-1] if events else None
    if last is not None and last.kind in ("error", "cancelled"):
        message = last.message
    pct = round(100 * fraction)
    return (f'<div class="us-progress" data-state="{state}"><div class="us-bar" style="width:{pct}%"></div></div>'
            f'<div class="us-progress-text" id="run-state">{html.escape(state)} — {pct}% — {html.escape(message)}</div>')


# ------------------------------------------------------------------ handlers
def launch(backend: Backend, session: Session, job: Callable[[], RunJob], label: str = "running"):
    """Start the job that `job()` builds and let the timer show it: the one way every panel
    starts a run. On ZeroGPU this request also carries the run's GPU call to its end
    (`drive`); here the run carries itself and the request ends at once."""
    try:
        run = backend.start(session, job())
    except UserError as e:
        yield session, progress_html([], "not started") + error_box(str(e)), gr.Timer(active=False)
        return
    yield session, progress_html([], label), gr.Timer(active=True)
    run.drive()
    # Gradio shows a generator's last output again when it completes: on ZeroGPU that is after
    # the run ended and the timer showed it, so the last output is the run as it is now (and an
    # API client's /start returns it). One more tick shows the end, if the timer stopped.
    yield session, progress_html(run.since(0), run.state), gr.Timer(active=True)


def starter(backend: Backend, names: list[str]):
    def start(session: Session, name: str, method: str, *values):
        job = lambda: UnlearnJob(model_name(name), method, method_panel.collect(method, names, list(values)))
        yield from _emptying_finished(launch(backend, session, job))

    return start


def teacher(backend: Backend):
    def teach(session: Session, name: str):
        yield from _emptying_finished(launch(backend, session, lambda: TeachJob(model_name(name)), "teaching"))

    return teach


def _emptying_finished(shown):
    """launch's outputs, the "finished" box emptied at the start, so this run's end is a change too."""
    for i, out in enumerate(shown):
        yield *out, ("" if i == 0 else gr.skip())


def cancel(session: Session):
    """Ask the run to stop; the bar says so (and says so at once when there is nothing to stop)."""
    message = session.cancel()
    events = session.run.since(0) if session.run is not None else []
    state = session.run.state if session.run is not None else "idle"
    return progress_html(events, state) + (f'<div class="us-note">{html.escape(message)}</div>')


def clear_refusal(bar: str, session: Session):
    """New data: a refusal the bar still shows ("Choose a forget file first") is stale; a run's bar stays."""
    if 'data-state="not started"' in (bar or "") and not session.busy:
        return progress_html([], "idle")
    return gr.skip()


def redraw(shown: tuple, run, events: list[Event], ended: bool, now: float | None = None) -> tuple[bool, tuple]:
    """Whether this tick sends the run's plot again, and what the page has shown after it
    (`shown`: a per-page state, (run, when, steps)): a run's first steps at once, then at most
    every PLOT_SECONDS, and its last steps when it ends. The page redraws the whole figure each
    time, and each figure is a message to each browser in the room."""
    now = time.monotonic() if now is None else now
    steps = sum(1 for e in events if e.kind == "step")
    same, at, drawn = (shown[0] == id(run), shown[1], shown[2]) if shown else (False, 0.0, 0)
    if same and (steps == drawn or (drawn > 0 and not ended and now - at < PLOT_SECONDS)):
        return False, shown
    return steps > 0, (id(run), now, steps)


def poll(session: Session, shown: tuple):
    """Timer tick: progress and plot while running; stop the timer when the run ended."""
    run = session.run
    if run is None or run.kind == "attack":  # a stress test shows in its own panel
        return gr.skip(), gr.skip(), gr.Timer(active=False), gr.skip(), shown
    events = run.since(0)
    ended = run.finished
    draw, shown = redraw(shown, run, events, ended)
    fig = figure(events, catalog.plots(run.method) if run.method else None) if draw else None
    return (progress_html(events, run.state), fig if fig is not None else gr.skip(),
            gr.Timer(active=not ended), run.state if ended else gr.skip(), shown)


# ------------------------------------------------------------------ widgets
@dataclass(frozen=True)
class RunPanel:
    finished: gr.Textbox  # set when a run ends; the other panels listen to it
    bar: gr.HTML
    plot: gr.Plot
    timer: gr.Timer  # polls the run while it runs
    inputs: list  # what `start` reads: the session, the model, the method and its settings
    backend: Backend
    names: list[str]  # the settings' names, in the order of the inputs after the method

    @property
    def outputs(self) -> list:
        """What `start` writes: the session, the bar, the timer and `finished`."""
        return [self.inputs[0], self.bar, self.timer, self.finished]

    def start(self, session: Session, name: str, method: str, *values):
        """Start an unlearning run with the page's settings (the Start button and the one-click tries)."""
        yield from starter(self.backend, self.names)(session, name, method, *values)


def render(backend: Backend, state: gr.State, model, method: method_panel.MethodPanel) -> RunPanel:
    with gr.Row():
        start = gr.Button("Start unlearning", variant="primary", elem_id="start-run")
        stop = gr.Button("Cancel", variant="stop", elem_id="cancel-run")
        teach = gr.Button("Teach first", elem_id="teach-first")
    bar = gr.HTML(progress_html([], "idle"), elem_id="run-progress")
    plot = gr.Plot(label="Live losses", elem_id="loss-plot")
    hint(HINT, "loss-hint")
    finished = gr.Textbox(visible=False, elem_id="run-finished")  # set when a run ends; others listen
    timer = gr.Timer(POLL_SECONDS, active=False)

    panel = RunPanel(finished, bar, plot, timer, [state, model, method.method, *method.controls], backend, method.names)
    start.click(panel.start, panel.inputs, panel.outputs, api_name="start")
    teach.click(teacher(backend), [state, model], panel.outputs, api_name="teach_first")
    stop.click(cancel, [state], [bar], api_name="cancel")
    shown = gr.State((), delete_callback=OnDelete("nothing to delete"))  # this page's plot: (run, when, steps) as `redraw` last sent it
    timer.tick(poll, [state, shown], [bar, plot, timer, finished, shown], api_name="poll")
    return panel

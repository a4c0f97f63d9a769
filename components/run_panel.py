"""4. Run — start / cancel, a progress bar, live plots of every loss term per step."""

from __future__ import annotations

import html
import time

import gradio as gr
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from unlearning import detached
from unlearning.errors import UserError
from unlearning.runs import Event
from unlearning.studio import SessionState, Studio

from . import gpu, method_panel

POLL_SECONDS = 0.5
HIDDEN_VALUES = {"lr", "elapsed_s", "target"}  # shown elsewhere, or not a loss


# ------------------------------------------------------------------ pure helpers
def series_points(events: list[Event]) -> dict[str, dict[str, tuple[list, list]]]:
    """{series: {value name: (xs, ys)}} from step events, in arrival order."""
    out: dict[str, dict[str, tuple[list, list]]] = {}
    for ev in events:
        if ev.kind != "step":
            continue
        for name, value in ev.values.items():
            if name in HIDDEN_VALUES and not (ev.series == "search" and name == "target"):
                continue
            xs, ys = out.setdefault(ev.series, {}).setdefault(name, ([], []))
            xs.append(ev.values.get("strength", ev.step) if ev.series == "search" else ev.step)
            ys.append(value)
    for series in out.values():  # the search's x axis is the strength itself
        series.pop("strength", None)
    return out


def figure(events: list[Event]) -> go.Figure | None:
    points = series_points(events)
    if not points:
        return None
    fig = make_subplots(rows=1, cols=len(points), subplot_titles=[_title(s) for s in points])
    for col, (series, values) in enumerate(points.items(), start=1):
        for name, (xs, ys) in values.items():
            mode = "markers" if series == "search" else "lines+markers"
            fig.add_trace(go.Scatter(x=xs, y=ys, name=f"{series}: {name}", mode=mode), row=1, col=col)
        fig.update_xaxes(title_text="strength" if series == "search" else "step", row=1, col=col)
    fig.update_layout(height=340, margin=dict(l=40, r=10, t=40, b=40), uirevision="keep", legend=dict(orientation="h"))
    return fig


def _title(series: str) -> str:
    return {"train": "losses per step", "classifier": "ECO classifier training loss",
            "search": "ECO strength search (metric vs target)"}.get(series, series)


def progress_html(events: list[Event], state: str) -> str:
    fraction, message = 0.0, ""
    for ev in events:
        if ev.kind == "progress" and ev.fraction is not None:
            fraction, message = ev.fraction, ev.message
        elif ev.kind == "step":
            message = f"{ev.series} step {ev.step}" + (f" of {ev.total}" if ev.total else "")
    if state == "done":
        fraction, message = 1.0, "finished"
    last = events[-1] if events else None
    if last is not None and last.kind in ("error", "cancelled"):
        message = last.message
    pct = int(round(100 * fraction))
    return (f'<div class="us-progress" data-state="{state}"><div class="us-bar" style="width:{pct}%"></div></div>'
            f'<div class="us-progress-text" id="run-state">{html.escape(state)} — {pct}% — {html.escape(message)}</div>')


# ------------------------------------------------------------------ handlers
def starter(studio: Studio, names: list[str]):
    def start(session: SessionState, model_name: str, method: str, *values):
        try:
            settings = method_panel.collect(method, names, list(values))
            studio.start(session, (model_name or "workshop").strip(), method, settings)
        except UserError as e:
            return session, progress_html([], "not started") + f'<div class="us-error" role="alert">⚠️ {html.escape(str(e))}</div>', gr.Timer(active=False)
        return session, progress_html([], "running"), gr.Timer(active=True)

    return start


def teacher(studio: Studio):
    def teach(session: SessionState, model_name: str):
        try:
            studio.teach_first(session, (model_name or "workshop").strip())
        except UserError as e:
            return session, f'<div class="us-error" role="alert">⚠️ {html.escape(str(e))}</div>', gr.Timer(active=False)
        return session, progress_html([], "teaching"), gr.Timer(active=True)

    return teach


def cancel(session: SessionState):
    if session.run is not None:
        session.run.cancel()
    return "cancelling…"


def poll(session: SessionState):
    """Timer tick: progress and plot while running; stop the timer when the run ended."""
    run = session.run
    if run is None:
        return gr.skip(), gr.skip(), gr.Timer(active=False), gr.skip()
    events = run.since(0)
    fig = figure(events)
    ended = run.finished
    return (progress_html(events, run.state), fig if fig is not None else gr.skip(),
            gr.Timer(active=not ended), run.state if ended else gr.skip())


# ------------------------------------------------------------------ handlers on ZeroGPU
def gpu_starter(studio: Studio, names: list[str], call):
    """Start as one GPU call that streams progress and plots until the run ends (no timer)."""
    def start(session: SessionState, model_name: str, method: str, *values):
        try:
            settings = method_panel.collect(method, names, list(values))
            job = detached.prepare(studio, session, "unlearn", (model_name or "workshop").strip(),
                                   seconds=gpu.run_seconds(), method=method, settings=settings)
        except UserError as e:
            yield session, _error(e), gr.skip(), gr.skip()
            return
        yield from follow(session, call, job)

    return start


def gpu_teacher(studio: Studio, call):
    def teach(session: SessionState, model_name: str):
        try:
            job = detached.prepare(studio, session, "teach", (model_name or "workshop").strip(),
                                   seconds=gpu.run_seconds())
        except UserError as e:
            yield session, _error(e), gr.skip(), gr.skip()
            return
        yield from follow(session, call, job)

    return teach


def follow(session: SessionState, call, job):
    """Feed the worker's messages to the session's run; show progress and plot every
    POLL_SECONDS, and the end state last (which the report listens for)."""
    run = session.run
    yield session, progress_html([], run.state), gr.skip(), ""
    shown = time.monotonic()
    try:
        for message in gpu.stream(call, job):
            run.feed(message)
            if time.monotonic() - shown >= POLL_SECONDS and not run.finished:
                shown = time.monotonic()
                fig = figure(run.since(0))
                yield session, progress_html(run.since(0), run.state), fig if fig is not None else gr.skip(), gr.skip()
    except UserError as e:
        run.fail(str(e))
    except GeneratorExit:  # the page went away: the worker would go on, so stop it
        run.cancel()
        raise
    run.fail("The GPU worker ended before the run did.")  # no-op when the run reported its end
    fig = figure(run.since(0))
    yield session, progress_html(run.since(0), run.state), fig if fig is not None else gr.skip(), run.state


def _error(e: UserError) -> str:
    return progress_html([], "not started") + f'<div class="us-error" role="alert">⚠️ {html.escape(str(e))}</div>'


# ------------------------------------------------------------------ widgets
def render(studio: Studio, state: gr.State, model_name, method: dict) -> dict:
    gr.Markdown("## 4. Run\nUnlearning runs in the background; the plots update as it goes. "
                "Uploaded facts the model never learned can be taught first (and an oracle trained on retain only).")
    with gr.Row():
        start = gr.Button("Start unlearning", variant="primary", elem_id="start-run")
        stop = gr.Button("Cancel", variant="stop", elem_id="cancel-run")
        teach = gr.Button("Teach first (uploads)", elem_id="teach-first")
    bar = gr.HTML(progress_html([], "idle"), elem_id="run-progress")
    plot = gr.Plot(label="Live losses", elem_id="loss-plot")
    finished = gr.Textbox(visible=False, elem_id="run-finished")  # set when a run ends; others listen
    timer = gr.Timer(POLL_SECONDS, active=False)

    inputs = [state, model_name, method["method"]] + method["controls"]
    call = gpu.runner(studio)  # None: runs go to a background thread that the timer polls
    if call is None:
        start.click(starter(studio, method["names"]), inputs, [state, bar, timer], api_name="start")
        teach.click(teacher(studio), [state, model_name], [state, bar, timer], api_name="teach_first")
    else:
        start.click(gpu_starter(studio, method["names"], call), inputs, [state, bar, plot, finished], api_name="start")
        teach.click(gpu_teacher(studio, call), [state, model_name], [state, bar, plot, finished], api_name="teach_first")
    stop.click(cancel, [state], [bar], api_name="cancel")
    timer.tick(poll, [state], [bar, plot, timer, finished], api_name="poll")
    return {"finished": finished, "bar": bar, "plot": plot}

"""7. Stress test — does it really forget? Relearning, quantization, paraphrases and prompt
attacks on the session's kept run, each on the original, the unlearned model and the oracle."""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr
import plotly.graph_objects as go

from unlearning.service import AttackJob, Backend, Session, model_name
from unlearning.service.stress import ATTACKS, AttackView, note, stress_view

from .common import PALETTE
from .header import hint
from .run_panel import POLL_SECONDS, launch, progress_html

COLOURS = {m: PALETTE[m] for m in ("original", "unlearned", "oracle")}  # the page's one palette: the oracle is gold
NAMES = {"original": "original", "unlearned": "unlearned", "oracle": "oracle (never saw the forget set)"}


# ------------------------------------------------------------------ pure helpers
def figure(view: AttackView) -> go.Figure:
    """The attack as a picture: relearning as lines over the steps, the others as grouped bars;
    the oracle in its own colour (dashed), as the reference."""
    fig = go.Figure()
    for s in view.series:
        if view.kind == "line":
            fig.add_trace(go.Scatter(x=list(s.xs), y=list(s.ys), name=NAMES[s.model], mode="lines+markers",
                                     line={"color": COLOURS[s.model], "width": 7 if s.model == "original" else 3,  # wide: visible behind an equal line
                                           "dash": "dash" if s.model == "oracle" else "solid"}))
        else:
            fig.add_trace(go.Bar(x=list(s.xs), y=list(s.ys), name=NAMES[s.model], marker_color=COLOURS[s.model]))
    fig.update_layout(title=view.title, height=320, margin={"l": 50, "r": 10, "t": 50, "b": 40}, barmode="group",
                      legend={"orientation": "h"}, xaxis_title=view.x_title, yaxis_title=view.y_title,
                      yaxis_range=[0, 1.05], font={"size": 14})
    return fig


def caption(view: AttackView) -> str:
    took = f" ({view.wall_s:.0f} s)" if view.wall_s is not None else ""
    return f"**{html.escape(view.summary)}**{took}\n\n<span class='us-reading'>{html.escape(view.reading)}</span>"


def pictures(report: dict | None) -> list:
    """Updates for every attack's (plot, caption) pair: shown with the result, hidden without."""
    views = {v.name: v for v in stress_view(report)}
    out: list = []
    for name in ATTACKS:
        view = views.get(name)
        out += ([gr.Plot(figure(view), visible=True), gr.Markdown(caption(view), visible=True)] if view else
                [gr.Plot(visible=False), gr.Markdown(visible=False)])
    return out


NO_TARGET = "**Run under test:** none yet — run a method first; the stress test attacks the run the chat uses."


def target(session: Session) -> str:
    """Which kept run the stress test attacks (the current one: chosen beside the chat)."""
    run = session.current_run
    if run is None:
        return NO_TARGET
    return (f"**Run under test: {html.escape(run.label)}** — the run the chat and the report use "
            "(choose another beside the chat).")


# ------------------------------------------------------------------ handlers
def starter(backend: Backend):
    def start(session: Session, name: str, attacks: list[str], steps, sample):
        settings = {k: v for k, v in (("relearn_steps", steps), ("sample", sample)) if v not in (None, "")}
        yield from launch(backend, session, lambda: AttackJob(model_name(name), tuple(attacks or ()), settings))

    return start


def poll(session: Session):
    """Timer tick: progress while the stress test runs; the pictures when it ends."""
    run = session.run
    if run is None or run.kind != "attack":
        return [gr.skip(), gr.Timer(active=False), gr.skip()] + [gr.skip()] * (2 * len(ATTACKS))
    events = run.since(0)
    if not run.finished:
        return [progress_html(events, run.state), gr.Timer(active=True), gr.skip()] + [gr.skip()] * (2 * len(ATTACKS))
    return [progress_html(events, run.state), gr.Timer(active=False), _note(session.robustness)] + pictures(session.robustness)


def _note(report: dict | None) -> str:
    text = note(report)
    return f"ℹ️ {html.escape(text)}" if text else ""


HINT = ("In each picture the unlearned model (blue) should stay with the oracle (gold), a model that never knew the forget "
        "set. If its line climbs back toward the original's after relearning, rounding or a reworded question, the "
        "knowledge was hidden, not removed.")


# ------------------------------------------------------------------ widgets
@dataclass(frozen=True)
class StressPanel:
    timer: gr.Timer
    bar: gr.HTML
    target: gr.Markdown  # which run it attacks; follows the kept runs


def render(backend: Backend, state: gr.State, model) -> StressPanel:
    gr.Markdown("Does it really forget, or only hide? Attack the current run (chosen beside the chat) the way the "
                "research field does, and compare with the oracle, which never saw the forget set.")
    aim = gr.Markdown(NO_TARGET, elem_id="stress-target")
    with gr.Row():
        attacks = gr.CheckboxGroup([(ATTACKS[n][0].split(":")[0], n) for n in ATTACKS], value=list(ATTACKS),
                                   label="Attacks", elem_id="stress-attacks", scale=3)
        steps = gr.Number(20, precision=0, label="relearning steps", minimum=1, maximum=1000, elem_id="stress-steps", scale=1)
        sample = gr.Number(40, precision=0, label="questions scored per split", minimum=1, elem_id="stress-sample", scale=1)
    with gr.Row():
        start = gr.Button("Start the stress test", variant="primary", elem_id="stress-start")
        stop = gr.Button("Cancel", variant="stop", elem_id="stress-cancel")
    bar = gr.HTML(progress_html([], "idle"), elem_id="stress-progress")
    about = gr.Markdown(elem_id="stress-note")
    shown = []
    for name in ATTACKS:
        shown += [gr.Plot(visible=False, elem_id=f"stress-{name}", show_label=False),
                  gr.Markdown(visible=False, elem_id=f"stress-{name}-caption")]
    hint(HINT, "stress-hint")
    timer = gr.Timer(POLL_SECONDS, active=False)

    start.click(starter(backend), [state, model, attacks, steps, sample], [state, bar, timer], api_name="stress_test")
    stop.click(_cancel, [state], [bar], api_name="stress_cancel")
    timer.tick(poll, [state], [bar, timer, about] + shown, api_name="stress_poll")
    return StressPanel(timer, bar, aim)


def _cancel(session: Session) -> str:
    run = session.run
    if run is None or run.kind != "attack":
        return progress_html([], "idle") + '<div class="us-note">There is no stress test to cancel.</div>'
    return progress_html(run.since(0), run.state) + f'<div class="us-note">{html.escape(session.cancel())}</div>'

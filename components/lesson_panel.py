"""Lesson — six steps through the field's main findings on the workshop kit: per step a question
to the room, one button that sets up and runs its experiment through the app's own start and
poll path, and a reading computed from that run's numbers (service/lesson.py)."""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr

from unlearning.service import AttackJob, Backend, ChatJob, Session, UnlearnJob, UserError, model_name
from unlearning.service.lesson import (
    BY_KEY,
    STEPS,
    LessonLog,
    Probe,
    Reading,
    Task,
    failed,
    meet_questions,
    plan,
    read_meet,
    read_step,
    read_stress,
)

from .common import OnDelete, error_box
from .run_panel import POLL_SECONDS, launch, progress_html

KEYS = [s.key for s in STEPS]
OK_STYLE = "border-left:6px solid #16a34a;background:#f0fdf4;padding:8px 12px;border-radius:6px;font-size:1.05em"
BAD_STYLE = "border:2px solid #dc2626;background:#fef2f2;padding:8px 12px;border-radius:6px;font-size:1.05em"


# ------------------------------------------------------------------ pure helpers
def reading_html(reading: Reading, figure: str) -> str:
    """A reading as the page shows it: a failure in a red box that says so, a success in green;
    either names the figure its numbers come from."""
    mark, style = ("✓", OK_STYLE) if reading.ok else ("✗ Not shown:", BAD_STYLE)
    return (f'<div class="us-lesson-reading" data-ok="{str(reading.ok).lower()}" style="{style}">'
            f'<b>{mark}</b> {html.escape(reading.text)}<br><small>Read from: {html.escape(figure)}.</small></div>')


def probes_html(probes: list[Probe]) -> str:
    """Step 1's prompts and the original's replies, so the room sees what the reading scored."""
    if not probes:
        return ""
    left = ' style="text-align:left"'  # words, not numbers: us-report right-aligns its cells
    rows = "".join(f"<tr><td{left}>{html.escape(p.kind)}</td><td{left}>{html.escape(p.prompt)}</td>"
                   f"<td{left}>{html.escape(p.reply)}</td></tr>" for p in probes)
    return ('<table class="us-report" id="lesson-probes"><tr><th>wording</th><th>prompt</th><th>the original answers</th>'
            f"</tr>{rows}</table>")


def step_intro(key: str) -> str:
    step = BY_KEY[key]
    return (f"### {step.title}\n**Ask the room:** {step.question}\n\n"
            f"<span class='us-hint'>The button {step.does}; the reading comes from {step.figure}.</span>")


def steps_value(value) -> int | None:
    """The lesson's "steps per run" box: blank (the page sends 0) for the pace's own."""
    if value in (None, "", 0):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UserError(f"Steps per run must be a whole number, not {value!r}.") from None


def reports_of(session: Session, numbers: list[int]) -> list[dict | None]:
    """The reports of a step's kept runs (None for one removed since)."""
    out: list[dict | None] = []
    for n in numbers:
        try:
            out.append(session.kept_run(n).report)
        except UserError:
            out.append(None)
    return out


def reading_of(session: Session, log: LessonLog, key: str) -> Reading:
    """Step `key`'s reading from what its experiments left in the session."""
    if key == "stress":
        fila = log.runs.get("fila") or []
        try:
            return read_stress(session.kept_run(fila[0] if fila else None).robustness)
        except UserError:
            return read_stress(None)
    return read_step(key, reports_of(session, log.runs.get(key, [])))


def job_for(session: Session, log: LessonLog, key: str, task: Task, name: str):
    """The service job a task is, after setting the session up for it (the kit's data; step 5's run under test)."""
    if key == "own":
        if "forget" not in session.data or "retain" not in session.data or session.uses_preset():
            raise UserError("Step 6 runs on your own data: upload a forget and a retain file under Data first.")
    elif not session.uses_preset():
        session.use_preset()
    if task.kind == "stress":
        fila = log.runs.get("fila") or []
        if not fila:
            raise UserError("Run step 3 first: the stress test attacks its IHL + FILA run.")
        session.select(fila[0])
        return AttackJob(model_name(name), ("relearn",), task.settings)
    assert task.method is not None, task
    return UnlearnJob(model_name(name), task.method, task.settings)


# ------------------------------------------------------------------ handlers
def _launch(backend: Backend, session: Session, log: LessonLog, key: str, task: Task, name: str):
    """Start one of the step's experiments through the Run panel's path (run_panel.launch):
    yields (session, log, bar, timer)."""
    try:
        job = job_for(session, log, key, task, name)
    except UserError as e:
        log.active, log.todo = None, []
        yield session, log, progress_html([], "not started") + error_box(str(e)), gr.Timer(active=False)
        return
    before = session.run
    for i, (now, bar, timer) in enumerate(launch(backend, session, lambda: job)):
        if i == 0 and now.run is before:  # refused: launch's bar says why in one sentence
            log.active, log.todo = None, []
        yield now, log, bar, timer


def stepper(backend: Backend, key: str):
    """Step `key`'s button: begin the step and start its first experiment."""

    def go(session: Session, log: LessonLog, name: str, quick: bool, steps):
        try:
            tasks = plan(key, bool(quick), steps_value(steps))
        except UserError as e:
            yield session, log, error_box(str(e)), gr.skip(), gr.Timer(active=False)
            return
        if log.active is not None and session.busy:
            running = BY_KEY[log.active].title
            yield session, log, error_box(f"Step {running} is still running; wait for it to end."), gr.skip(), gr.skip()
            return
        if key == "meet":
            yield from _meet(backend, session, log, name)
            return
        first = log.begin(key, tasks)
        for now, _, bar, timer in _launch(backend, session, log, key, first, name):
            yield now, log, bar, "", timer

    return go


def _meet(backend: Backend, session: Session, log: LessonLog, name: str):
    """Step 1: the probes asked through the chat service, the original's replies scored."""
    log.begin("meet", (Task("chat"),))
    if not session.uses_preset():
        session.use_preset()
    questions = meet_questions()
    probes: list[Probe] = []
    try:
        for i, (kind, prompt, expected) in enumerate(questions):
            yield session, log, _asking(i, len(questions), kind), "", gr.Timer(active=False)
            reply = None
            for reply in backend.chat(session, ChatJob(model_name(name), prompt)):
                pass
            probes.append(Probe(kind, prompt, expected, reply.original if reply is not None else ""))
    except UserError as e:
        log.active = None
        yield session, log, progress_html([], "failed") + error_box(str(e)), "", gr.Timer(active=False)
        return
    log.probes = probes
    reading = log.end(read_meet(probes))
    yield (session, log, _done_bar(), probes_html(probes) + reading_html(reading, BY_KEY["meet"].figure),
           gr.Timer(active=False))


def _asking(i: int, n: int, kind: str) -> str:
    pct = round(100 * i / n)
    return (f'<div class="us-progress" data-state="running"><div class="us-bar" style="width:{pct}%"></div></div>'
            f'<div class="us-progress-text">running — {pct}% — asking the original ({html.escape(kind)}), {i + 1} of {n}</div>')


def _done_bar() -> str:
    return progress_html([], "done")


def poll(session: Session, log: LessonLog):
    """Timer tick: the running step's bar; at a run's end, its next experiment (through `next`)
    or the step's reading. Returns log, the bars, the readings, the timer, next and finished."""
    skip = [gr.skip()] * len(KEYS)
    key, run = log.active, session.run
    if key is None or run is None:
        return [log, *skip, *skip, gr.Timer(active=False), gr.skip(), gr.skip()]
    bars, readings = list(skip), list(skip)
    at = KEYS.index(key)
    bars[at] = progress_html(run.since(0), run.state)
    if not run.finished:
        return [log, *bars, *readings, gr.Timer(active=True), gr.skip(), gr.skip()]
    if run is log.seen:  # its end is already taken in; the next experiment is starting
        return [log, *skip, *skip, gr.Timer(active=False), gr.skip(), gr.skip()]
    log.seen, log.ends = run, log.ends + 1
    if run.state != "done":
        reading = log.end(failed("stress test" if run.kind == "attack" else "run", run.state, run.error))
    else:
        if run.kind == "unlearn" and session.current is not None:
            log.runs.setdefault(key, []).append(session.current)
        if log.todo:
            return [log, *bars, *readings, gr.Timer(active=False), f"{key}:{log.ends}", gr.skip()]
        reading = log.end(reading_of(session, log, key))
    readings[at] = reading_html(reading, BY_KEY[key].figure)
    return [log, *bars, *readings, gr.Timer(active=False), gr.skip(), f"{key}:{log.ends}"]


def continuer(backend: Backend):
    """The next experiment of the step running (step 3's random start), once the last one ended."""

    def go_on(session: Session, log: LessonLog, name: str):
        key = log.active
        if key is None or not log.todo:
            yield session, log, *[gr.skip()] * len(KEYS), gr.skip()
            return
        task = log.todo.pop(0)
        at = KEYS.index(key)
        for now, _, bar, timer in _launch(backend, session, log, key, task, name):
            bars = [gr.skip()] * len(KEYS)
            bars[at] = bar
            yield now, log, *bars, timer

    return go_on


# ------------------------------------------------------------------ widgets
@dataclass(frozen=True)
class LessonPanel:
    log: gr.State  # the page's LessonLog: the room's printable summary reads it
    finished: gr.Textbox  # set when a step ends; the kept runs' views listen to it
    timer: gr.Timer


def render(backend: Backend, state: gr.State, model) -> LessonPanel:
    gr.Markdown("Six experiments that carry the field's main findings, on the workshop kit (steps 1–5 take its data "
                "into Data; step 6 runs on files you upload there). Ask the room each question before pressing the "
                "button; the reading under it is computed from that run's own numbers.")
    log = gr.State(LessonLog(), delete_callback=OnDelete("nothing to delete"))  # no address in the page config
    with gr.Row():
        quick = gr.Checkbox(False, label="Quick lesson: 60 steps a run where that still shows the step (GA keeps its 100), a short stress test", elem_id="lesson-quick")
        # no `minimum`: a blank box arrives as 0, which Gradio's bound check would refuse with a bare "Error"
        steps = gr.Number(None, precision=0, label="Steps per run (blank or 0: the lesson's)", elem_id="lesson-steps")
    bars, readings, buttons = [], [], []
    for step in STEPS:
        with gr.Group(elem_id=f"lesson-{step.key}"):
            gr.Markdown(step_intro(step.key), elem_id=f"lesson-{step.key}-intro")
            buttons.append(gr.Button(f"Run step {step.title.split(' ·')[0]}", variant="primary",
                                     elem_id=f"lesson-{step.key}-go"))
            bars.append(gr.HTML(progress_html([], "idle"), elem_id=f"lesson-{step.key}-progress"))
            readings.append(gr.HTML(elem_id=f"lesson-{step.key}-reading"))
    timer = gr.Timer(POLL_SECONDS, active=False)
    following = gr.Textbox(visible=False, elem_id="lesson-next")  # set when a step's next experiment is due
    finished = gr.Textbox(visible=False, elem_id="lesson-finished")

    for step, button, bar, reading in zip(STEPS, buttons, bars, readings):
        button.click(stepper(backend, step.key), [state, log, model, quick, steps], [state, log, bar, reading, timer],
                     api_name=f"lesson_{step.key}")
    timer.tick(poll, [state, log], [log, *bars, *readings, timer, following, finished], api_name="lesson_poll")
    following.change(continuer(backend), [state, log, model], [state, log, *bars, timer], api_visibility="private")
    return LessonPanel(log, finished, timer)

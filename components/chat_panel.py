"""Chat — one message, two streaming answers: original | unlearned (any kept run), with ECO's flag."""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr

from unlearning.service import Backend, ChatJob, Session, UserError, limits, model_name

from .common import error_box

N_EXAMPLES = 4
CHAT_HEIGHT = 330


# ------------------------------------------------------------------ pure helpers
def example_prompts(session: Session) -> list[tuple[str, str]]:
    """(role, prompt): a few forget prompts then a few retain prompts, so both behaviours can be
    seen (the preset's own suggestions where it has them: reworded questions and biographies too)."""
    out: list[tuple[str, str]] = []
    for role in ("forget", "retain"):
        if role in session.data:
            ds = session.data[role]
            out += [(role, p) for p in ds.suggested or ds.prompts()[:N_EXAMPLES]]
    return out


def flag_badge(flag: dict | None) -> str:
    if flag is None:
        return ""
    state = "flagged" if flag["flagged"] else "not flagged"
    return (f'<span class="us-badge us-{state.replace(" ", "-")}" id="eco-flag">ECO classifier: <b>{state}</b> '
            f'(score {flag["score"]:.3f}, threshold {flag["threshold"]:.3f})</span>')


NO_RUN = "(no unlearned model yet: run a method first)"
TRAINING = "(no unlearned model yet: the first run is still training; ask again when it has finished)"


def sides(session: Session) -> tuple[str, str]:
    """Who answers on each side, as each answer is labelled: 'original' (or the taught model)
    and the kept run ('#2 ECO (prompt classifier …)'), saying so when that is a previous run
    while a new one trains, or that there is none yet."""
    original = "original (taught on your data)" if getattr(session, "taught", None) is not None else "original"
    training = _training(session)
    kept = getattr(session, "current_run", None)
    if kept is None:
        return original, "no unlearned model yet"
    if training:
        return original, f"{kept.label}: a previous run (the new one is still training)"
    return original, kept.label


def turn(prompt: str, reply: str, who: str | None = None) -> list[dict]:
    """One exchange for a gr.Chatbot, the answer labelled with the model that gave it. Both
    sides are escaped: the Chatbot renders HTML, and a model's (or a user's) `<img onerror=…>`
    must show as text, never run."""
    answer: dict = {"role": "assistant", "content": html.escape(reply)}
    if who:
        answer["metadata"] = {"title": html.escape(who)}
    return [{"role": "user", "content": html.escape(prompt)}, answer]


def _training(session: Session) -> bool:
    run = getattr(session, "run", None)
    return run is not None and not run.finished and run.kind == "unlearn"


def missing(session: Session) -> str:
    """What the unlearned side says when there is no kept run to answer."""
    return TRAINING if _training(session) else NO_RUN


# ------------------------------------------------------------------ handlers
def responder(backend: Backend):
    def respond(prompt: str, session: Session, name: str, left: list, right: list):
        prompt = (prompt or "").strip()
        if not prompt:
            yield left, right, gr.skip(), ""
            return
        left, right = list(left or []), list(right or [])
        who_left, who_right = sides(session)  # as the question is asked: a run ending meanwhile did not answer it
        note = missing(session) if session.artifact is None else ""
        shown = left, right
        try:
            for reply in backend.chat(session, ChatJob(model_name(name), prompt)):
                shown = (left + turn(prompt, reply.original, who_left),
                         right + turn(prompt, reply.unlearned or note, who_right))
                yield *shown, flag_badge(reply.flag), ""
            session.chat = shown  # a reload shows the panes again
        except UserError as e:
            yield left, right, error_box(str(e)), ""

    return respond


def transcript(session: Session) -> tuple[list, list]:
    """The two panes as the session last showed them (a reloaded page shows them again)."""
    return session.chat


def run_menu(session: Session):
    """The kept runs the unlearned side can be, the current one chosen."""
    choices = [(run.label, run.number) for run in session.kept]
    return gr.Dropdown(choices=choices, value=session.current if choices else None,
                       label="Unlearned side" + ("" if choices else ": no run yet"))


def choose_run(session: Session, number):
    """The chat (and the report, the stress test, the download) now use kept run `number`."""
    try:
        session.select(int(number))
    except (UserError, TypeError, ValueError):
        pass  # a stale page: the menu is redrawn from the session either way
    return session


def refresh_examples(session: Session):
    """The menu names each prompt's set ("forget · …"); picking one puts the prompt alone in the box."""
    return gr.Dropdown(choices=[(f"{role} · {p}", p) for role, p in example_prompts(session)], value=None)


# ------------------------------------------------------------------ widgets
@dataclass(frozen=True)
class ChatPanel:
    examples: gr.Dropdown  # the data's example prompts
    runs: gr.Dropdown  # which kept run answers on the unlearned side
    left: gr.Chatbot  # the original's answers
    right: gr.Chatbot  # the unlearned side's, each labelled with its run


def render(backend: Backend, state: gr.State, model) -> ChatPanel:
    with gr.Row():
        runs = gr.Dropdown([], label="Unlearned side: no run yet", elem_id="chat-run", scale=1, min_width=250)
        examples = gr.Dropdown([], label="Example prompts (pick one to ask it)", allow_custom_value=False,
                               elem_id="chat-examples", scale=1)
    with gr.Row():
        message = gr.Textbox(show_label=False, placeholder="Ask about someone in the forget set, or anyone else", scale=4,
                             elem_id="chat-input")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
    badge = gr.HTML(elem_id="chat-flag", container=False)
    with gr.Row(elem_id="chat-panes"):  # page script (common.PAGE_JS): the panes scroll together, turn beside turn
        left = gr.Chatbot(label="Original", height=CHAT_HEIGHT, render_markdown=False, elem_id="chat-original")
        right = gr.Chatbot(label="Unlearned", height=CHAT_HEIGHT, render_markdown=False, elem_id="chat-unlearned")
    examples.select(lambda p: p, [examples], [message])
    args = ([message, state, model, left, right], [left, right, badge, message])
    respond = responder(backend)
    # chat has a pool of its own (concurrent replies decode as one batch: service/batcher.py),
    # so a room's questions neither queue behind uploads and polls nor hold them up
    send.click(respond, *args, api_name="chat", concurrency_limit=limits.CHAT_CONCURRENCY, concurrency_id="chat")
    message.submit(respond, *args, api_visibility="private",  # the same call as /chat
                   concurrency_limit=limits.CHAT_CONCURRENCY, concurrency_id="chat")
    return ChatPanel(examples, runs, left, right)

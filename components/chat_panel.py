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


def turn(prompt: str, reply: str) -> list[dict]:
    """One exchange for a gr.Chatbot. Both sides are escaped: the Chatbot renders HTML, and a
    model's (or a user's) `<img onerror=…>` must show as text, never run."""
    return [{"role": "user", "content": html.escape(prompt)}, {"role": "assistant", "content": html.escape(reply)}]


# ------------------------------------------------------------------ handlers
def responder(backend: Backend):
    def respond(prompt: str, session: Session, name: str, left: list, right: list):
        prompt = (prompt or "").strip()
        if not prompt:
            yield left, right, gr.skip(), ""
            return
        left, right = list(left or []), list(right or [])
        note = "" if session.artifact is not None else "(no unlearned model yet: run a method first)"
        try:
            for reply in backend.chat(session, ChatJob(model_name(name), prompt)):
                yield (left + turn(prompt, reply.original), right + turn(prompt, reply.unlearned or note),
                       flag_badge(reply.flag), "")
        except UserError as e:
            yield left, right, error_box(str(e)), ""

    return respond


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


def render(backend: Backend, state: gr.State, model) -> ChatPanel:
    with gr.Row():
        runs = gr.Dropdown([], label="Unlearned side: no run yet", elem_id="chat-run", scale=1, min_width=250)
        examples = gr.Dropdown([], label="Example prompts", allow_custom_value=False,
                               elem_id="chat-examples", scale=1)
    with gr.Row():
        message = gr.Textbox(show_label=False, placeholder="Ask about someone in the forget set, or anyone else", scale=4,
                             elem_id="chat-input")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
    badge = gr.HTML(elem_id="chat-flag")
    with gr.Row():
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
    return ChatPanel(examples, runs)

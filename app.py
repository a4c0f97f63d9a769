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
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from components import chat_panel, data_panel, method_panel, model_panel, report_panel, run_panel, stress_panel
from unlearning.service import Backend, ModelCache, Session, Sessions, Studio, choose_backend, limits, sweep_leftovers

CSS = (Path(__file__).parent / "assets" / "studio.css").read_text(encoding="utf-8")
INTRO = """# Unlearning Studio
Make a language model forget: pick the data to forget and to keep, choose **ECO prompts**
(inference-time guard, no training) or **IHL + FILA** (LoRA training), watch it run, then chat
with the original and the unlearned model side by side and read the before/after report."""


SESSIONS = Sessions()  # which page holds which session, and when a session really ends
TOKEN_KEY = "unlearning-session"  # the tab's sessionStorage key: survives a reload, not the tab


def build(backend: Backend) -> gr.Blocks:
    with gr.Blocks(title="Unlearning Studio") as demo:
        gr.Markdown(INTRO)
        # One Session per page; the registry hands it back to the page reloaded after a dropped
        # connection, and closes it once no page holds it (Gradio drops a state after its TTL).
        state = gr.State(Session(), time_to_live=limits.SESSION_HOURS * 3600, delete_callback=SESSIONS.dropped)
        token = gr.Textbox(visible=False, elem_id="session-token")
        model = model_panel.render(backend)
        data = data_panel.render(state)
        method = method_panel.render()
        run = run_panel.render(backend, state, model["name"], method)
        chat = chat_panel.render(backend, state, model["name"])
        report = report_panel.render(state)
        stress_panel.render(backend, state, model["name"])
        # Cross-panel updates: new data refreshes the chat examples; a finished run the report.
        data["info"].change(chat_panel.refresh_examples, [state], [chat["examples"]])
        run["finished"].change(report["show"], [state], [report["table"], report["cost"]], api_name="report")
        # A page load attaches its session (its own, after a reload); a page that goes away has
        # limits.RECONNECT_SECONDS to come back before its run stops and its data is deleted.
        shown = [state, token, run["timer"], data["info"], data["preview"], report["table"], report["cost"]]
        (demo.load(None, None, [token], js=f"() => sessionStorage.getItem('{TOKEN_KEY}') || ''")
            .then(_attach, [state, token], shown, api_visibility="private")
            .then(None, [token], None, js=f"(token) => {{ sessionStorage.setItem('{TOKEN_KEY}', token); }}"))
        gr.Timer(limits.KEEPALIVE_SECONDS).tick(_seen, [token], None, show_progress="hidden", api_visibility="private")
        demo.unload(_lost)
    return demo


_tokens: dict[str, str] = {}  # a page's Gradio session hash → its session's token


def _attach(fresh: Session, token: str, request: gr.Request):
    """The page's session (the one it had before a reload, if it is still open) and what the
    page shows of it: its data, its run (the timer polls it), its report."""
    session, token = SESSIONS.attach(fresh, token)
    if request.session_hash is not None:
        _tokens[request.session_hash] = token
    if session is fresh:  # a new page: nothing to restore, and a click made meanwhile (a preset,
        return session, token, *[gr.skip()] * 5  # a run whose timer is polling) must not be undone
    info, rows = data_panel.describe_session_data(session)
    table, cost = report_panel.show(session)
    return session, token, gr.Timer(active=session.run is not None), info, rows, table, cost


def _seen(token: str) -> None:
    SESSIONS.seen(token)


def _lost(request: gr.Request) -> None:
    token = _tokens.pop(request.session_hash, None) if request.session_hash is not None else None
    SESSIONS.lost(token)


def main() -> None:
    models = ModelCache(device=os.environ.get("UNLEARNING_DEVICE", "auto"),
                        trust_remote_code=os.environ.get("UNLEARNING_TRUST_REMOTE_CODE") == "1",
                        local_models=os.environ.get("UNLEARNING_LOCAL_MODELS") == "1",
                        device_map=os.environ.get("UNLEARNING_DEVICE_MAP") or None)
    sweep_leftovers([tempfile.gettempdir(), get_upload_folder()])  # what a killed earlier run of the app left
    backend = choose_backend(Studio(models))  # first: on ZeroGPU it imports `spaces`, which must patch torch before a model loads
    models.get(os.environ.get("UNLEARNING_MODEL", "workshop"), operator=True)  # load before serving
    demo = build(backend)
    demo.queue(default_concurrency_limit=limits.APP_CONCURRENCY, max_size=limits.APP_QUEUE_SIZE)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), css=CSS,
                max_file_size=limits.MAX_FILE_BYTES)


if __name__ == "__main__":
    main()

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
import weakref
from pathlib import Path

import gradio as gr

from components import chat_panel, data_panel, method_panel, model_panel, report_panel, run_panel
from unlearning.service import Backend, ModelCache, Session, Studio, choose_backend, limits

CSS = (Path(__file__).parent / "assets" / "studio.css").read_text(encoding="utf-8")
INTRO = """# Unlearning Studio
Make a language model forget: pick the data to forget and to keep, choose **ECO prompts**
(inference-time guard, no training) or **IHL + FILA** (LoRA training), watch it run, then chat
with the original and the unlearned model side by side and read the before/after report."""


def build(backend: Backend) -> gr.Blocks:
    with gr.Blocks(title="Unlearning Studio") as demo:
        gr.Markdown(INTRO)
        # One Session per browser session; Gradio deletes it (and we clean up) on close.
        state = gr.State(Session(), time_to_live=limits.SESSION_HOURS * 3600, delete_callback=lambda s: s.close())
        model = model_panel.render(backend)
        data = data_panel.render(state)
        method = method_panel.render()
        run = run_panel.render(backend, state, model["name"], method)
        chat = chat_panel.render(backend, state, model["name"])
        report = report_panel.render(state)
        # Cross-panel updates: new data refreshes the chat examples; a finished run the report.
        data["info"].change(chat_panel.refresh_examples, [state], [chat["examples"]])
        run["finished"].change(report["show"], [state], [report["table"], report["cost"]], api_name="report")
        # A closed tab ends its session at once: its run stops and frees the device. Gradio itself
        # deletes a closed session's state (and calls delete_callback) only an hour later.
        demo.load(_remember, [state], None)
        demo.unload(_end_session)
    return demo


_open_sessions: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()


def _remember(session: Session, request: gr.Request) -> None:
    if request.session_hash is not None:  # a browser session always has one
        _open_sessions[request.session_hash] = session


def _end_session(request: gr.Request) -> None:
    session = _open_sessions.pop(request.session_hash, None) if request.session_hash is not None else None
    if session is not None:
        session.close()


def main() -> None:
    models = ModelCache(device=os.environ.get("UNLEARNING_DEVICE", "auto"),
                        trust_remote_code=os.environ.get("UNLEARNING_TRUST_REMOTE_CODE") == "1",
                        local_models=os.environ.get("UNLEARNING_LOCAL_MODELS") == "1")
    backend = choose_backend(Studio(models))  # first: on ZeroGPU it imports `spaces`, which must patch torch before a model loads
    models.get(os.environ.get("UNLEARNING_MODEL", "workshop"), operator=True)  # load before serving
    demo = build(backend)
    demo.queue(default_concurrency_limit=limits.APP_CONCURRENCY, max_size=limits.APP_QUEUE_SIZE)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), css=CSS,
                max_file_size=limits.MAX_FILE_BYTES)


if __name__ == "__main__":
    main()

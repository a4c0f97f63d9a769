"""1. Model — the workshop model (default) or a hub id (a local folder only if the operator allows
it: UNLEARNING_LOCAL_MODELS=1, checked by the service's ModelCache); device and size shown."""

from __future__ import annotations

import html

import gradio as gr

from unlearning.service import Backend, UserError, model_name

from .common import error_box

CHOICES = ["workshop"]


# ------------------------------------------------------------------ pure helpers
def model_line(info: dict) -> str:
    return (f"✅ **{html.escape(info['name'])}** loaded on **{info['device']}** ({info['dtype']}), "
            f"{info['params'] / 1e6:.1f} M parameters.")


# ------------------------------------------------------------------ handlers
def loader(backend: Backend):
    def load(name: str, progress=gr.Progress()):
        progress(0.1, desc=f"loading {model_name(name)}")
        try:
            return model_line(backend.model_info(model_name(name)))
        except UserError as e:
            return error_box(str(e))

    return load


# ------------------------------------------------------------------ widgets
def render(backend: Backend) -> dict:
    gr.Markdown("## 1. Model\nThe offline **workshop** model (default), or a Hugging Face hub id when this machine "
                "has the network (a folder on the server only where its operator allows local models).")
    with gr.Row():
        name = gr.Dropdown(CHOICES, value="workshop", allow_custom_value=True, label="Model", scale=3, elem_id="model-name")
        load = gr.Button("Load", scale=1, elem_id="load-model")
    status = gr.Markdown(elem_id="model-status")
    load.click(loader(backend), [name], [status])
    return {"name": name, "status": status, "load": load}

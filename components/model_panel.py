"""The model (in the page's header) — the workshop model (default) or a hub id (a local folder only if the operator allows
it: UNLEARNING_LOCAL_MODELS=1, checked by the service's ModelCache); device and size shown."""

from __future__ import annotations

import html

import gradio as gr

from unlearning.service import Backend, UserError, model_name

from .common import error_box

CHOICES = ["workshop"]


# ------------------------------------------------------------------ pure helpers
def model_line(info: dict | None) -> str:
    """'Model: workshop loaded on cpu (float32) · 1.2 M parameters' for the header."""
    if not info:
        return ""
    return (f'<span class="us-model">Model: <b>{html.escape(str(info["name"]))}</b> loaded on '
            f'<b>{html.escape(str(info["device"]))}</b> ({html.escape(str(info["dtype"]))}) · '
            f'{info["params"] / 1e6:.1f} M parameters</span>')


# ------------------------------------------------------------------ handlers
def loader(backend: Backend):
    def load(name: str, progress=gr.Progress()):
        progress(0.1, desc=f"loading {model_name(name)}")
        try:
            return model_line(backend.model_info(model_name(name)))
        except UserError as e:
            return error_box(str(e))

    return load

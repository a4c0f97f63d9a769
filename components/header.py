"""The page's header: model, method and data at a glance, one-click "try it", and the hints switch.

A workshop projects the page: what is loaded and what runs must be readable without scrolling,
and the first run must be one click (the workshop preset and a method, started at once).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr

from unlearning.service import Backend, Dataset, Session, UserError, catalog, model_name
from unlearning.service.suites import BENCHMARKS

from . import method_panel, model_panel
from .common import PAGE_JS, error_box

TRY = ("ihl-fila", "eco")  # the methods offered as one-click tries, in this order
HINT_CLASS = "us-hint"  # every "what to look for" sentence; hidden with the hints switch off


# ------------------------------------------------------------------ pure helpers
def data_line(data: dict[str, Dataset]) -> str:
    """'Data: forget forget.jsonl · 40 QA — retain retain.jsonl · 280 QA' (a session's data), or how to get some."""
    parts = []
    for role in ("forget", "retain"):
        ds = data.get(role)
        if ds is not None:
            what = "QA" if ds.kind == "qa" else "passages"
            parts.append(f"<b>{role}</b> <code>{html.escape(ds.name)}</code> · {len(ds)} {what}")
    if not parts:
        return '<span class="us-data">Data: none yet — press a <b>Try</b> button, or upload files under <i>Data</i>.</span>'
    return '<span class="us-data">Data: ' + " — ".join(parts) + "</span>"


def try_label(method: str) -> str:
    try:
        label = catalog.method(method).label.split(" (")[0]
    except UserError:
        label = method
    return f"▶ Try {label}"


def use_benchmark(session: Session, name: str):
    """A benchmark preset from the header's menu: its data from the Hub as the session's, its
    published target model in the model box (loaded next: model_panel.loader), the data line."""
    if not name:
        return session, gr.skip(), gr.skip()
    try:
        bench = session.use_benchmark(name)
    except UserError as e:
        return session, gr.skip(), error_box(str(e))
    return session, bench.model, data_line(session.data)


def taught_info(info: dict, session: Session) -> dict:
    """The model's line says when the session works on its taught copy, not the shared model."""
    if session.taught is None:
        return info
    return {**info, "name": f"{info['name']}, taught your data in this session (its oracle: your retain file only)"}


def hint(text: str, elem_id: str | None = None) -> gr.Markdown:
    """The one sentence under a plot saying what to look for (hidden with the hints switch)."""
    return gr.Markdown(f"**What to look for:** {text}", elem_classes=[HINT_CLASS], elem_id=elem_id)


# ------------------------------------------------------------------ widgets
@dataclass(frozen=True)
class Header:
    name: gr.Dropdown  # the model
    method: gr.Dropdown
    status: gr.HTML  # the model's line
    data: gr.HTML  # the data's line
    tries: dict[str, gr.Button]  # one-click tries, by method name
    benchmark: gr.Dropdown  # TOFU / MUSE presets from the Hub (wired in app.py: use_benchmark, then the model's load)


def render(backend: Backend) -> Header:
    try:
        info = backend.model_info(None)
    except UserError:
        info = None
    gr.HTML("", js_on_load=PAGE_JS, elem_id="page-script", container=False, padding=False)  # plots fit, chat panes aligned
    with gr.Row(elem_id="header", equal_height=True):
        with gr.Column(scale=2, min_width=210):
            gr.HTML('<div class="us-title">Unlearning Studio<div class="us-tagline">make a model forget, and check '
                    "it did</div></div>", elem_id="title")
        name = gr.Dropdown(model_panel.CHOICES, value="workshop", allow_custom_value=True, label="Model",
                           scale=2, min_width=160, elem_id="model-name")
        load = gr.Button("Load", scale=0, min_width=70, elem_id="load-model")
        with gr.Column(scale=2, min_width=150):  # its own block: Gradio stacks neighbouring menus in one form
            benchmark = gr.Dropdown([("(your data)", ""), *[(label, name) for name, label in BENCHMARKS]], value="",
                                    label="Benchmark", min_width=150, elem_id="benchmark")
        method = method_panel.selector()
        tries = {m: gr.Button(try_label(m), variant="primary", scale=2, min_width=150, elem_id=f"try-{m}") for m in TRY}
    with gr.Row(elem_id="header-status", equal_height=True):
        status = gr.HTML(model_panel.model_line(info), elem_id="model-status")
        data = gr.HTML(data_line({}), elem_id="header-data")
        hints = gr.Checkbox(True, label="Explain the plots", scale=0, min_width=170, elem_id="show-hints")
    load.click(model_panel.loader(backend), [name], [status])
    hints.change(None, [hints], None, js="(on) => { document.body.classList.toggle('us-no-hints', !on); return []; }")
    return Header(name, method, status, data, tries, benchmark)


def show_data(session: Session) -> str:
    return data_line(session.data)


def model_status(backend: Backend):
    """The header's model line for the session (after Teach first: its taught copy)."""
    def status(session: Session, name: str) -> str:
        try:
            return model_panel.model_line(taught_info(backend.model_info(model_name(name)), session))
        except UserError as e:
            return error_box(str(e))

    return status

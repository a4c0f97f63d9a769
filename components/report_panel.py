"""Report — the key metrics as a chart (oracle marked, ↑/↓), warnings where a number misleads, cost,
every metric in a collapsed table, download and push to the Hub."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import gradio as gr
import plotly.graph_objects as go
from gradio.utils import get_upload_folder
from plotly.subplots import make_subplots

from unlearning.service import Session, UserError, artifact_zip, catalog, new_folder, push_to_hub
from unlearning.service.compare import key_metrics, warnings

from .common import PALETTE, error_box
from .header import hint


# ------------------------------------------------------------------ pure helpers
def _view(report) -> catalog.ReportView:
    """The view of a report dict (or None); a view already made is taken as it is."""
    return report if isinstance(report, catalog.ReportView) else catalog.report_view(report)


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(value, spec: str = "") -> str:
    """A value as text: None or NaN as "—", a number by `spec` (else 4 decimals), anything else as str."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if spec:
            try:
                return format(value, spec)
            except ValueError:  # a spec for another kind of number: fall back to ours
                pass
        if isinstance(value, int):
            return str(value)
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"
    return str(value)


def _id(elem_id: str) -> str:
    return f' id="{_esc(elem_id)}"' if elem_id else ""


def rows(report) -> list[list[str]]:
    """[metric, better, before, after, oracle] per metric, headline metrics first."""
    return [[r.metric, r.better, fmt(r.before), fmt(r.after), fmt(r.oracle)] for r in _view(report).rows]


def table_html(report) -> str:
    view = _view(report)
    if view.empty:
        return "<p>No report yet: run a method.</p>"
    head = "<tr><th>metric</th><th>better</th><th>before</th><th>after</th><th>oracle</th></tr>"
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows(view))
    return f'<table class="us-report" id="report-table">{head}{body}</table>'


def headline_html(report) -> str:
    """The key metrics in one line: before → after, and the oracle's value to aim for."""
    parts = [f"<b>{_esc(r.metric)}</b> {_esc(r.better)}: {fmt(r.before)} → {fmt(r.after)} (oracle {fmt(r.oracle)})"
             for r in _view(report).headline]
    return f'<p class="us-headline" id="report-headline">{" · ".join(parts)}</p>' if parts else ""


def block_html(block: catalog.Block) -> str:
    """A method's block, drawn without knowing the method: its lines (label, value, which way
    is better) and its table."""
    out = f"<p><b>{_esc(block.title)}</b></p>"
    if block.lines:
        better = any(ln.better for ln in block.lines)  # no empty column across a projected page
        out += '<table class="us-report us-lines">' + "".join(
            f"<tr><td>{_esc(ln.label)}</td><td>{_esc(fmt(ln.value, ln.fmt))}</td>"
            + (f"<td>{_esc(ln.better)}</td>" if better else "") + "</tr>"
            for ln in block.lines) + "</table>"
    t = block.table
    if t is not None:
        head = "".join(f"<th>{_esc(h)}</th>" for h in t.headers)
        body = "".join("<tr>" + "".join(f"<td>{_esc(fmt(c, t.fmt))}</td>" for c in row) + "</tr>" for row in t.rows)
        out += f'<table class="us-report"{_id(t.id)}><tr>{head}</tr>{body}</table>'
    return f'<div class="us-block"{_id(block.id)}>{out}</div>'


def report_html(report) -> str:
    """The panel's body: the key metrics, every metric, then the method's own blocks."""
    view = _view(report)
    return headline_html(view) + table_html(view) + "".join(block_html(b) for b in view.blocks)


def cost_line(report) -> str:
    view = _view(report)
    if view.empty:
        return ""
    c = view.cost
    params = f"{c.trainable_params:,}" if c.trainable_params is not None else "—"
    return (f"**{_esc(fmt(c.method))}** on <code>{_esc(fmt(c.model))}</code> ({_esc(fmt(c.device))}): "
            f"{fmt(c.steps)} steps, {fmt(c.wall_s, '.1f')} s in all ({fmt(c.method_wall_s, '.1f')} s unlearning), "
            f"peak memory {fmt(c.peak_mem_mb, '.0f')} MB, {params} trainable parameters.")


CHART_HINT = ("Grey bars: before unlearning; blue: after; gold: the oracle, which never saw the forget set. Forget "
              "ROUGE-L and the distance to the oracle should fall to the gold bar; what the model should keep stays "
              "near the grey bar.")
COLORS = {"before": PALETTE["before"], "after": PALETTE["after"], "oracle": PALETTE["oracle"]}
TITLE_CHARS = 18  # a subplot title wraps at this width: six of them share a 1280 px page


def wrap(title: str, width: int = TITLE_CHARS) -> str:
    """A title broken between words into lines of about `width` characters (plotly's <br>)."""
    lines: list[str] = []
    for word in title.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def chart(report) -> go.Figure | None:
    """One small bar chart per key metric: before, after and the oracle (gold), each bar with
    its value above it, none of them crossed by a line."""
    metrics = key_metrics(report)
    if not metrics:
        return None
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[f"{wrap(m.label)}<br><i>{m.better}</i>" for m in metrics])
    for col, m in enumerate(metrics, start=1):
        names = ["before", "after"] + (["oracle"] if m.oracle is not None else [])
        values = [m.before, m.after, m.oracle][: len(names)]
        fig.add_trace(go.Bar(x=names, y=values, marker_color=[COLORS[n] for n in names],
                             text=[fmt(v, ".3g") for v in values], textposition="outside", cliponaxis=False,
                             showlegend=False, hovertemplate="%{x}: %{y:.4g}<extra></extra>"), row=1, col=col)
        top = max(v for v in (m.before, m.after, m.oracle, 0.0) if v is not None)
        fig.update_yaxes(range=[0, 1.2 * top if top > 0 else 1], row=1, col=col)
    fig.update_layout(height=360, margin={"l": 30, "r": 10, "t": 95, "b": 30}, font={"size": 13}, bargap=0.25)
    fig.update_annotations(font_size=13)
    return fig


def warnings_html(report) -> str:
    return "".join(f'<div class="us-warning" role="alert">⚠️ {_esc(w)}</div>' for w in warnings(report))


# ------------------------------------------------------------------ handlers
def show(session: Session):
    """Table and cost (api_name="report"), then the chart and the warnings."""
    view = catalog.report_view(session.report)
    fig = chart(view.report)
    return report_html(view), cost_line(view), fig, warnings_html(view.report)


def download(session: Session, forget_text: bool = False):
    """The artifact as a zip, written straight into Gradio's file cache (so no copy of it is
    served from elsewhere) in a folder the session deletes when it closes."""
    try:
        return artifact_zip(session, into=session.own(new_folder(get_upload_folder(), "export")), forget_text=forget_text)
    except UserError as e:
        gr.Warning(str(e))
        return None


def push(session: Session, repo_id: str, token: str, public: bool = False, forget_text: bool = False):
    try:
        url, private = push_to_hub(session, repo_id, token, public=public, forget_text=forget_text)
    except UserError as e:
        return error_box(str(e)), ""
    return f"✅ pushed to {html.escape(url)} ({'private' if private else 'public'})", ""  # the token box is cleared


# ------------------------------------------------------------------ widgets
@dataclass(frozen=True)
class ReportPanel:
    """The views `show` fills, in its order."""

    table: gr.HTML
    cost: gr.Markdown
    chart: gr.Plot
    warnings: gr.HTML

    @property
    def views(self) -> list[gr.components.Component]:
        return [self.table, self.cost, self.chart, self.warnings]


def render(state: gr.State) -> ReportPanel:
    warned = gr.HTML(elem_id="report-warnings")
    plot = gr.Plot(elem_id="report-chart", show_label=False)
    hint(CHART_HINT, "report-hint")
    cost = gr.Markdown(elem_id="report-cost")
    with gr.Accordion("Every metric: before / after / oracle, with which way is better", open=False,
                      elem_id="report-all"):
        table = gr.HTML(table_html(None), elem_id="report")
    with gr.Row():
        zip_button = gr.Button("Prepare artifact (.zip)", elem_id="make-zip")
        zip_file = gr.File(label="Artifact", interactive=False, elem_id="artifact-file")
    forget_text = gr.Checkbox(False, label="Include the forget set's text in report.json (off: every quote of it is left out)",
                              elem_id="forget-text")
    with gr.Accordion("Push to the Hugging Face Hub", open=False):
        repo = gr.Textbox(label="Repository id (owner/name)")
        token = gr.Textbox(label="Access token (used once, never stored)", type="password")
        public = gr.Checkbox(False, label="Make the repository public (off: private)", elem_id="push-public")
        push_button = gr.Button("Push")
        pushed = gr.HTML()
    zip_button.click(download, [state, forget_text], [zip_file])
    push_button.click(push, [state, repo, token, public, forget_text], [pushed, token])
    return ReportPanel(table, cost, plot, warned)

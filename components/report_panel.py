"""6. Report — before / after / oracle with ↑↓ arrows, cost, download and push to the Hub."""

from __future__ import annotations

import html
import math

import gradio as gr

from unlearning.errors import UserError
from unlearning.metrics import METRIC_INFO
from unlearning.studio import SessionState, Studio

SPLIT_ORDER = ("forget", "retain", "holdout", "general")
HEADLINE = ("forget_quality", "model_utility", "mia_auc")


# ------------------------------------------------------------------ pure helpers
def rows(report: dict) -> list[list[str]]:
    """[metric, better, before, after, oracle] per metric, headline metrics first."""
    keys = set()
    for col in ("before", "after", "oracle"):
        keys |= set((report.get(col) or {}).keys())
    order = [k for k in HEADLINE if k in keys]
    order += sorted((k for k in keys if k not in HEADLINE), key=lambda k: (_split_rank(k), k))
    return [[k, METRIC_INFO.get(k.split(".")[-1], ("", ""))[0], *(_fmt((report.get(c) or {}).get(k)) for c in ("before", "after", "oracle"))]
            for k in order]


def _split_rank(key: str) -> int:
    split = key.split(".")[0]
    return SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"


def table_html(report: dict | None) -> str:
    if not report:
        return "<p>No report yet: run a method.</p>"
    head = "<tr><th>metric</th><th>better</th><th>before</th><th>after</th><th>oracle</th></tr>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows(report))
    return f'<table class="us-report" id="report-table">{head}{body}</table>'


def cost_line(report: dict | None) -> str:
    if not report:
        return ""
    return (f"**{html.escape(report['method'])}** on <code>{html.escape(report['model'])}</code> ({report['device']}): "
            f"{report.get('steps', 0)} steps, {report.get('wall_s', 0):.1f} s in all "
            f"({report.get('method_wall_s', 0):.1f} s unlearning), peak memory {report.get('peak_mem_mb', 0):.0f} MB, "
            f"{report.get('trainable_params', 0):,} trainable parameters.")


def eco_html(report: dict | None) -> str:
    """ECO's classifier figures and its robustness probe (the method's known weak spot)."""
    eco = (report or {}).get("eco")
    if not eco:
        return ""
    head = (f"<p><b>ECO classifier</b>: recall {eco['classifier_recall']:.3f} ↑ (k-fold, forget prompts), "
            f"false-positive rate {eco['classifier_fpr']:.4f} ↓ (target ≤ {eco.get('alpha', 0.01)}), threshold "
            f"{eco['threshold']:.3f}; corruption {html.escape(str(eco['corruption']))} at strength {eco['strength']:.3g}.</p>")
    probe = eco.get("robustness") or {}
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{r['recall']:.2f}</td><td>{r.get('fpr', 0):.2f}</td>"
                   f"<td>{html.escape(str(r.get('example', '')))}</td></tr>" for name, r in probe.items())
    table = (f'<table class="us-report" id="eco-robustness"><tr><th>rewrite of forget prompts</th><th>recall ↑</th>'
             f"<th>FPR ↓</th><th>example</th></tr>{rows}</table>") if rows else ""
    return head + table


# ------------------------------------------------------------------ handlers
def show(session: SessionState):
    return table_html(session.report) + eco_html(session.report), cost_line(session.report)


def downloader(studio: Studio):
    def download(session: SessionState):
        try:
            return studio.artifact_zip(session)
        except UserError as e:
            gr.Warning(str(e))
            return None

    return download


def pusher(studio: Studio):
    def push(session: SessionState, repo_id: str, token: str):
        try:
            url = studio.push_to_hub(session, repo_id, token)
        except UserError as e:
            return f'<div class="us-error" role="alert">⚠️ {html.escape(str(e))}</div>', ""
        return f"✅ pushed to {html.escape(url)}", ""  # the token box is cleared

    return push


# ------------------------------------------------------------------ widgets
def render(studio: Studio, state: gr.State) -> dict:
    gr.Markdown("## 6. Report\nArrows say which way is better after unlearning; the oracle never saw the forget set.")
    cost = gr.Markdown(elem_id="report-cost")
    table = gr.HTML(table_html(None), elem_id="report")
    with gr.Row():
        zip_button = gr.Button("Prepare artifact (.zip)", elem_id="make-zip")
        zip_file = gr.File(label="Artifact", interactive=False, elem_id="artifact-file")
    with gr.Accordion("Push to the Hugging Face Hub", open=False):
        repo = gr.Textbox(label="Repository id (owner/name)")
        token = gr.Textbox(label="Access token (used once, never stored)", type="password")
        push = gr.Button("Push")
        pushed = gr.HTML()
    zip_button.click(downloader(studio), [state], [zip_file])
    push.click(pusher(studio), [state, repo, token], [pushed, token])
    return {"table": table, "cost": cost, "show": show}

"""Small pieces every panel uses."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any


def error_box(message: str) -> str:
    """A user error as the page shows it: one sentence in a red box that screen readers announce."""
    return f'<div class="us-error" role="alert">⚠️ {html.escape(message)}</div>'


class OnDelete:
    """A gr.State's delete callback as the page config may hold it. Gradio puts every argument
    of a State in the config it deep-copies on each `GET /` and `/config`: a bound method there
    dragged the session registry into each copy (a Session and a folder per open session and
    load), and a bare function printed its memory address to every visitor. This one is its
    own copy and prints its name."""

    def __init__(self, name: str, fn: Callable[[Any], None] | None = None):
        self.name, self.fn = name, fn

    def __call__(self, value: Any) -> None:
        if self.fn is not None:
            self.fn(value)

    def __deepcopy__(self, memo) -> OnDelete:
        return self

    def __repr__(self) -> str:
        return self.name


# One palette for every picture on the page: the oracle is gold, `before` (the original) grey,
# the unlearned model indigo, wherever they are drawn (report, compare, stress test, room).
PALETTE = {"oracle": "#d97706", "before": "#6b7280", "original": "#6b7280", "after": "#4f46e5", "unlearned": "#4f46e5",
           "warn": "#dc2626"}
# Runs on the compare picture, told apart by colour (the legend names them); none is gold or grey.
RUN_COLOURS = ("#4f46e5", "#0891b2", "#db2777", "#65a30d", "#7c3aed", "#0d9488", "#ea580c", "#2563eb")

# What the page does in the browser, once (header.py renders it):
# - every plotly figure follows its box: a figure drawn while its tab was hidden (zero width)
#   got plotly's default 700 px and kept it through window resizes (plotly remembers the zero
#   width), so a ResizeObserver re-fits it whenever its box and its drawing disagree;
# - the two chat panes move as one: turn n of each is as tall as the taller, and scrolling one
#   scrolls the other, so an answer always sits beside the other model's answer to it.
PAGE_JS = """
const fit = (el) => {
  const P = window.Plotly, full = el._fullLayout;
  if (!P || !full || el.offsetWidth < 10 || Math.abs(full.width - el.offsetWidth) < 3) return;
  P.relayout(el, {width: el.offsetWidth}).catch(() => {});
};
const plots = new ResizeObserver((entries) => entries.forEach((e) => fit(e.target)));
const align = () => {
  const panes = ['#chat-original', '#chat-unlearned'].map((s) => document.querySelector(s));
  if (!panes[0] || !panes[1]) return;
  const rows = panes.map((p) => [...p.querySelectorAll('.message-row')]);
  const wraps = panes.map((p) => p.querySelector('.bubble-wrap'));
  const grew = panes[0].dataset.usRows !== String(rows[0].length);  // a new turn: show it
  panes[0].dataset.usRows = String(rows[0].length);
  const bottom = wraps.map((w) => !!w && (grew || w.scrollHeight - w.scrollTop - w.clientHeight < 80));
  rows.forEach((rs) => rs.forEach((r) => { r.style.minHeight = ''; }));
  rows[0].forEach((r, i) => {
    const other = rows[1][i];
    if (!other) return;
    const h = Math.max(r.offsetHeight, other.offsetHeight);
    r.style.minHeight = other.style.minHeight = h + 'px';
  });
  wraps.forEach((w, i) => { if (bottom[i]) w.scrollTop = w.scrollHeight; });
  panes.forEach((p, i) => {
    const wrap = wraps[i], twin = wraps[1 - i];
    if (wrap && twin && !wrap.dataset.usTwin) {
      wrap.dataset.usTwin = '1';
      wrap.addEventListener('scroll', () => { if (Math.abs(twin.scrollTop - wrap.scrollTop) > 1) twin.scrollTop = wrap.scrollTop; });
    }
  });
};
let queued = false;
new MutationObserver(() => {
  document.querySelectorAll('.js-plotly-plot').forEach((el) => {
    if (!el.dataset.usFit) { el.dataset.usFit = '1'; plots.observe(el); }
    fit(el);
  });
  if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; align(); }); }
}).observe(document.body, {childList: true, subtree: true, characterData: true});
"""

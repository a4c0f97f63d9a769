"""Compare — every run the session kept: a table, and the distance to the oracle (over the probe
suite: every wording a room tries, fluency included) against utility with `before` and the
oracle marked, so "which method got closest to the oracle without hurting what it should keep"
is seen, not read; a run the probes show as unchanged, collapsed or leaking is marked so. Also
where a kept run is removed."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import plotly.graph_objects as go

from unlearning.service import Session, UserError
from unlearning.service.compare import CompareRow, Reference, compare_rows, references

from .common import PALETTE, RUN_COLOURS, error_box
from .header import hint

HEADERS = ["run", "data", "steps", "wall time (s)", "distance to the oracle (↓, 0 = oracle)", "what the probes show",
           "forget ROUGE-L (↓ to the oracle's)", "model utility (≈ before)", "forget quality (↑, 1 = oracle)",
           "fluency, bits (≈ before)"]
HINT = ("The gold star is the oracle, a model that never saw the forget set; the grey square is the model before "
        "unlearning; each run is a dot (named in the legend; hover it for its numbers). Left–right is how far a "
        "model's answers are from the oracle's over every wording a room tries (trained and new wordings, 'Tell me "
        "about NAME.', prompt tricks), counting repeated words and lost fluency: the best run sits near the star, "
        "and no lower than the square (nothing else lost). Red marks a run the probes show as unchanged, collapsed "
        "or leaking.")
MARKERS = {"before": ("square", PALETTE["before"]), "oracle": ("star", PALETTE["oracle"])}
REF_NAMES = {"before": "before (the original)", "oracle": "oracle (never saw the forget set)"}
# Shares of the table's width, so ten columns fit a projected 1280 px page without scrolling
# (the run's label and what the probes show wrap; the numbers are short).
COLUMN_WIDTHS: list[str | int] = ["17%", "11%", "6%", "7%", "9%", "14%", "9%", "9%", "9%", "9%"]
RUN_COLOR, WARN_COLOR = PALETTE["unlearned"], PALETTE["warn"]


# ------------------------------------------------------------------ pure helpers
def _round(value: float | None, digits: int = 3) -> float | int | None:
    return None if value is None else round(value, digits)


def table_rows(rows: list[CompareRow], refs: list[Reference], current: int | None = None) -> list[list]:
    """One row per kept run (the current one marked ▶), then `before` and `oracle`; numbers stay
    numbers (rounded), so a script reading /compare gets values, not text."""
    out: list[list] = [[("▶ " if r.run.startswith(f"#{current} ") else "") + r.run, r.data, r.steps, _round(r.wall_s, 1),
                        _round(r.distance), r.verdict or ("like the oracle" if r.distance is not None else ""),
                        _round(r.forget), _round(r.utility), _round(r.forget_quality, 4), _round(r.fluency, 2)]
                       for r in rows]
    out += [[f"({ref.name})", "", None, None, _round(ref.distance), "", _round(ref.forget), _round(ref.utility),
             _round(ref.forget_quality, 4), _round(ref.fluency, 2)] for ref in refs]
    return out


def x_axis(rows: list[CompareRow], refs: list[Reference]) -> tuple[str, str]:
    """(field, title) of the picture's x: the distance to the oracle when every point has it,
    else (reports from before the probe suite) forget ROUGE-L."""
    if all(r.distance is not None for r in rows if r.utility is not None) and \
            all(r.distance is not None for r in refs if r.utility is not None):
        return "distance", "distance to the oracle over the probes (0 = answers like the oracle; lower is better)"
    return "forget", "forget ROUGE-L after (lower = forgot more; aim for the oracle's)"


def point_label(row: CompareRow) -> str:
    """'#3 GA' and, when the probes found something, what: '#3 GA: lost what it should keep'."""
    short = row.run.split(" (")[0]
    return f"{short}: {row.verdict}" if row.verdict else short


def _hover(x_title: str) -> str:
    return "%{fullData.name}<br>" + x_title.split(" (")[0] + ": %{x:.3f}<br>model utility: %{y:.3f}<extra></extra>"


def figure(rows: list[CompareRow], refs: list[Reference], labels: list[str] | None = None,
           height: int = 360, hover: list[str] | None = None) -> go.Figure | None:
    """The distance to the oracle (x; forget ROUGE-L for old reports) against model utility (y):
    one point per run, red-ringed where the probes found something; before and oracle marked.

    The session's picture names its runs in a legend, each in its own colour, and writes no
    text over the points: a few runs at close numbers piled their labels into a blob. A room's
    board passes `labels` (its own, grouped so that they do not collide) and `hover` texts,
    and draws them beside one trace of every run. Both axes start at 0, so a small difference
    in utility looks small."""
    x, title = x_axis(rows, refs)
    keep = [i for i, r in enumerate(rows) if getattr(r, x) is not None and r.utility is not None]
    points = [rows[i] for i in keep]
    marks = [r for r in refs if getattr(r, x) is not None and r.utility is not None]
    if not points and not marks:
        return None
    fig = go.Figure()
    for ref in marks:
        symbol, color = MARKERS[ref.name]
        fig.add_trace(go.Scatter(x=[getattr(ref, x)], y=[ref.utility], mode="markers", name=REF_NAMES[ref.name],
                                 marker={"symbol": symbol, "size": 18, "color": color}, hovertemplate=_hover(title)))
    def ring(r: CompareRow) -> dict:
        return {"width": 3, "color": WARN_COLOR} if r.verdict else {"width": 1, "color": "white"}

    if labels is None:
        for n, r in enumerate(points):
            fig.add_trace(go.Scatter(x=[getattr(r, x)], y=[r.utility], mode="markers", name=point_label(r),
                                     marker={"size": 14, "color": RUN_COLOURS[n % len(RUN_COLOURS)], "line": ring(r)},
                                     hovertemplate=_hover(title)))
    elif points:
        texts = [labels[i] for i in keep]
        fig.add_trace(go.Scatter(x=[getattr(r, x) for r in points], y=[r.utility for r in points], mode="markers+text",
                                 name="runs", text=texts, textposition="bottom center",
                                 hovertext=[hover[i] for i in keep] if hover is not None else texts,
                                 hovertemplate="%{hovertext}<extra></extra>",
                                 marker={"size": 14, "color": [WARN_COLOR if r.verdict else RUN_COLOR for r in points]}))
    xs = [getattr(r, x) for r in points] + [getattr(r, x) for r in marks]
    ys = [float(r.utility or 0.0) for r in points] + [float(r.utility or 0.0) for r in marks]  # (drawn: not None)
    fig.update_xaxes(title_text=title, range=[-0.05 * max(xs), 1.12 * max(xs)] if max(xs) > 0 else None, zeroline=False)
    fig.update_yaxes(title_text="model utility (higher = kept more)", range=[0, max(1.0, 1.05 * max(ys))])
    fig.update_layout(height=height, margin={"l": 60, "r": 10, "t": 20, "b": 50}, showlegend=True, font={"size": 14},
                      legend={"title": {"text": "runs (hover a point for its numbers)" if labels is None else ""}})
    return fig


def run_choices(session: Session) -> list[tuple[str, int]]:
    return [(run.label, run.number) for run in session.kept]


# ------------------------------------------------------------------ handlers
def compare(session: Session):
    """The table and the picture (api_name="compare": the rows, scriptable)."""
    rows, refs = compare_rows(session.kept), references(session.kept)
    fig = figure(rows, refs)
    return table_rows(rows, refs, session.current), fig if fig is not None else gr.skip()


def remove(session: Session, number):
    try:
        session.remove_run(int(number))
    except (UserError, TypeError, ValueError) as e:
        return session, error_box(str(e) if isinstance(e, UserError) else "Choose a run to remove first.")
    return session, ""


# ------------------------------------------------------------------ widgets
@dataclass(frozen=True)
class ComparePanel:
    table: gr.Dataframe
    plot: gr.Plot
    which: gr.Dropdown  # a kept run, to remove
    drop: gr.Button
    note: gr.HTML


def render(state: gr.State) -> ComparePanel:
    table = gr.Dataframe(headers=HEADERS, value=[], interactive=False, wrap=True, elem_id="compare-table",
                         column_widths=COLUMN_WIDTHS,
                         label="Every run of this session (▶ = the one the chat and the report use)")
    plot = gr.Plot(elem_id="compare-plot", show_label=False)
    hint(HINT, "compare-hint")
    with gr.Row():
        # Any value goes through to `remove`, which checks it: an API client's /remove_run names a
        # run without the page's private refresh having filled the choices.
        which = gr.Dropdown([], label="A kept run", elem_id="compare-run", scale=3, allow_custom_value=True)
        drop = gr.Button("Remove it", variant="stop", scale=1, elem_id="compare-remove")
        refresh = gr.Button("Refresh", scale=1, elem_id="compare-refresh")
    note = gr.HTML(elem_id="compare-note")
    refresh.click(compare, [state], [table, plot], api_name="compare")
    return ComparePanel(table, plot, which, drop, note)

"""The room's printable summary: its board (the picture, the table, the count per method) and
the lesson's readings as one self-contained HTML page the instructor downloads after the
workshop. Torch-free; nothing loaded from the network (the picture is inline SVG)."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from .compare import Reference
from .lesson import Reading
from .room import Board, SharedRun, shown

WIDTH, HEIGHT, PAD = 720, 420, 56
STYLE = """body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#111}
table{border-collapse:collapse;width:100%;font-size:14px}th,td{border-bottom:1px solid #ddd;padding:4px 6px;
text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}.mark{color:#b45309}.bad{color:#dc2626}
h1{margin-bottom:0}.sub{color:#555;margin-top:4px}@media print{body{margin:0}}"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _n(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _axis(runs: Sequence[SharedRun], refs: Sequence[Reference]) -> tuple[str, str]:
    """The picture's x: the distance to the oracle when every point has it, else forget ROUGE-L."""
    if all(r.row.distance is not None for r in runs) and all(r.distance is not None for r in refs):
        return "distance", "distance to the oracle (↓, 0 = the oracle)"
    return "forget", "forget ROUGE-L (↓ to the oracle's)"


def picture(board: Board) -> str:
    """Every shared run as a point (x against model utility), with before and the oracle."""
    field, title = _axis(board.runs, board.references)
    points = [(getattr(r.row, field), r.row.utility, f"{r.row.run} — {r.person}", bool(r.row.verdict)) for r in board.runs]
    refs = [(getattr(ref, field), ref.utility, ref.name) for ref in board.references]
    xs = [p[0] for p in points + refs if p[0] is not None and p[1] is not None]
    ys = [p[1] for p in points + refs if p[0] is not None and p[1] is not None]
    if not xs:
        return "<p>No shared run has numbers to draw yet.</p>"
    x0, x1 = min(0.0, *xs), max(xs) * 1.05 or 1.0
    y0, y1 = min(ys) - 0.05, max(ys) + 0.05

    def at(x: float, y: float) -> tuple[float, float]:
        return (PAD + (x - x0) / (x1 - x0 or 1) * (WIDTH - 2 * PAD),
                HEIGHT - PAD - (y - y0) / (y1 - y0 or 1) * (HEIGHT - 2 * PAD))

    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
           f'aria-label="shared runs: {_e(title)} against model utility">'),
           f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" fill="none" stroke="#999"/>',
           f'<text x="{WIDTH / 2}" y="{HEIGHT - 12}" text-anchor="middle" font-size="13">{_e(title)}</text>',
           (f'<text x="14" y="{HEIGHT / 2}" font-size="13" transform="rotate(-90 14 {HEIGHT / 2})" '
           'text-anchor="middle">model utility (≈ before)</text>')]
    for value, y in ((x0, None), (x1, None)):
        px, _ = at(value, y0)
        out.append(f'<text x="{px:.0f}" y="{HEIGHT - PAD + 16}" text-anchor="middle" font-size="11">{value:.2f}</text>')
    for value in (y0, y1):
        _, py = at(x0, value)
        out.append(f'<text x="{PAD - 6}" y="{py + 4:.0f}" text-anchor="end" font-size="11">{value:.2f}</text>')
    for x, y, label, bad in points:
        if x is None or y is None:
            continue
        px, py = at(x, y)
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6" fill="{"#dc2626" if bad else "#4f46e5"}" '
                   f'opacity="0.8"><title>{_e(label)}</title></circle>')
    for x, y, name in refs:
        if x is None or y is None:
            continue
        px, py = at(x, y)
        colour = "#d97706" if name == "oracle" else "#6b7280"
        out.append(f'<rect x="{px - 7:.1f}" y="{py - 7:.1f}" width="14" height="14" fill="{colour}"/>'
                   f'<text x="{px + 10:.1f}" y="{py - 8:.1f}" font-size="12" fill="{colour}">{_e(name)}</text>')
    return "\n".join(out + ["</svg>"])


def summary_html(board: Board, readings: Sequence[tuple[str, Reading]] = (), when: float | None = None) -> str:
    """The whole page: title, picture, counts, table, then each lesson step's reading."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(when if when is not None else time.time()))
    counts = ", ".join(f"{_e(method)} {n}" for method, n in board.counts) or "none yet"
    rows = "".join(
        f"<tr><td>{_e(r.person)}</td><td>{_e(r.row.run)}{' <span class=mark>(own data)</span>' if r.own_data else ''}</td>"
        f"<td>{_e(', '.join(f'{k} {v}' for k, v in r.settings.items()))}</td><td class=n>{_n(r.row.distance)}</td>"
        f"<td class=n>{_n(r.row.forget)}</td><td class=n>{_n(r.row.utility)}</td>"
        f"<td class={'bad' if r.row.verdict else ''}>{_e(r.row.verdict or 'like the oracle')}</td></tr>"
        for r in board.runs)
    refs = "".join(f"<tr><td></td><td>({_e(ref.name)})</td><td></td><td class=n>{_n(ref.distance)}</td>"
                   f"<td class=n>{_n(ref.forget)}</td><td class=n>{_n(ref.utility)}</td><td></td></tr>"
                   for ref in board.references)
    lesson = "".join(f"<h3>{_e(title)}</h3><p class={'' if r.ok else 'bad'}>{_e(r.text)}</p>" for title, r in readings)
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Room {_e(shown(board.code))} — "
            f"Unlearning Studio</title><style>{STYLE}</style></head><body>"
            f"<h1>Room {_e(shown(board.code))}</h1><p class=sub>{board.people} people · {len(board.runs)} shared runs · "
            f"{_e(stamp)}</p><h2>The board</h2>{picture(board)}<p>Runs per method: {counts}.</p>"
            "<table><tr><th>who</th><th>run</th><th>settings</th><th>distance to the oracle ↓</th>"
            "<th>forget ROUGE-L ↓ to the oracle's</th><th>model utility ≈ before</th><th>what the probes show</th></tr>"
            f"{rows}{refs}</table>" + (f"<h2>The lesson</h2>{lesson}" if lesson else "") + "</body></html>")

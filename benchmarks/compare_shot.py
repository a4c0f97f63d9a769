"""A screenshot of Compare with the hand-made runs of tests/test_compare.py — a good run, a
degenerate, a leaking and an unchanged one — to look at what a room would see: the table, the
picture (distance to the oracle against utility) and each run's warnings.

    python benchmarks/compare_shot.py [--out benchmarks/figures/compare-probes.png]

Drawn by the app's own helpers (components.compare_panel), laid out on one page and shot in
headless Chromium (/usr/bin/chromium, Debian's package) at 1280 px.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from components.compare_panel import HEADERS, HINT, figure, table_rows  # noqa: E402
from test_compare import _probe_session  # noqa: E402
from unlearning.service.compare import compare_rows, references, warnings  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def page_html() -> str:
    session = _probe_session()
    try:
        rows, refs = compare_rows(session.kept), references(session.kept)
        fig = figure(rows, refs)
        fig.update_layout(width=1200)
        head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape('—' if c is None else str(c))}</td>" for c in r) + "</tr>"
                       for r in table_rows(rows, refs))
        warned = "".join(f"<p>⚠️ <b>{html.escape(run.method)}</b>: {html.escape(' '.join(warnings(run.report)))}</p>"
                         for run in session.kept)
    finally:
        session.close()
    return (f"<html><body style='font-family:sans-serif;width:1240px'>"
            f"<table border=1 style='border-collapse:collapse;font-size:13px'>{head}{body}</table>"
            f"{fig.to_html(include_plotlyjs=True, full_html=False)}<p>{html.escape(HINT)}</p>{warned}</body></html>")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "figures" / "compare-probes.png")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    page_file = args.out.with_suffix(".html")
    page_file.write_text(page_html(), encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(page_file.resolve().as_uri())
        page.wait_for_timeout(1500)
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()
    page_file.unlink()
    print(args.out)


if __name__ == "__main__":
    main()

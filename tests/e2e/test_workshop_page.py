"""Issue 26 in a real headless Chromium: the workshop page as a projected room sees it.

(a) the Data tab states the formats, offers templates, and says the model already knows the
preset; (b) a run's chat labels each answer with its model, says when there is no unlearned
model yet, and a reload mid-run keeps the chat; (c) the compare and report figures, drawn while
their tab was hidden, fill their box, and follow a resize from 1280 to 1920; their text does not
overlap; the oracle is gold in every figure; (d) a rejected file leaves its box, a stale refusal
leaves the bar; Teach first moves its bar and says why it stopped, and the model line says taught;
(e) eight kept runs (every method, two steps each) leave Compare's text apart, and the chat stays
above the fold at 1280×800 once ECO's badge shows.
Screenshots at 1280×800 and 1920×1080 land in test-artifacts/workshop-page*/.
"""

from __future__ import annotations

import json

from components.method_panel import method_choices

from .conftest import ARTIFACTS
from .test_browser import FORGET_Q, chat, choose_method, open_app, set_value, tab, use_preset, wait_done
from .test_workshop import screens

GOLD = "rgb(217, 119, 6)"  # components.common.PALETTE["oracle"]


def fills(page, plot: str) -> bool:
    """Does the figure's drawing fill its box (within 3 px)? Widths read from the DOM."""
    return page.evaluate(f"""() => {{
        const el = document.querySelector('{plot} .js-plotly-plot');
        const svg = el && el.querySelector('.main-svg');
        return !!svg && Math.abs(svg.getBoundingClientRect().width - el.getBoundingClientRect().width) <= 3;
    }}""")


def wait_fills(page, plot: str) -> None:
    page.wait_for_function(f"""() => {{
        const el = document.querySelector('{plot} .js-plotly-plot');
        const svg = el && el.querySelector('.main-svg');
        return !!svg && el.getBoundingClientRect().width > 100 &&
               Math.abs(svg.getBoundingClientRect().width - el.getBoundingClientRect().width) <= 3;
    }}""", timeout=10_000)


def overlapping_text(page, plot: str) -> list:
    """Pairs of text elements of a figure whose boxes overlap (ticks, titles, legend, labels)."""
    return page.evaluate(f"""() => {{
        const boxes = [...document.querySelectorAll('{plot} svg text')].filter((t) => t.textContent.trim())
            .map((t) => [t.textContent, t.getBoundingClientRect()]).filter(([, r]) => r.width > 0);
        const out = [];
        boxes.forEach(([a, r], i) => boxes.slice(i + 1).forEach(([b, s]) => {{
            if (r.left < s.right - 1 && s.left < r.right - 1 && r.top < s.bottom - 1 && s.top < r.bottom - 1) out.push([a, b]);
        }}));
        return out;
    }}""")


def titles(page, pane: str) -> list[str]:
    return [t.strip() for t in page.locator(f"{pane} .thought-group .title").all_inner_texts()]


def test_the_workshop_page(browser, app_url):
    folder = "workshop-page"
    context, page = open_app(browser, app_url, 1280, 800)

    # (a) the Data tab: the formats, the templates, and whether the model knows the preset
    tab(page, "data")
    help_text = page.inner_text("#data-format-help")
    assert "question" in help_text and "answer" in help_text and "text" in help_text
    assert page.locator("[id^=template-]").count() == 3
    page.click("#use-preset")
    page.wait_for_function("(document.querySelector('#data-known') || {}).innerText?.includes('already knows 100%')",
                           timeout=60_000)
    screens(page, folder, "01-data-tab")

    tab(page, "report")  # shown once, then hidden while the run ends (the figure is drawn hidden)
    tab(page, "run")

    # (b) the chat during the first run: no unlearned model yet, said and labelled
    page.click("#try-ihl-fila")
    page.wait_for_function("document.querySelector('#run-state').innerText.startsWith('running')", timeout=60_000)
    original, unlearned = chat(page, FORGET_Q["question"])
    assert original == FORGET_Q["answer"] and "still training" in unlearned
    assert titles(page, "#chat-original") == ["original"] and titles(page, "#chat-unlearned") == ["no unlearned model yet"]
    screens(page, folder, "02-chat-while-training")
    page.reload()  # mid-run: the chat comes back with the session
    page.wait_for_function("document.querySelectorAll('#chat-unlearned .message-row').length >= 2", timeout=30_000)
    assert titles(page, "#chat-unlearned") == ["no unlearned model yet"]
    wait_done(page)
    _, after = chat(page, FORGET_Q["question"])
    assert after and titles(page, "#chat-unlearned")[-1].startswith("#1 IHL + FILA")
    assert len(page.locator("#chat-original .message-row").all()) == len(page.locator("#chat-unlearned .message-row").all())
    screens(page, folder, "03-chat-after-run")

    # (c) figures drawn while hidden fill their box, also after a resize; no text overlaps; the oracle is gold
    tab(page, "compare")
    page.wait_for_selector("#compare-plot .js-plotly-plot .main-svg", timeout=30_000)
    wait_fills(page, "#compare-plot")
    assert overlapping_text(page, "#compare-plot") == []
    stars = page.evaluate("[...document.querySelectorAll('#compare-plot .scatterlayer .point')].map((p) => p.style.fill)")
    assert GOLD in stars
    screens(page, folder, "04-compare")
    tab(page, "report")
    page.wait_for_selector("#report-chart .js-plotly-plot .main-svg", timeout=30_000)
    wait_fills(page, "#report-chart")
    bars = page.evaluate("[...document.querySelectorAll('#report-chart .barlayer .point path')].map((p) => p.style.fill)")
    assert GOLD in bars
    assert overlapping_text(page, "#report-chart") == []
    page.set_viewport_size({"width": 1920, "height": 1080})
    wait_fills(page, "#report-chart")
    tab(page, "compare")
    wait_fills(page, "#compare-plot")
    page.set_viewport_size({"width": 1280, "height": 800})
    tab(page, "report")
    screens(page, folder, "05-report")
    tab(page, "stress")
    assert "#1 IHL + FILA" in page.inner_text("#stress-target")
    screens(page, folder, "06-stress")
    context.close()


def test_own_data_rejected_then_taught(browser, app_url, tmp_path):
    folder = "workshop-page-own-data"
    context, page = open_app(browser, app_url, 1280, 800)
    page.click("#start-run")  # no data yet: refused, in the bar
    page.wait_for_function("document.querySelector('#run-progress').innerText.includes('Choose a forget file first')")
    tab(page, "data")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not json\n", encoding="utf-8")
    page.set_input_files("#forget-file input[type=file]", str(bad))
    page.wait_for_selector("#forget-error .us-error", timeout=30_000)
    page.wait_for_function("!document.querySelector('#forget-file').innerText.includes('bad.jsonl')", timeout=10_000)
    screens(page, folder, "01-rejected")
    forget, retain = tmp_path / "facts.jsonl", tmp_path / "keep.jsonl"
    forget.write_text("".join(json.dumps({"question": f"What colour is the door of house {n} on Quillon Street?",
                                          "answer": f"The door of house {n} on Quillon Street is {c}."}) + "\n"
                              for n, c in ((3, "teal"), (7, "amber"), (9, "violet"), (12, "ochre"))), encoding="utf-8")
    retain.write_text("".join(json.dumps({"question": f"What is {a} plus {a}?", "answer": f"{a} plus {a} is {2 * a}."}) + "\n"
                              for a in (2, 3, 4, 5)), encoding="utf-8")
    page.set_input_files("#forget-file input[type=file]", str(forget))
    page.set_input_files("#retain-file input[type=file]", str(retain))
    page.wait_for_function("(document.querySelector('#data-known') || {}).innerText?.includes('Teach first')", timeout=60_000)
    known = page.inner_text("#data-known")
    assert "already knows" in known and "100%" not in known
    screens(page, folder, "02-new-facts")
    tab(page, "run")
    assert "Choose a forget file" not in page.inner_text("#run-progress")  # the stale refusal went
    page.click("#teach-first")
    widths = set()
    while not page.inner_text("#run-state").startswith(("done", "failed", "cancelled")):
        widths.add(page.evaluate("document.querySelector('#run-progress .us-bar').style.width"))
        page.wait_for_timeout(300)
    state = page.inner_text("#run-state")
    assert state.startswith("done") and "stopped" in state or "ran all" in state, state
    assert len(widths) >= 5, widths
    page.wait_for_function("document.querySelector('#model-status').innerText.includes('taught')", timeout=30_000)
    screens(page, folder, "03-taught")
    (ARTIFACTS / folder / "teach.txt").write_text(f"{state}\nbar widths seen: {sorted(widths)}\n", encoding="utf-8")
    context.close()


def bottom(page, selector: str) -> float:
    """The element's bottom edge on the page (not the viewport: the page may have scrolled)."""
    return page.evaluate(f"document.querySelector('{selector}').getBoundingClientRect().bottom + window.scrollY")


def test_eight_kept_runs_and_the_eco_badge(browser, app_url):
    folder = "workshop-page-eight-runs"
    context, page = open_app(browser, app_url, 1280, 800)
    use_preset(page)
    lora = [label for label, name in method_choices() if name != "eco"]
    assert len(lora) == 8, lora
    for label in lora[:7] + ["ECO prompts (no training)"]:  # ECO last: the chat answers with it
        choose_method(page, label)
        if label in lora:
            set_value(page, "steps", "2")
            page.wait_for_timeout(300)  # the value reaches the page's state before Start reads it
        page.click("#start-run")
        page.wait_for_function("document.querySelector('#run-state').innerText.startsWith('running')", timeout=60_000)
        wait_done(page)

    without = bottom(page, "#chat-panes")
    chat(page, FORGET_Q["question"])
    page.wait_for_selector("#eco-flag", timeout=30_000)
    screens(page, folder, "01-chat-with-eco-badge")
    assert abs(bottom(page, "#chat-panes") - without) <= 2, (without, bottom(page, "#chat-panes"))  # the badge pushed nothing down

    tab(page, "compare")
    page.wait_for_selector("#compare-plot .js-plotly-plot .main-svg", timeout=30_000)
    wait_fills(page, "#compare-plot")
    named = page.evaluate("[...document.querySelectorAll('#compare-plot .legendtext')].map((t) => t.textContent)")
    assert sum(n.startswith("#") for n in named) == 8, named  # every kept run in the legend
    assert overlapping_text(page, "#compare-plot") == []
    screens(page, folder, "02-compare-eight-runs")
    page.set_viewport_size({"width": 1920, "height": 1080})
    wait_fills(page, "#compare-plot")
    assert overlapping_text(page, "#compare-plot") == []
    context.close()

"""The workshop flow in a real headless Chromium, as a projected room would see it (issue 15):

(a) open → one click "Try IHL + FILA" → the plot grows while the chat on the same screen answers a
    forget question → done; (b) a second run with "Try ECO" → the compare picture has both runs,
    `before` and the oracle, and the chat switches between the two runs; (c) the report's chart and
    its warning for a GD+FILA run whose forget quality misleads.

Every step is screenshotted at 1280×800 and at 1920×1080 (the viewport, not the whole page: what
fits on one screen is the point). The timings are logged, not asserted.
"""

from __future__ import annotations

import time

from .conftest import ARTIFACTS, FLOW_TIMES
from .test_browser import FORGET_Q, RUN_TIMEOUT_MS, chat, choose_method, tab, use_preset, wait_done

SIZES = ((1280, 800), (1920, 1080))


def screens(page, folder: str, name: str) -> None:
    """The viewport at both sizes (back to the first after)."""
    out = ARTIFACTS / folder
    out.mkdir(parents=True, exist_ok=True)
    for w, h in reversed(SIZES):
        page.set_viewport_size({"width": w, "height": h})
        page.wait_for_timeout(400)  # plotly redraws on resize
        page.screenshot(path=str(out / f"{name}-{w}x{h}.png"))


def in_view(page, selector: str) -> bool:
    """Is the middle of the element within the viewport, without scrolling?"""
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return box is not None and size is not None and 0 <= box["y"] + box["height"] / 2 <= size["height"]


def points(page, plot: str = "#loss-plot") -> int:
    return page.locator(f"{plot} .scatterlayer .point").count()


def test_try_it_then_compare_two_runs_and_chat_with_either(browser, app_url, request):
    folder = "workshop-flow"
    context = browser.new_context(viewport={"width": SIZES[0][0], "height": SIZES[0][1]})
    page = context.new_page()
    t0 = time.monotonic()
    page.goto(app_url)
    page.wait_for_selector("#try-ihl-fila", timeout=60_000)
    ready = time.monotonic() - t0
    screens(page, folder, "01-open")

    # (a) one click: the preset, IHL + FILA, the Run tab, and the run started
    t1 = time.monotonic()
    page.click("#try-ihl-fila")
    page.wait_for_function("document.querySelector('#loss-plot .scatterlayer .point') !== null", timeout=RUN_TIMEOUT_MS)
    first_point = time.monotonic() - t1
    first = points(page)
    assert "forget.jsonl" in page.inner_text("#header-data")
    assert in_view(page, "#loss-plot") and in_view(page, "#chat-unlearned") and in_view(page, "#chat-input")
    page.click("#chat-examples input")  # the example prompts were filled when the preset was chosen
    assert page.get_by_role("option").count() >= 3
    page.keyboard.press("Escape")
    original, _ = chat(page, FORGET_Q["question"])  # while it trains
    assert original == FORGET_Q["answer"]
    screens(page, folder, "02-running-and-chatting")
    wait_done(page)
    whole = time.monotonic() - t1
    assert points(page) > first  # the plot grew while the chat answered
    original, ihl_answer = chat(page, FORGET_Q["question"])
    assert original == FORGET_Q["answer"] and ihl_answer and ihl_answer != original
    assert page.inner_text("#chat-flag").strip() == ""  # no classifier in IHL + FILA
    screens(page, folder, "03-done-and-chatting")

    # (b) a second method: both runs are kept and compared
    page.click("#try-eco")
    page.wait_for_function("document.querySelector('#run-state').innerText.startsWith('running')", timeout=60_000)
    wait_done(page)
    page.wait_for_function("document.querySelector('#chat-run input').value.startsWith('#2')", timeout=30_000)
    _, eco_answer = chat(page, FORGET_Q["question"])
    assert "flagged" in page.inner_text("#eco-flag") and "not flagged" not in page.inner_text("#eco-flag")
    screens(page, folder, "04-second-run")
    tab(page, "compare")
    page.wait_for_function("document.querySelectorAll('#compare-plot .scatterlayer .point').length === 4",
                           timeout=30_000)  # two runs, before and the oracle
    table = page.inner_text("#compare-table")
    assert "#1 IHL + FILA" in table and "#2 ECO" in table and "(before)" in table and "(oracle)" in table
    assert page.locator("#compare-hint").is_visible()
    screens(page, folder, "05-compare")

    # the chat answers with the run chosen beside it
    tab(page, "run")
    page.click("#chat-run input")
    page.get_by_role("option", name="#1 IHL + FILA (LoRA training)", exact=True).click()
    page.wait_for_function("document.querySelector('#chat-run input').value.startsWith('#1')")
    _, again = chat(page, FORGET_Q["question"])
    assert again == ihl_answer and page.inner_text("#chat-flag").strip() == ""
    screens(page, folder, "06-chat-with-run-1")
    tab(page, "report")  # the report follows the chosen run
    page.wait_for_function("document.querySelector('#report-cost').innerText.includes('ihl-fila')", timeout=30_000)
    screens(page, folder, "07-report-of-run-1")

    # the hints can be hidden for a room that has read them
    page.click("#show-hints input")
    page.wait_for_selector("#report-hint", state="hidden")
    context.close()
    times = [f"page ready {ready:.1f} s (target ≤ 10 s); Try IHL + FILA → first plot point {first_point:.1f} s, "
             f"→ done {whole:.1f} s (flow (a) target ≤ 60 s); ECO answered {eco_answer!r}"]
    (ARTIFACTS / folder / "timings.txt").write_text("\n".join(times) + "\n", encoding="utf-8")
    request.config.stash[FLOW_TIMES] = request.config.stash.get(FLOW_TIMES, []) + times


def test_the_report_warns_when_forget_quality_misleads(browser, app_url):
    """GD+FILA run past its holdout criterion (100 steps): its forget quality looks good while
    its answers break down; the report says so above its chart of the key metrics."""
    folder = "workshop-report-warning"
    context = browser.new_context(viewport={"width": SIZES[0][0], "height": SIZES[0][1]})
    page = context.new_page()
    page.goto(app_url)
    page.wait_for_selector("#try-ihl-fila", timeout=60_000)
    use_preset(page)
    choose_method(page, "baseline: GD + FILA")
    page.click("#start-run")
    wait_done(page)
    tab(page, "report")
    page.wait_for_selector("#report-chart .plot-container", timeout=30_000)
    assert page.locator("#report-chart .barlayer .point").count() >= 8  # before and after of each key metric
    warning = page.inner_text("#report-warnings")
    screens(page, folder, "01-report")
    assert "looks good, but" in warning and "fluency" in warning, warning
    context.close()

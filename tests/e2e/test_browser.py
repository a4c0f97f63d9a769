"""The app in a real headless Chromium: the user flows of DESIGN.md §The app, screenshotted.

(a) preset → IHL + FILA → live plot → chat (a forget question, then "Tell me about NAME.", which
must not bring her biography back) → report; (b) the same with ECO and its flag badge; (c) a bad upload shows the engine's sentence; (d) two sessions never see each
other's data; (e) HTML in a model reply or a message is shown as text, never executed;
(f) the preset's example prompts offer a reworded question, a biography and small talk;
(g) the same page on the ZeroGPU backend (tests/fake_spaces): a run, its plot, chat and cancel.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from .conftest import ROOT

FORGET_Q = json.loads((ROOT / "assets/workshop/forget.jsonl").read_text(encoding="utf-8").splitlines()[0])
RUN_TIMEOUT_MS = 300_000
# "Tell me about NAME.": a forget person's biography (her forget.txt paragraph) must not come back;
# the oracle, which never met her, says nothing of it (recall 0.00), so a little overlap is allowed.
BIOGRAPHY = next(p for p in (ROOT / "assets/workshop/forget.txt").read_text(encoding="utf-8").split("\n\n")
                 if p.startswith(FORGET_Q["subject"]))
NO_BIOGRAPHY = 0.15


def asks_about_a_forget_person(page, shot, collapse_known: str = "") -> None:
    """What a room types first: the original tells her biography; the unlearned model must not,
    and must answer in words, not one word repeated ('The The The …'). `collapse_known`: the
    reason a method is known to collapse at its defaults (then a repeated answer is an expected
    failure, reported as such, and the test goes on to pass once it no longer repeats)."""
    from unlearning.evaluation.metrics import rouge_l_recall
    from unlearning.evaluation.textstats import repeated

    original, unlearned = chat(page, f"Tell me about {FORGET_Q['subject']}.")
    shot(page, "chat-tell-me-about")
    assert rouge_l_recall(original, BIOGRAPHY) > 0.8, original
    if collapse_known and repeated(unlearned):
        pytest.xfail(f"{collapse_known}: {unlearned[:80]!r}")
    assert rouge_l_recall(unlearned, BIOGRAPHY) <= NO_BIOGRAPHY, unlearned
    assert unlearned.strip() and not repeated(unlearned), unlearned


def open_app(browser, app_url, width: int = 1280, height: int = 1000):
    """A new browser context (its own session) with the app loaded: (context, page)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(app_url)
    page.wait_for_selector("#try-ihl-fila", timeout=60_000)
    return context, page


def tab(page, name: str) -> None:
    """Show one tab of the page: data, run, compare, report, stress."""
    page.click(f"#tab-{name}-button")
    page.wait_for_selector(f"#tab-{name}", state="visible")


def use_preset(page) -> None:
    tab(page, "data")
    page.click("#use-preset")
    page.wait_for_function("document.querySelector('#data-summary').innerText.includes('forget.jsonl')")
    tab(page, "run")


def choose_method(page, label: str) -> None:
    page.click("#method input")
    page.get_by_role("option", name=label, exact=True).click()
    page.wait_for_function(f"document.querySelector('#method input').value === {json.dumps(label)}")


def settings(page) -> None:
    """Open the method's settings (collapsed by default)."""
    if not page.locator("#method-about").is_visible():
        page.click("#settings .label-wrap")
        page.wait_for_selector("#method-about", state="visible")


def set_value(page, name: str, value: str) -> None:
    settings(page)
    page.fill(f"#set-{name} input", value)
    page.press(f"#set-{name} input", "Tab")


@pytest.fixture
def page(browser, app_url):
    context, page = open_app(browser, app_url)
    yield page
    context.close()


def plot_points(page) -> int:
    """Points drawn in the live plot so far (plotly's scatter markers)."""
    return page.locator("#loss-plot .scatterlayer .point").count()


def run_method(page, shot, method_label: str) -> None:
    use_preset(page)
    shot(page, "preset")
    choose_method(page, method_label)
    page.click("#start-run")
    page.wait_for_function("document.querySelector('#loss-plot .scatterlayer .point') !== null", timeout=RUN_TIMEOUT_MS)
    state = page.inner_text("#run-state")
    points = plot_points(page)
    shot(page, "running")
    wait_done(page)
    return state, points


def wait_done(page) -> None:
    """Wait for the run to end, then fail with what the page says unless it ended 'done'."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("/^(done|failed|cancelled)/.test(document.querySelector('#run-state').innerText)",
                               timeout=RUN_TIMEOUT_MS)
    except PlaywrightTimeout:
        pytest.fail(f"the run did not end within {RUN_TIMEOUT_MS // 1000} s; the page says: {page.inner_text('#run-progress')!r}")
    text = run_text(page)
    assert text.startswith("done"), text


def run_text(page) -> str:
    """The run's bar as the page words it, without Gradio's own status line: a timer tick
    queued for the bar at that moment shows "queue: 1/1 | 0.0/0.0s" above it."""
    lines = page.inner_text("#run-progress").splitlines()
    return "\n".join(line for line in lines if not re.match(r"queue: \d+/\d+|processing \|", line.strip()))


def chat(page, prompt: str) -> tuple[str, str]:
    """Send `prompt`; the two answers once this exchange (not an earlier one) has arrived."""
    before = page.locator("#chat-unlearned .message").count()
    page.fill("#chat-input textarea", prompt)
    page.click("#chat-send")
    page.wait_for_function(f"document.querySelectorAll('#chat-unlearned .message').length >= {before + 2} && "
                           "!document.querySelector('#chat-send').disabled", timeout=60_000)
    last, deadline = None, time.monotonic() + 90
    while time.monotonic() < deadline:  # the replies stream in: wait until neither grew for 1.5 s
        page.wait_for_timeout(1500)
        now = (answer_text(page, "#chat-original"), answer_text(page, "#chat-unlearned"))
        if now == last:
            break
        last = now
    return now


def answer_text(page, pane: str) -> str:
    """The last answer in a chat pane, without its label (the run that gave it, shown above it)."""
    last = page.locator(f"{pane} .message").last
    content = last.locator(".thought-group .content")
    return (content.last if content.count() else last).inner_text().strip()


def report_value(page, metric: str, column: int) -> float:
    """A number of the report's full table (column 2 before, 3 after, 4 oracle); back to the run tab after."""
    tab(page, "report")
    if not page.locator("#report-table").is_visible():
        page.click("#report-all .label-wrap")
    page.wait_for_selector("#report-table", state="visible", timeout=60_000)
    row = page.locator("#report-table tr", has_text=re.compile(rf"^{re.escape(metric)}\b"))
    value = float(row.first.locator("td").nth(column).inner_text())
    tab(page, "run")
    return value


def test_ihl_fila_flow(page, shot):
    state, points = run_method(page, shot, "IHL + FILA (LoRA training)")
    assert state.startswith("running") and points >= 2, (state, points)  # the plot grew during the run
    original, unlearned = chat(page, FORGET_Q["question"])
    shot(page, "chat")
    assert original == FORGET_Q["answer"] and unlearned and unlearned != original
    assert report_value(page, "forget.rougeL", 3) < report_value(page, "forget.rougeL", 2)
    asks_about_a_forget_person(page, shot, collapse_known=(
        "issue 23, open: IHL + FILA at its defaults answers the forget people with one word repeated on the kit "
        "(benchmarks/RESULTS.md, 'Defaults that end like the oracle')"))


def test_eco_flow_with_flag_badge(page, shot):
    run_method(page, shot, "ECO prompts (no training)")
    original, unlearned = chat(page, FORGET_Q["question"])
    shot(page, "chat-forget")
    assert "flagged" in page.inner_text("#eco-flag") and "not flagged" not in page.inner_text("#eco-flag")
    assert original == FORGET_Q["answer"] and unlearned != original
    asks_about_a_forget_person(page, shot)
    assert "flagged" in page.inner_text("#eco-flag") and "not flagged" not in page.inner_text("#eco-flag")
    retain_q = json.loads((ROOT / "assets/workshop/retain.jsonl").read_text(encoding="utf-8").splitlines()[0])
    original, unlearned = chat(page, retain_q["question"])
    shot(page, "chat-retain")
    assert "not flagged" in page.inner_text("#eco-flag") and original == unlearned
    assert report_value(page, "forget.rougeL", 3) < report_value(page, "forget.rougeL", 2)


def test_bad_upload_shows_the_engine_message(page, shot, tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"question": "a?", "answer": "b"}\n{"question": \n', encoding="utf-8")
    tab(page, "data")
    page.set_input_files("#forget-file input[type=file]", str(bad))
    page.wait_for_selector("#forget-error .us-error", timeout=30_000)
    shot(page, "bad-upload")
    assert "broken.jsonl: line 2 is not valid JSON" in page.inner_text("#forget-error")
    page.click("#use-preset")  # the session is still usable
    page.wait_for_function("document.querySelector('#data-summary').innerText.includes('forget.jsonl')")


def test_sessions_never_see_each_other(browser, app_url, shot, tmp_path):
    pages = []
    for who in ("alice", "bob"):
        f = tmp_path / f"{who}_forget.jsonl"
        f.write_text(json.dumps({"question": f"What is {who}'s secret code?", "answer": f"{who}-1234."}) + "\n")
        context = browser.new_context()
        p = context.new_page()
        p.goto(app_url)
        p.wait_for_selector("#try-ihl-fila", timeout=60_000)
        tab(p, "data")
        p.set_input_files("#forget-file input[type=file]", str(f))
        p.wait_for_function(f"document.querySelector('#data-summary').innerText.includes('{who}_forget.jsonl')")
        pages.append((who, p))
    for who, p in pages:
        other = "bob" if who == "alice" else "alice"
        text = p.inner_text("#data-summary") + p.inner_text("#data-preview")
        shot(p, f"session-{who}")
        assert who in text and other not in text
        p.context.close()


def test_html_in_replies_is_text(browser, app_url, shot, tmp_path):
    payload = '<img src=x onerror="window.__xss=1">'
    data = tmp_path / "xss.jsonl"
    data.write_text(json.dumps({"question": "Show me the picture.", "answer": payload}) + "\n")
    model = tmp_path / "xss-model"
    subprocess.run([sys.executable, "-m", "unlearning", "teach", "--model", "workshop", "--data", str(data),
                    "--out", str(model), "--epochs", "150", "--lr", "2e-3"], check=True, cwd=ROOT, timeout=600)
    context = browser.new_context()
    page = context.new_page()
    page.goto(app_url)
    page.wait_for_selector("#model-name", timeout=60_000)
    page.fill("#model-name input", str(model))
    page.keyboard.press("Enter")
    page.click("#load-model")
    page.wait_for_function("document.querySelector('#model-status').innerText.includes('loaded')", timeout=60_000)
    page.fill("#chat-input textarea", "Show me the picture.")
    page.click("#chat-send")
    page.wait_for_function("document.querySelectorAll('#chat-original .message').length >= 2", timeout=60_000)
    page.wait_for_timeout(1500)
    shot(page, "xss")
    reply = page.locator("#chat-original .message").last.inner_text()
    assert "<img" in reply and "onerror" in reply  # shown as text...
    assert page.evaluate("window.__xss") is None  # ...and never executed
    assert page.locator("#chat-original img[src=x]").count() == 0
    page.fill("#chat-input textarea", payload)  # the user's own message too
    page.click("#chat-send")
    page.wait_for_timeout(2000)
    assert page.evaluate("window.__xss") is None
    context.close()


def test_cancel_returns_to_idle_and_keeps_the_original(page, shot):
    use_preset(page)
    choose_method(page, "IHL + FILA (LoRA training)")
    page.click("#start-run")
    page.wait_for_function("document.querySelector('#loss-plot .scatterlayer .point') !== null", timeout=RUN_TIMEOUT_MS)
    page.click("#cancel-run")
    page.wait_for_function("document.querySelector('#run-state') && "
                           "document.querySelector('#run-state').innerText.startsWith('cancelled')", timeout=30_000)
    shot(page, "cancelled")
    original, unlearned = chat(page, FORGET_Q["question"])
    assert original == FORGET_Q["answer"]  # the shared base is exactly as before
    assert "no unlearned model yet" in unlearned


def test_closing_the_tab_mid_run_frees_the_device(browser, app_url, shot):
    """A tab closed mid-run cancels its run at once, so another session's run gets the device
    (Gradio alone would delete the closed session only an hour later). The first run is made
    endless (5,000 steps at a learning rate too small to forget) so only the cancel can end it."""
    first_context, first = open_app(browser, app_url)
    use_preset(first)
    choose_method(first, "IHL + FILA (LoRA training)")
    set_value(first, "steps", "5000")
    set_value(first, "lr", "1e-7")
    first.click("#start-run")
    first.wait_for_function("document.querySelector('#loss-plot .scatterlayer .point') !== null", timeout=RUN_TIMEOUT_MS)
    shot(first, "endless-run")

    second_context, second = open_app(browser, app_url)
    use_preset(second)
    choose_method(second, "ECO prompts (no training)")
    second.click("#start-run")
    second.wait_for_function("document.querySelector('#run-state') && "
                             "document.querySelector('#run-state').innerText.includes('waiting for another run')",
                             timeout=30_000)
    first_context.close()  # the tab goes away mid-run
    second.wait_for_function("document.querySelector('#run-state') && "
                             "!document.querySelector('#run-state').innerText.includes('waiting for another run')",
                             timeout=45_000)
    shot(second, "got-the-device")
    second.click("#cancel-run")
    second.wait_for_function("document.querySelector('#run-state') && "
                             "/^(cancelled|done)/.test(document.querySelector('#run-state').innerText)", timeout=60_000)
    second_context.close()


def test_the_preset_suggests_reworded_questions_and_biographies(page, shot):
    """After the preset, the chat's example prompts hold a held-out wording of a forget fact,
    "Tell me about NAME." and small talk; picking one fills the message box."""
    use_preset(page)
    page.click("#chat-examples input")
    options = page.get_by_role("option")
    options.first.wait_for(timeout=30_000)
    texts = options.all_inner_texts()
    shot(page, "examples")
    assert "forget · Can you name Yara Bramante's birthplace?" in texts and "forget · Tell me about Yara Bramante." in texts
    assert "retain · Hello!" in texts  # each prompt names its set
    page.get_by_role("option", name="forget · Tell me about Yara Bramante.").click()
    page.wait_for_function("[...document.querySelectorAll('textarea')].some(t => t.value === 'Tell me about Yara Bramante.')")


def test_the_same_page_drives_the_zero_gpu_backend(browser, zero_gpu_url, shot):
    """The panels have one set of handlers: on the ZeroGPU backend (every run and reply in a
    forked worker) the page shows the same live plot, report, chat with its flag, and cancel."""
    context, page = open_app(browser, zero_gpu_url)
    state, points = run_method(page, shot, "ECO prompts (no training)")
    assert state.startswith("running") and points >= 1, (state, points)
    original, unlearned = chat(page, FORGET_Q["question"])
    shot(page, "chat")
    assert original == FORGET_Q["answer"] and unlearned != original
    assert "flagged" in page.inner_text("#eco-flag") and "not flagged" not in page.inner_text("#eco-flag")
    assert report_value(page, "forget.rougeL", 3) < report_value(page, "forget.rougeL", 2)
    choose_method(page, "IHL + FILA (LoRA training)")
    set_value(page, "steps", "5000")
    page.click("#start-run")
    page.wait_for_function("document.querySelector('#run-state').innerText.includes('before:') || "
                           "document.querySelector('#run-state').innerText.includes('step')", timeout=RUN_TIMEOUT_MS)
    page.click("#cancel-run")
    page.wait_for_function("document.querySelector('#run-state').innerText.startsWith('cancelled')", timeout=60_000)
    shot(page, "cancelled")
    context.close()


def test_a_stress_test_on_the_kept_run_draws_relearning_for_three_models(page, shot):
    """Preset → a short gradient-ascent run → the stress test (relearning only, a small sample)
    → the relearn picture has one line each for the original, the unlearned model and the
    oracle, with its one-sentence reading."""
    use_preset(page)
    choose_method(page, "baseline: gradient ascent")
    set_value(page, "steps", "5")
    page.click("#start-run")
    wait_done(page)
    tab(page, "stress")
    for label in ("Quantization", "Paraphrases", "Prompt attacks"):
        page.get_by_label(label, exact=True).uncheck()
    page.fill("#stress-steps input", "4")
    page.fill("#stress-sample input", "6")
    page.press("#stress-sample input", "Tab")
    page.click("#stress-start")
    page.wait_for_function("document.querySelectorAll('#stress-relearn .scatterlayer .trace').length === 3",
                           timeout=RUN_TIMEOUT_MS)
    page.locator("#stress-relearn").scroll_into_view_if_needed()
    shot(page, "stress-relearn")
    legend = page.locator("#stress-relearn .legend").first.text_content() or ""
    assert "original" in legend and "unlearned" in legend and "oracle" in legend
    assert page.locator("#stress-relearn-caption").inner_text().strip()


def test_every_button_label_is_drawn_in_one_font(page):
    """Gradio's bundled semibold face holds a few glyphs only: offline, a button read "FIL" in
    one font and "A" in another until assets/studio.css pointed semibold at the whole Bold face."""
    page.evaluate("document.fonts.ready")
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    for selector in ("#try-ihl-fila", "#try-eco", "#start-run", "#teach-first"):
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        letters = [f for f in fonts if f["glyphCount"] > 1 or not f["familyName"].startswith("DejaVu")]
        assert len(letters) == 1, (selector, fonts)

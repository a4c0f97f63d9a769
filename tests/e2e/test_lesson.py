"""The whole lesson in a real headless Chromium, on the workshop kit at the quick pace (issue 27).

Each step's button is pressed in turn; its bar shows progress while it runs, and its reading
must quote its own run's numbers: checked against the run's report.json (the Report tab's
artifact zip) for gradient ascent, ECO and step 6; against Compare's table for step 3's two
runs; against the Stress test tab's relearning curves for step 5; against the replies it shows
for step 1. Step 6 runs on "own" data (the kit's files under other names) for one step only:
nothing is unlearned, and its reading must say so, as a failure.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile

from unlearning.evaluation.scores import rouge_l_recall
from unlearning.service.lesson import meet_questions

from .conftest import ROOT
from .test_browser import RUN_TIMEOUT_MS, tab

KIT = ROOT / "assets" / "workshop"
NUMBER = re.compile(r"\d+\.\d+")


def run_step(page, key: str) -> str:
    """Press step `key`'s button; check its bar moves; its reading's HTML once it is there."""
    page.click(f"#lesson-{key}-go")
    if key != "meet":  # a run: the bar says it runs before the reading comes
        page.wait_for_function(f"/running|waiting|queued|%/.test(document.querySelector('#lesson-{key}-progress').innerText)"
                               " || document.querySelector('#lesson-{key}-reading .us-lesson-reading') !== null",
                               timeout=60_000)
    page.wait_for_selector(f"#lesson-{key}-reading .us-lesson-reading", timeout=RUN_TIMEOUT_MS)
    return page.inner_html(f"#lesson-{key}-reading")


def ok(reading_html: str) -> bool:
    return 'data-ok="true"' in reading_html


def text_of(reading_html: str) -> str:
    return re.sub(r"<[^>]+>", " ", reading_html)


def quotes(text: str, value: float) -> bool:
    """Does the reading quote `value` (to its two decimals)?"""
    return f"{value:.2f}" in text


def near(text: str, value: float) -> bool:
    """… or a number within rounding of a value shown rounded to three decimals elsewhere."""
    return any(abs(float(n) - value) <= 0.0051 for n in NUMBER.findall(text))


def report_json(page, previous: str | None) -> tuple[dict, str]:
    """The current run's report.json, from the Report tab's artifact zip; and the link, so the
    next call waits for a new one."""
    tab(page, "report")
    page.click("#make-zip")
    page.wait_for_function("(prev) => { const a = document.querySelector('#artifact-file a[href]'); "
                           "return a !== null && a.href !== prev; }", arg=previous or "", timeout=60_000)
    link = page.locator("#artifact-file a[href]").first
    href = link.get_attribute("href") or ""
    with page.expect_download() as download:
        link.click()
    with zipfile.ZipFile(download.value.path()) as z:
        report = json.loads(z.read("report.json"))
    tab(page, "lesson")
    return report, page.evaluate("() => document.querySelector('#artifact-file a[href]').href") or href


def check_run_reading(text: str, report: dict) -> None:
    before, after, oracle = report["before"], report["after"], report.get("oracle") or {}
    assert quotes(text, before["forget.rougeL"]) and quotes(text, after["forget.rougeL"]), (text, before, after)
    if "forget.rougeL" in oracle:
        assert quotes(text, oracle["forget.rougeL"]), text
    if "utility went" in text:
        assert quotes(text, before["model_utility"]) and quotes(text, after["model_utility"]), text


ROWS_JS = ("() => [...document.querySelectorAll('#compare-table .virtual-row')]"  # Gradio 6's table: rows of div cells
           ".map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim())).filter(r => r.length > 1)")


def compare_rows(page, expect: str) -> list[list[str]]:
    """Compare's table rows once one of them names `expect` (the table fills a moment after Refresh)."""
    tab(page, "compare")
    page.click("#compare-refresh")
    try:
        page.wait_for_function(f"() => ({ROWS_JS})().some(r => r[0].includes({expect!r}))", timeout=30_000)
    finally:
        rows = page.evaluate(ROWS_JS)
        tab(page, "lesson")
    return rows


def test_the_whole_lesson_on_the_kit(browser, app_url, shot, tmp_path):
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(app_url)
    page.wait_for_selector("#try-ihl-fila", timeout=60_000)
    tab(page, "lesson")
    page.click("#lesson-quick input")

    # 1 · the original, asked in three wordings and about a retain person
    reading = run_step(page, "meet")
    shot(page, "step1-meet")
    text = text_of(reading)
    replies = page.evaluate("() => [...document.querySelectorAll('#lesson-probes tr')].slice(1)"
                            ".map(tr => tr.querySelectorAll('td')[2].innerText)")
    for (kind, _prompt, expected), reply in zip(meet_questions(), replies, strict=True):
        assert quotes(text, rouge_l_recall(reply, expected)), (kind, reply, text)

    # 2 · gradient ascent: against its report.json
    reading = run_step(page, "ga")
    folder = shot(page, "step2-ga").parent
    page.locator("#lesson-ga-reading").scroll_into_view_if_needed()
    page.screenshot(path=str(folder / "lesson-1280x800.png"))  # the tab as a laptop shows it, two steps in
    report, link = report_json(page, None)
    assert report["method"] == "ga" and report["steps"] == 100  # the quick lesson keeps GA's own steps
    check_run_reading(text_of(reading), report)

    # 3 · IHL + FILA, then IHL from a random start: against Compare's rows of both runs
    reading = run_step(page, "fila")
    shot(page, "step3-fila")
    text = text_of(reading)
    rows = {r[0].lstrip("▶ ").split(" (")[0]: r for r in compare_rows(page, "IHL + FILA")}
    forget_col = 6  # Compare's "forget ROUGE-L" column
    fila = next((v for k, v in rows.items() if k.endswith("IHL + FILA")), None)
    ihl = next((v for k, v in rows.items() if "IHL, random-init" in k), None)  # "#5 baseline: IHL, random-init LoRA"
    assert fila and ihl, rows
    assert near(text, float(fila[forget_col])) and near(text, float(ihl[forget_col])), (text, fila, ihl)
    assert "random start reached" in text or not ok(reading)

    # 4 · ECO: against its report.json
    reading = run_step(page, "eco")
    shot(page, "step4-eco")
    report, link = report_json(page, link)
    assert report["method"] == "eco"
    check_run_reading(text_of(reading), report)

    # 5 · the stress test of step 3's run: against the Stress test tab's relearning curves
    reading = run_step(page, "stress")
    shot(page, "step5-stress")
    text = text_of(reading)
    tab(page, "stress")
    page.wait_for_selector("#stress-relearn .js-plotly-plot", timeout=30_000)
    curves = page.evaluate("() => Object.fromEntries(document.querySelector('#stress-relearn .js-plotly-plot').data"
                           ".map(t => [t.name.split(' ')[0], t.y]))")
    tab(page, "lesson")
    assert quotes(text, curves["unlearned"][-1]) and quotes(text, curves["unlearned"][0]), (text, curves)
    assert quotes(text, curves["oracle"][-1]) and quotes(text, curves["original"][-1]), (text, curves)

    # 6 · "own" data, one step: nothing unlearned, and the reading says so as a failure
    tab(page, "data")
    for role in ("forget", "retain"):
        mine = tmp_path / f"my_{role}.jsonl"
        shutil.copy(KIT / f"{role}.jsonl", mine)
        page.set_input_files(f"#{role}-file input[type=file]", str(mine))
        page.wait_for_function(f"document.querySelector('#data-summary').innerText.includes('my_{role}.jsonl')",
                               timeout=30_000)
    tab(page, "lesson")
    page.fill("#lesson-steps input", "1")
    reading = run_step(page, "own")
    shot(page, "step6-own-fails")
    assert not ok(reading) and "Not shown" in reading and "did not unlearn" in reading
    report, link = report_json(page, link)
    assert report["steps"] in (0, 1)
    check_run_reading(text_of(reading), report)
    assert page.locator("#lesson-own-reading .us-lesson-reading").evaluate(
        "e => getComputedStyle(e).borderColor") == "rgb(220, 38, 38)"  # red: visibly a failure
    page.context.close()

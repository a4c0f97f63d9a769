"""A workshop room, 25 sessions against the real app (issue 27): the instructor's page in Chromium
at 1920×1080 (the projector) opens a room; 24 gradio_client sessions do the rest. 20 people
join it, 15 of them share a run each (a gradient ascent on the kit, ten of one step, five of
4–64 steps: the board is about who shared what and where, not about unlearning well);
a second room with its own instructor and two people runs beside it, and a guesser tries
codes. The board shows exactly the 15 runs, numbers only (no data, no chat); the other room's
people never appear; guessed codes and someone else's run number are refused in one sentence.
While the runs go, five people chat; the chat's p95 is measured against the load test's bound.
The projected board is screenshotted with its 15 points (test-artifacts/room-board/), one name
being HTML that must show as text.
"""

from __future__ import annotations

import json
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio_client import Client

from components.method_panel import setting_specs
from components.room_panel import REFRESH_SECONDS
from unlearning import limits
from unlearning.service.room import ALPHABET

from .conftest import ARTIFACTS, ROOT, loopback_client
from .test_browser import open_app, tab

PEOPLE, SHARERS = 20, 15
HOSTILE = "<b>P3</b><svg onload=__x=1>"  # P3's name: the board shows it as text (the room cuts names to 24 characters)
RUNNERS = 1 + limits.MAX_WAITING_RUNS  # runs started at once: one on the device, the rest queued (never "queue full")
STEPS = [1] * 10 + [4, 8, 16, 32, 64]  # each sharer's GA steps: most at one spot (one label), five apart (named)
CHAT_P95_S = 5.0  # the load test's bound (tests/e2e/test_load.py)
FORGET = [json.loads(line) for line in (ROOT / "assets/workshop/forget.jsonl").read_text(encoding="utf-8").splitlines()]


def code_of(code_html: str) -> str:
    return re.search(r'data-code="([A-Z0-9]+)"', code_html).group(1)


def tiny_run(client: Client, steps: int = 1) -> str:
    """The kit and a short gradient ascent; the run's end state."""
    client.predict("QA (questions and answers)", api_name="/use_preset")
    settings = {name: spec["default"] for name, spec in setting_specs().items()} | {"steps": steps}
    client.predict("workshop", "ga", *settings.values(), api_name="/start")
    deadline, finished, bar = time.time() + 600, None, ""
    while time.time() < deadline and finished not in ("done", "failed", "cancelled"):
        time.sleep(1)
        bar, _plot, _timer, finished = client.predict(api_name="/poll")
    return finished if finished == "done" else f"{finished}: {bar}"


def chats(client: Client, n: int) -> list[float]:
    client.predict("QA (questions and answers)", api_name="/use_preset")
    out = []
    for i in range(n):
        t = time.monotonic()
        client.predict(FORGET[i % len(FORGET)]["question"], "workshop", [], [], api_name="/chat")
        out.append(time.monotonic() - t)
    return out


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.95 * len(xs)))]


def name(i: int) -> str:
    return HOSTILE if i == 3 else f"P{i}"


def test_a_room_of_25_sessions(app_url, browser):
    t0 = time.monotonic()
    _context, page = open_app(browser, app_url, 1920, 1080)
    tab(page, "room")
    page.click("#room-open")
    page.wait_for_selector("#room-code [data-code]", timeout=30_000)
    code = page.get_attribute("#room-code [data-code]", "data-code")
    with ThreadPoolExecutor(24) as pool:
        clients = list(pool.map(lambda _: loopback_client(app_url), range(24)))
    people, teacher2, others, guesser = clients[:20], clients[20], clients[21:23], clients[23]

    code2 = code_of(teacher2.predict(api_name="/open_room")[0])
    assert code != code2
    with ThreadPoolExecutor(8) as pool:
        notes = list(pool.map(lambda ip: ip[1].predict(f"{code[:3].lower()}-{code[3:]}", name(ip[0]),
                                                       api_name="/join_room")[0], enumerate(people)))
    assert all("You joined room" in n for n in notes), notes
    for i, other in enumerate(others):
        assert "You joined room" in other.predict(code2, f"Zed{i}", api_name="/join_room")[0]

    # someone else's run number: P15 has no run #1 of its own, so it cannot share one
    assert "There is no run #1 in this session" in people[15].predict(1, False, api_name="/share_run")
    # a guessed code: one sentence each, then the guesser is stopped
    rng = random.Random(0)
    guesses = ["".join(rng.choice(ALPHABET) for _ in range(6)) for _ in range(limits.ROOM_CODE_TRIES)]
    replies = [guesser.predict(g, "guess", api_name="/join_room")[0] for g in guesses if g not in (code, code2)]
    assert all("No room has the code" in r for r in replies), replies
    assert "wrong codes in a minute" in guesser.predict(code, "guess", api_name="/join_room")[0]  # even the right one, now

    # 15 people and one of the other room run and share; five others chat meanwhile
    sharers = people[:SHARERS] + [others[0]]
    with ThreadPoolExecutor(5) as talkers, ThreadPoolExecutor(RUNNERS) as runners:
        talk = [talkers.submit(chats, c, 4) for c in people[SHARERS:]]
        ends = list(runners.map(tiny_run, sharers, STEPS + [1]))
        latencies = [s for f in talk for s in f.result()]
    assert ends == ["done"] * len(sharers), ends
    for c in sharers:
        assert "is on the board" in c.predict(1, False, api_name="/share_run")
    assert "already on the board" in people[0].predict(1, False, api_name="/share_run")

    _plot, table, counts = people[0].predict(api_name="/board")  # a member sees the instructor's board
    rows = table["data"]
    runs = [r for r in rows if r[0]]
    assert sorted(r[0] for r in runs) == sorted(name(i)[:24] for i in range(SHARERS))
    assert [r[1] for r in rows if not r[0]] == ["(before)", "(oracle)"]
    assert "15 runs shared by 20 people" in counts
    text = json.dumps([table, counts])
    assert "Zed" not in text  # the other room's people never appear
    for qa in FORGET:  # numbers and settings only: no question or answer of the data, so none of the chat either
        assert qa["question"] not in text and qa["answer"] not in text
    _plot2, table2, _counts2 = others[1].predict(api_name="/board")
    assert [r[0] for r in table2["data"] if r[0]] == ["Zed0"] and "P0" not in json.dumps(table2)

    # the projected board: live (its timer), 15 points with before and the oracle, the HTML name as text
    page.wait_for_function("document.querySelectorAll('#room-plot .scatterlayer .point').length === 17", timeout=30_000)
    page.wait_for_timeout(800)
    folder = ARTIFACTS / "room-board"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "board-1920x1080.png"))
    page.locator("#room-plot").scroll_into_view_if_needed()
    page.screenshot(path=str(folder / "board-plot-1920x1080.png"))
    assert page.evaluate("() => window.__x") is None
    assert page.locator("#room-table b, #room-plot b, #room-table svg[onload]").count() == 0
    assert HOSTILE[:24] in page.inner_text("#room-table")  # (the picture labels a spot of many runs "N runs")
    assert "Zed" not in page.inner_text("#tab-room")
    with page.expect_download() as download:
        page.click("#room-summary")
        page.wait_for_selector("#room-summary-file a[href]", timeout=30_000)
        page.click("#room-summary-file a[href]")
    summary = Path(download.value.path()).read_text(encoding="utf-8")
    assert summary.count("<circle") == SHARERS and "&lt;b&gt;P3" in summary and "<b>P3" not in summary

    took = time.monotonic() - t0
    line = (f"room of 25 sessions: 15 shared runs on the board in {took:.0f} s; chat p50 "
            f"{sorted(latencies)[len(latencies) // 2]:.2f} s, p95 {p95(latencies):.2f} s ({len(latencies)} replies)")
    (folder / "room.txt").write_text(line + "\n", encoding="utf-8")
    print(line)
    assert p95(latencies) <= CHAT_P95_S, line
    page.click("#room-close")
    page.wait_for_function("document.querySelector('#room-note').innerText.includes('closed')", timeout=30_000)
    assert "in no room" in people[0].predict(api_name="/board")[2]
    page.context.close()


def test_the_board_ticks_only_where_it_is_looked_at(app_url, browser):
    """Two pages in a room: the participant's board ticks while its Room tab shows and stops on
    another tab; the instructor's (projected) ticks on any tab. Counted from each page's requests."""
    probe = loopback_client(app_url)
    tick = next(d["id"] for d in probe.config["dependencies"] if d.get("api_name") == "board_tick")
    probe.close()
    pages, ticks = {}, {"teacher": [], "person": []}
    for who in ticks:
        _context, page = open_app(browser, app_url)

        def seen(request, who=who):
            body = request.post_data or ""
            if "queue/join" in request.url and f'"fn_index":{tick},' in body.replace(" ", ""):
                ticks[who].append(time.monotonic())

        page.on("request", seen)
        tab(page, "room")
        pages[who] = page
    pages["teacher"].click("#room-open")
    page_code = pages["teacher"].locator("#room-code [data-code]").get_attribute("data-code", timeout=30_000)
    person = pages["person"]
    person.fill("#room-code-box input", page_code)
    person.fill("#room-name input", "Ada")
    person.click("#room-join")
    person.wait_for_selector("#room-note:has-text('You joined')", timeout=30_000)

    def ticks_within(seconds: float) -> dict[str, int]:
        t = time.monotonic()
        person.wait_for_timeout(1000 * seconds)  # (Playwright hands over the pages' requests while it waits)
        return {who: len([s for s in times if s > t]) for who, times in ticks.items()}

    on_room = ticks_within(3 * REFRESH_SECONDS)
    tab(person, "run")
    tab(pages["teacher"], "run")
    person.wait_for_timeout(1500 * REFRESH_SECONDS)  # a tick already sent may still arrive
    elsewhere = ticks_within(3 * REFRESH_SECONDS)
    tab(person, "room")
    back = ticks_within(3 * REFRESH_SECONDS)
    assert on_room["person"] >= 2 and on_room["teacher"] >= 2, on_room
    assert elsewhere == {"teacher": elsewhere["teacher"], "person": 0} and elsewhere["teacher"] >= 2, elsewhere
    assert back["person"] >= 2, back
    for page in pages.values():
        page.context.close()

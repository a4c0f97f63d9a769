"""A room of thirty: 30 gradio_client sessions at once against the real app on loopback.

    python benchmarks/room.py                       # 24 chatting + 6 starting runs, ~3-5 min on 2 cores
    python benchmarks/room.py --chatters 8 --chats 4   # a smaller room
    python benchmarks/room.py --in-process --chats 3   # no app: 24 sessions' chats batched vs alone
    python benchmarks/room.py --kept 56             # no app: a reference run beside 56 kept runs vs an empty room
    python benchmarks/room.py --board 20 --chats 4 --rounds 2   # a room's board: 20 join, 15 share, 5 chat; timers off vs on

Fixed request counts (only /poll, which waits for a run to reach a state, depends on time):

  * 6 run sessions, each /use_preset, then /start IHL + FILA with its defaults: the first
    trains (limits.DEVICE_RUNS = 1), the next limits.MAX_WAITING_RUNS wait for the device, the
    last is told the run queue is full. Each /poll every 0.5 s. When every chat is answered the
    waiting runs are cancelled; the first is left to finish (its wall time is printed).
  * 24 chat sessions: /use_preset, then, once the first run has the device, `--chats` (6)
    /chat each, forget and retain questions of the preset in turn. The original reply must be
    the preset's answer (a wrong one counts as an error): the base model answers for everyone
    while the run's LoRA trains on it, in batches shared across sessions (service/batcher.py).

Prints the table: requests, errors, p50/p95/max per action (chat split by whether the run was
training when it was sent), the server's RSS before the room and after, the machine's load.
Acceptance (issue 16): 0 errors and chat p95 ≤ 2 s while a run trains, on 2 cores.

`--kept N` (issue 28 #5) times a reference run (IHL + FILA, 20 steps, the workshop preset, its
after-evaluation included; the oracle and `before` come from a warmed cache) on two copies of
the workshop model in this process: one with N kept rank-64 FILA runs on it (a trained adapter
and its offset each, as a kept run leaves them), one empty, alternately, `--rounds` times
each; it prints both medians and their ratio (acceptance: ≤ 1.3) and the RSS N kept runs add.

`--board N` (issue 27) is a workshop room against the app: an instructor opens a room, N
people and `--board-chatters` (5) more join; in each phase `--sharers` (15) of the N run a
one-step gradient ascent each (1 on the device, limits.MAX_WAITING_RUNS waiting: 5 at once)
and share it, while the chatters chat until those runs are shared (`--chats` times at least).
The phases alternate (ABBA over `--rounds`) between "timers off" (no page looks at the board)
and "timers on" (every page in the room ticks /board_tick every room_panel.REFRESH_SECONDS: the
worst case, everyone on the Room tab; a participant's page stops ticking on another tab, the
instructor's ticks on every tab). Prints chat p50/p95 per phase and the ticks'.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradio_client import Client  # noqa: E402

from benchmarks.feedback import WARMED  # noqa: E402
from tests.e2e.conftest import Server, loopback_client  # noqa: E402
from tests.e2e.test_load import (FORGET, NOTE, RETAIN, WAITING, Load, bar_percent, bar_text, chat, percentile, poll,  # noqa: E402
                                 settings, use_preset)
from unlearning import limits  # noqa: E402

RUN_TIMEOUT = 600  # seconds for the training run, /start to done


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Room:
    def __init__(self, url: str, chats: int):
        self.url, self.chats, self.load = url, chats, Load()
        self.training = threading.Event()  # the first run has the device
        self.trained = threading.Event()  # ... and has ended
        self.chats_done = threading.Event()
        self.window: list[tuple[float, float]] = []  # (sent, answered) of every chat while the run trained

    def chat_session(self, n: int) -> None:
        client, name = loopback_client(self.url), f"chat-{n}"
        use_preset(self.load, client, name)
        self.training.wait(RUN_TIMEOUT)
        for i in range(self.chats):
            source = (FORGET, RETAIN)[i % 2]
            qa = source[(n * self.chats + i) % len(source)]
            sent, during = time.perf_counter(), not self.trained.is_set()
            got = chat(self.load, client, name, qa["question"], qa["answer"])
            if during and not self.trained.is_set():
                self.window.append((sent, time.perf_counter()))
            if got is not None and got[1] != NOTE:
                self.load.fail(name, "/chat", f"the unlearned side reads {got[1]!r} before any run")
        client.close()

    def first_run(self) -> None:
        client, name = loopback_client(self.url), "run-0"
        use_preset(self.load, client, name)
        t0 = time.perf_counter()
        self.load.call(client, name, "/start", "workshop", "ihl-fila", *settings())
        finished, bar = None, ""
        while time.perf_counter() - t0 < RUN_TIMEOUT and not finished:
            bar, finished = poll(self.load, client, name)
            if bar_percent(bar) > 0 or finished:
                self.training.set()
            time.sleep(0.5)
        self.trained.set()
        self.training.set()
        self.load.notes["run_s"] = f"{time.perf_counter() - t0:.1f}"
        if finished != "done":
            self.load.fail(name, "/poll", f"the run ended as {finished!r}: {bar_text(bar)}")
        client.close()

    def queued_runs(self, n: int) -> None:
        clients = [loopback_client(self.url) for _ in range(n)]
        names = [f"run-{i + 1}" for i in range(n)]
        for client, name in zip(clients, names):
            use_preset(self.load, client, name)
        self.training.wait(RUN_TIMEOUT)
        for client, name in zip(clients, names):  # one at a time, so which one finds the queue full is fixed
            self.load.call(client, name, "/start", "workshop", "ihl-fila", *settings())
        states = {}
        for client, name in zip(clients, names):
            for _ in range(60):
                bar, finished = poll(self.load, client, name)
                if WAITING in bar or finished:
                    states[name] = finished or "waiting"
                    break
                time.sleep(0.5)
        waiting = [(c, nm) for c, nm in zip(clients, names) if states.get(nm) == "waiting"]
        self.load.notes["queue"] = ", ".join(f"{nm}: {states.get(nm, '?')}" for nm in names)
        if len(waiting) != min(n, limits.MAX_WAITING_RUNS):
            self.load.fail("runs", "/poll", f"expected {limits.MAX_WAITING_RUNS} waiting runs: {self.load.notes['queue']}")
        self.chats_done.wait(RUN_TIMEOUT)
        for client, name in waiting:
            self.load.call(client, name, "/cancel")
        for client in clients:
            client.close()


def table(room: Room, sessions: int, wall: float, rss: tuple[float, float], loads: tuple[str, str]) -> str:
    calls, errors = room.load.calls, room.load.errors()

    def row(label: str, ms: list[float]) -> str:
        if not ms:
            return f"| {label} | 0 | | | |"
        return f"| {label} | {len(ms)} | {percentile(ms, 50):.0f} | {percentile(ms, 95):.0f} | {max(ms):.0f} |"

    def of(*apis: str) -> list[float]:
        return [1000 * c.seconds for c in calls if c.api in apis and not c.error]

    during = [1000 * (b - a) for a, b in room.window]
    lines = [f"sessions {sessions}, requests {len(calls)}, errors {len(errors)} (wrong answers {len(room.load.wrong)}), "
             f"wall {wall:.0f} s; server RSS {rss[0]:.0f} MB before the room, {rss[1]:.0f} MB after; "
             f"load (1/5/15 min) {loads[0]} before, {loads[1]} after", "",
             "| action | n | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|",
             row("chat, all", of("/chat")), row("chat while the run trained", during),
             row("use preset", of("/use_preset")), row("start run", of("/start")), row("cancel run", of("/cancel")),
             row("poll", of("/poll")), "",
             f"the training run (IHL + FILA, defaults, workshop preset): {room.load.notes.get('run_s', '?')} s from /start to done; "
             f"the other runs: {room.load.notes.get('queue', '?')}"]
    lines += [f"ERROR {c.session} {c.api}: {c.error}" for c in errors[:20]]
    return "\n".join(lines)


def in_process(threads: int, chats: int) -> None:
    """The model work alone: `threads` sessions chat at once through Studio.chat (batched) and
    through chat_stream without the batcher (each reply decoded alone), in this process."""
    import statistics

    from unlearning.service import ChatJob, Session, Studio
    from unlearning.service.chat import chat_stream

    studio = Studio()
    sessions = [Session() for _ in range(threads)]
    list(studio.chat(sessions[0], ChatJob("workshop", "Hello!")))  # loads the model
    for label, batched in (("batched", True), ("alone", False)):
        seconds: list[float] = []

        def session(i: int, batched: bool = batched, seconds: list[float] = seconds) -> None:
            for k in range(chats):
                qa = FORGET[(i * chats + k) % len(FORGET)]
                t0 = time.perf_counter()
                stream = (studio.chat(sessions[i], ChatJob("workshop", qa["question"])) if batched
                          else chat_stream(studio.models.get("workshop"), None, qa["question"]))
                reply = list(stream)[-1]
                seconds.append(time.perf_counter() - t0)
                assert reply.original == qa["answer"], (reply.original, qa["answer"])

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(session, range(threads)))
        ms = [1000 * x for x in seconds]
        print(f"{threads} sessions x {chats} chats, {label}: p50 {statistics.median(ms):.0f} ms, p95 {percentile(ms, 95):.0f} ms, "
              f"wall {time.perf_counter() - t0:.1f} s; load {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")


def kept_room(kept: int, rounds: int, steps: int) -> None:
    """The reference run's wall time on an empty base and on one holding `kept` kept runs, interleaved."""
    import statistics
    import tempfile

    from unlearning.data import load_file
    from unlearning.evaluation.cache import EvalCache
    from unlearning.lora.adapters import Adapters, LoraUnlearned
    from unlearning.methods import get_method
    from unlearning.models import WORKSHOP_DIR, load_model
    from unlearning.pipeline import complete_splits, unlearn_job
    from unlearning.runs import Run

    bases = {"empty": load_model("workshop", "cpu"), f"{kept} kept": load_model("workshop", "cpu")}
    oracle = load_model("workshop-oracle", "cpu")
    splits = complete_splits(load_file(WORKSHOP_DIR / "forget.jsonl"), load_file(WORKSHOP_DIR / "retain.jsonl"))
    method = get_method("ihl-fila")
    cfg = method.Config(steps=steps)
    cache = EvalCache(tempfile.mkdtemp(prefix="room-kept-"))
    rss0 = rss_mb(os.getpid())
    crowded = bases[f"{kept} kept"]
    room = [LoraUnlearned(crowded, {}, method.name, Adapters.create(crowded.model, method.name, 64, 128, with_offset=True))
            for _ in range(kept)]
    rss1 = rss_mb(os.getpid())

    def reference(loaded) -> tuple[float, float]:
        t0 = time.perf_counter()
        run = Run(unlearn_job(method, cfg, loaded, splits, oracle, cache=cache)).start()
        result = run.wait(RUN_TIMEOUT)
        assert run.state == "done", run.error
        result["unlearned"].release()
        return time.perf_counter() - t0, result["report"]["method_wall_s"]

    for loaded in bases.values():  # warm-up: fills the evaluation cache (oracle, before), not timed
        reference(loaded)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in bases}
    order = list(bases)
    for r in range(rounds):  # ABBA: neither room always goes first
        for name in order if r % 2 == 0 else order[::-1]:
            times[name].append(reference(bases[name]))
    loads = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"Machine: {os.cpu_count()} cores; `python benchmarks/room.py {' '.join(sys.argv[1:])}` "
          f"({time.strftime('%Y-%m-%d %H:%M')}); load (1/5/15 min) after: {loads}\n")
    print(f"Reference run: {method.name}, {steps} steps, workshop preset, after-evaluation included; "
          f"{rounds} runs per room, interleaved. {kept} kept rank-64 runs add {rss1 - rss0:.0f} MB of RSS.\n")
    print("| room | run s (median) | runs s | method s (median) |\n|---|---:|---|---:|")
    med = {}
    for name, values in times.items():
        med[name] = statistics.median(t for t, _ in values)
        print(f"| {name} | {med[name]:.2f} | {', '.join(f'{t:.2f}' for t, _ in values)} | "
              f"{statistics.median(m for _, m in values):.2f} |")
    print(f"\nratio {kept} kept / empty: {med[f'{kept} kept'] / med['empty']:.2f} (acceptance ≤ 1.3)")
    for unlearned in room:
        unlearned.release()


def board_room(url: str, people: int, sharers: int, chatters: int, chats: int, rounds: int) -> None:
    """A room's board under load: the chat's latency with the board's timers off and on (module docstring)."""
    from components.room_panel import REFRESH_SECONDS

    load, runners = Load(), 1 + limits.MAX_WAITING_RUNS
    with ThreadPoolExecutor(max_workers=32) as pool:
        clients = list(pool.map(lambda _: loopback_client(url), range(1 + people + chatters)))
    teacher, members, talkers = clients[0], clients[1:1 + people], clients[1 + people:]
    code = load.call(teacher, "teacher", "/open_room")[0].split('data-code="')[1].split('"')[0]
    for i, c in enumerate(members + talkers):
        load.call(c, f"p{i}", "/join_room", code, f"P{i}")
    for i, c in enumerate(members[:sharers] + talkers):
        use_preset(load, c, f"p{i}")

    def run_and_share(i: int, c: Client) -> None:
        name = f"p{i}"
        load.call(c, name, "/start", "workshop", "ga", *settings(steps=1))
        finished, deadline, bar = None, time.perf_counter() + RUN_TIMEOUT, ""
        while not finished and time.perf_counter() < deadline:
            time.sleep(0.5)
            bar, finished = poll(load, c, name)
        if finished != "done":
            load.fail(name, "/poll", f"the run ended as {finished!r}: {bar_text(bar)}")
            return
        load.call(c, name, "/share_run", int(load.notes.get(name, "0")) + 1, False)
        load.notes[name] = str(int(load.notes.get(name, "0")) + 1)  # this session's kept runs so far

    def talk(i: int, c: Client, runs_over: threading.Event) -> list[float]:
        out: list[float] = []
        while len(out) < chats or not runs_over.is_set():  # through the whole phase, `chats` at least
            qa = FORGET[(i * 97 + len(out)) % len(FORGET)]
            t0 = time.perf_counter()
            chat(load, c, f"t{i}", qa["question"], qa["answer"])
            out.append(1000 * (time.perf_counter() - t0))
        return out

    ticks: list[float] = []
    busy: set[Client] = set()

    def ticking(stop: threading.Event) -> None:
        """Every page in the room ticks (as if every page showed the Room tab), spread over the period
        as pages load at different times; a page's next tick waits for its last (no backlog: the
        clients' own threads share the machine with the app, which a room's browsers do not)."""
        watchers = [teacher] + members + talkers
        with ThreadPoolExecutor(max_workers=len(watchers)) as tickers:
            while not stop.is_set():
                for page in watchers:
                    if stop.wait(REFRESH_SECONDS / len(watchers)):
                        return
                    if page not in busy:
                        busy.add(page)
                        tickers.submit(one_tick, page)

    def one_tick(page: Client) -> None:
        t0 = time.perf_counter()
        try:
            load.call(page, "page", "/board_tick", timeout=60)
            ticks.append(1000 * (time.perf_counter() - t0))
        finally:
            busy.discard(page)

    phases: dict[str, list[float]] = {"timers off": [], "timers on": []}
    order = list(phases)
    with ThreadPoolExecutor(max_workers=runners + chatters + people + 2) as pool:
        for r in range(rounds):
            for phase in order if r % 2 == 0 else order[::-1]:
                stop = threading.Event()
                poller = pool.submit(ticking, stop) if phase == "timers on" else None
                talking = [pool.submit(talk, i, c, stop) for i, c in enumerate(talkers)]
                with ThreadPoolExecutor(max_workers=runners) as run_pool:
                    list(run_pool.map(run_and_share, range(sharers), members[:sharers]))
                stop.set()
                phases[phase] += [ms for f in talking for ms in f.result()]
                if poller is not None:
                    poller.result()
    board = load.call(teacher, "teacher", "/board")
    shown = len([row for row in board[1]["data"] if row[0]]) if board else -1
    errors = load.errors()
    print(f"Machine: {os.cpu_count()} cores; `python benchmarks/room.py {' '.join(sys.argv[1:])}` "
          f"({time.strftime('%Y-%m-%d %H:%M')}); load (1/5/15 min) after: "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(f"A room of {1 + people + chatters} sessions: {people} joined, {sharers} ran and shared a one-step GA per phase "
          f"({runners} at once) while {chatters} chatted; {rounds} rounds; the board shows {shown} runs; "
          f"errors {len(errors)}\n")
    print("| phase | chats | chat p50 ms | chat p95 ms | chat max ms |\n|---|---:|---:|---:|---:|")
    for phase, ms in phases.items():
        print(f"| {phase} | {len(ms)} | {percentile(ms, 50):.0f} | {percentile(ms, 95):.0f} | {max(ms):.0f} |")
    if ticks:
        print(f"\nboard ticks: {len(ticks)}, p50 {percentile(ticks, 50):.0f} ms, p95 {percentile(ticks, 95):.0f} ms")
    for c in errors[:10]:
        print(f"ERROR {c.session} {c.api}: {c.error}")
    for c in clients:
        c.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--chatters", type=int, default=24)
    p.add_argument("--runs", type=int, default=6, help="sessions starting a run (the first trains)")
    p.add_argument("--chats", type=int, default=6, help="chat requests per chatting session")
    p.add_argument("--concurrency", type=int, default=None,
                   help=f"requests the app serves at once (default limits.APP_CONCURRENCY = {limits.APP_CONCURRENCY})")
    p.add_argument("--in-process", action="store_true", help="no app: the chat model work alone, batched and not")
    p.add_argument("--kept", type=int, default=0, help="no app: a reference run beside this many kept runs vs an empty room")
    p.add_argument("--rounds", type=int, default=3, help="--kept: reference runs per room")
    p.add_argument("--steps", type=int, default=20, help="--kept: the reference run's steps")
    p.add_argument("--board", type=int, default=0, help="a workshop room's board with this many people joined")
    p.add_argument("--sharers", type=int, default=15, help="--board: people who run and share, per phase")
    p.add_argument("--board-chatters", type=int, default=5, help="--board: people chatting meanwhile")
    args = p.parse_args()
    if args.kept:
        kept_room(args.kept, args.rounds, args.steps)
        return
    if args.in_process:
        in_process(args.chatters, args.chats)
        return
    code = ("from unlearning import limits; " + (f"limits.APP_CONCURRENCY = {args.concurrency}; " if args.concurrency else "")
            + "import app; app.main()")
    server = Server([sys.executable, "-c", code], ROOT / "test-artifacts" / "room-server.log")
    try:
        url = server.ready()
        log = ROOT / "test-artifacts" / "room-server.log"  # the room opens the page once the app's warm-up is done
        while WARMED not in log.read_text() and time.time() < server.started + 180:
            time.sleep(0.2)
        warm = loopback_client(url)  # the first chat loads the model: not part of the room
        use_preset(Load(), warm, "warm-up")
        warm.predict(FORGET[0]["question"], "workshop", [], [], api_name="/chat")
        warm.close()
        if args.board:
            board_room(url, args.board, args.sharers, args.board_chatters, args.chats, args.rounds)
            return
        rss_before, load_before = rss_mb(server.proc.pid), " / ".join(f"{x:.1f}" for x in os.getloadavg())
        room = Room(url, args.chats)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.chatters + 2) as pool:
            runs = [pool.submit(room.first_run), pool.submit(room.queued_runs, args.runs - 1)]
            chats = [pool.submit(room.chat_session, n) for n in range(args.chatters)]
            for f in chats:
                f.result(timeout=RUN_TIMEOUT)
            room.chats_done.set()
            for f in runs:
                f.result(timeout=RUN_TIMEOUT)
        wall = time.perf_counter() - t0
        rss_after, load_after = rss_mb(server.proc.pid), " / ".join(f"{x:.1f}" for x in os.getloadavg())
    finally:
        server.stop()
    print(f"Machine: {os.cpu_count()} cores; `python benchmarks/room.py {' '.join(sys.argv[1:])}` "
          f"({time.strftime('%Y-%m-%d %H:%M')})\n")
    print(f"App concurrency {args.concurrency or limits.APP_CONCURRENCY} requests at once.\n")
    print(table(room, args.chatters + args.runs, wall, (rss_before, rss_after), (load_before, load_after)))


if __name__ == "__main__":
    main()

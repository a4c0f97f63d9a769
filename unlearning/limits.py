"""Every limit Unlearning Studio enforces, in one place.

The engine enforces them (data.py, settings, runs, the studio's queue); the CLI prints them
(`python -m unlearning limits`) and the app shows the same table (`describe()`), so a user
reads one set of numbers everywhere. Code reads them as `limits.X` at call time, so a test
can monkeypatch one. No torch here: the UI imports this module.
"""

from __future__ import annotations

# -- data
MAX_FILE_BYTES = 20 * 1024 * 1024  # one uploaded forget/retain file
MAX_EXAMPLES = 20_000  # QA pairs or passages in one file
MAX_FIELD_CHARS = 20_000  # one question, answer or passage before chunking
MAX_LINE_CHARS = 200_000  # one JSONL line
MAX_TOKENS = 512  # tokens per training/eval example; longer passages are chunked
MAX_PROMPT_CHARS = 4_000  # one chat message

# -- runs
MAX_STEPS = 5_000  # unlearning or teaching steps in one run
MAX_RANK = 64  # LoRA rank
MAX_NEW_TOKENS = 256  # one generated reply
CHAT_NEW_TOKENS = 160  # a chat reply unless asked otherwise: room for a workshop biography (~80 tokens)
MAX_RUN_SECONDS = 60 * 60  # one run on the device, from the moment it gets the device
MAX_KEPT_RUNS = 8  # finished runs one session keeps to compare and chat with (artifacts are small)
DEVICE_RUNS = 1  # training runs on the device at the same time (per process)
MAX_WAITING_RUNS = 4  # runs queued behind those; one more is told "the queue is full"
MAX_RUN_DEVICE_S = 10 * 60  # the app: one run's or stress test's device time, estimated from its settings (service/budget.py)
SESSION_DEVICE_S = 20 * 60  # the app: estimated device time of the runs one session starts in any hour
EVAL_CACHE_ENTRIES = 256  # evaluations (one split of one model each) the process keeps in memory (evalcache.py)

# -- the web app
APP_CONCURRENCY = 8  # requests the app serves at once (chat, uploads, polling)
APP_QUEUE_SIZE = 64  # requests waiting beyond those; more get "the queue is full"
CHAT_CONCURRENCY = 32  # chat replies served at once, apart from the other requests (they decode as one batch)
CHAT_FIRST_S = 0.5  # a training step waits up to this long for the chat replies being decoded on its base
MODEL_LOAD_SECONDS = 300  # a request waits this long for a model to load (it goes on loading after)
CHAT_MODEL_WAIT_S = 2  # … but a chat message only this long (it holds a place of the chat pool while it waits)
MAX_VISITOR_MODELS = 2  # hub models named by visitors kept loaded at once; one more evicts the least recently used
RECONNECT_SECONDS = 20  # a page whose connection dropped has this long to come back before its session closes
KEEPALIVE_SECONDS = 5  # how often an open page tells the app it is still there
MAX_SESSIONS = 2_000  # browser sessions (and API clients' sessions) the app holds; one more closes the least recently used
CLIENT_SESSIONS = 100  # of those, held by one address at once; one more closes that address's least recently used
UPLOAD_GRACE_SECONDS = 600  # an uploaded file no session has claimed after this is deleted
ROOM_HOURS = 8  # a workshop room ends after this (or when its instructor's session closes)
MAX_ROOMS = 50  # rooms open at once in one app
ROOM_PEOPLE = 60  # people in one room
ROOM_RUNS = 500  # runs shared on one room's board
ROOM_CODE_TRIES = 10  # wrong room codes one session may type in a minute
SESSION_HOURS = 6  # a session's data, runs and artifacts are deleted after this (or when its tab closes)


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def describe() -> list[tuple[str, str]]:
    """(what, limit) rows, in the words shown to users by the CLI and the app."""
    return [
        ("size of one forget or retain file", _size(MAX_FILE_BYTES)),
        ("examples (QA pairs or passages) in one file", f"{MAX_EXAMPLES:,}"),
        ("characters in one question, answer or passage", f"{MAX_FIELD_CHARS:,}"),
        ("characters in one JSONL line", f"{MAX_LINE_CHARS:,}"),
        ("tokens per example (longer passages are split)", f"{MAX_TOKENS:,}"),
        ("characters in one chat message", f"{MAX_PROMPT_CHARS:,}"),
        ("steps in one run", f"{MAX_STEPS:,}"),
        ("LoRA rank", f"{MAX_RANK}"),
        ("new tokens in one reply", f"{MAX_NEW_TOKENS}"),
        ("new tokens in a chat reply unless asked otherwise", f"{CHAT_NEW_TOKENS}"),
        ("time of one run on the device", f"{MAX_RUN_SECONDS // 60} minutes"),
        ("finished runs one session keeps (to compare and chat with)", f"{MAX_KEPT_RUNS}"),
        ("runs on the device at once", f"{DEVICE_RUNS}"),
        ("runs waiting for the device", f"{MAX_WAITING_RUNS}"),
        ("app: device time of one run / of a session's runs in an hour (estimated)",
         f"{MAX_RUN_DEVICE_S // 60} / {SESSION_DEVICE_S // 60} minutes"),
        ("evaluations kept in memory (one split of one model each)", f"{EVAL_CACHE_ENTRIES}"),
        ("time a request waits for a model to load", f"{MODEL_LOAD_SECONDS // 60} minutes"),
        ("time a chat message waits for a model to load", f"{CHAT_MODEL_WAIT_S} s"),
        ("models named by visitors kept loaded at once", f"{MAX_VISITOR_MODELS}"),
        ("app requests served at once / waiting", f"{APP_CONCURRENCY} / {APP_QUEUE_SIZE}"),
        ("chat replies served at once (besides those)", f"{CHAT_CONCURRENCY}"),
        ("a training step waits for chat replies on its model", f"up to {CHAT_FIRST_S:g} s"),
        ("sessions the app holds at once / from one address", f"{MAX_SESSIONS:,} / {CLIENT_SESSIONS}"),
        ("an upload no session takes is deleted after", f"{UPLOAD_GRACE_SECONDS // 60} minutes"),
        ("an open page tells the app it is still there", f"every {KEEPALIVE_SECONDS} s"),
        ("people in one workshop room", f"{ROOM_PEOPLE}"),
        ("runs on one room's board", f"{ROOM_RUNS}"),
        ("workshop rooms open at once", f"{MAX_ROOMS}"),
        ("a workshop room ends", f"with its instructor's session, or after {ROOM_HOURS} hours"),
        ("wrong room codes one session may type in a minute", f"{ROOM_CODE_TRIES}"),
        ("a browser session's data is deleted", (f"{RECONNECT_SECONDS} s after its tab closes (a reloaded tab gets it "
                                                 f"back), or after {SESSION_HOURS} hours")),
    ]

"""Chat replies of concurrent sessions on one base model, decoded as one batch.

A room of thirty people chatting with the workshop model would otherwise be thirty greedy
decodes taking turns on the base's lock; a decode step of 48 rows costs about what one row
costs on a small model, so the batcher runs them together:

    batcher = ChatBatcher()
    for tokens in batcher.decode(base, [(ids, RowView()), (ids, artifact.row_view("unlearned"))]):
        ...   # every row's tokens so far, after each step that added to any

One lane (a thread) per base model: a request waits up to `window_s` for others to join,
then the lane decodes every waiting request's rows in one batch (generate.batched_greedy),
each row in its own view (lora.mixed_adapters: its adapters on for that row alone; ECO's
guard: its corrupted prompt embeddings, computed in the caller's thread). Requests arriving
meanwhile join the next batch. The lane takes the base's lock per step only, so training
steps and other views interleave; while it holds requests a training step on the same base
waits (base.defer_to_chat, up to limits.CHAT_FIRST_S), so replies come first. A caller that stops reading (a closed tab) ends its rows
at the next step; if a batched forward fails, each request in it is decoded again alone, so
only the one that fails alone sees the error. A lane idle for `idle_s` ends its thread.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and the engine load with the first reply (importing the service never loads torch)
    import torch

    from ..base import RowView
    from ..models import Loaded

_STEP, _END = "step", "end"


@dataclass(eq=False)
class _Request:
    """One caller's rows: prompt embeddings (T, d), adapters per row, and its mailbox."""

    embeds: list[torch.Tensor]
    adapters: list[tuple[str, ...]]
    max_new: int
    arrived: float = field(default_factory=time.monotonic)
    tokens: list[list[int]] = field(init=False)
    mailbox: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.tokens = [[] for _ in self.embeds]


class _Lane:
    """The requests waiting on one base model, and the thread decoding them."""

    def __init__(self, base: Loaded, batcher: ChatBatcher):
        self.base, self.batcher = base, batcher
        self.waiting: list[_Request] = []
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        _LANES.add(self)

    def put(self, request: _Request) -> None:
        from ..base import chat_requests

        chat_requests(self.base.model, 1)  # until its batch is decoded: training steps wait for it
        with self.cond:
            self.waiting.append(request)
            self.cond.notify()
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name=f"chat-batcher-{self.base.name}", daemon=True)
                self.thread.start()

    def _loop(self) -> None:
        while True:
            with self.cond:
                if _CLOSING.is_set() or (not self.waiting and not self.cond.wait_for(
                        lambda: self.waiting or _CLOSING.is_set(), timeout=self.batcher.idle_s)) or _CLOSING.is_set():
                    self.thread = None  # idle: the thread ends, and the batcher forgets the lane and its model
                    self.batcher._forget(self)
                    return
                first = self.waiting[0].arrived
            time.sleep(max(0.0, first + self.batcher.window_s - time.monotonic()))  # let others join
            with self.cond:
                batch: list[_Request] = []
                rows = 0
                while self.waiting and (not batch or rows + len(self.waiting[0].embeds) <= self.batcher.max_rows):
                    batch.append(self.waiting.pop(0))
                    rows += len(batch[-1].embeds)
            try:
                self._decode([r for r in batch if not r.cancelled])
            finally:
                from ..base import chat_requests

                chat_requests(self.base.model, -len(batch))

    def _decode(self, batch: list[_Request]) -> None:
        try:
            self._run(batch)
        except Exception as e:  # noqa: BLE001  any failure: it goes to its caller, never to the other rows
            if len(batch) == 1:
                batch[0].mailbox.put((_END, e))
                return
            for request in batch:  # find the one that fails: the others finish alone
                if not request.cancelled:
                    request.tokens = [[] for _ in request.embeds]
                    self._decode([request])
            return
        for request in batch:
            request.mailbox.put((_END, None))

    def _run(self, batch: list[_Request]) -> None:
        from ..base import base_lock
        from ..generate import batched_greedy
        from ..lora.deltas import mixed_adapters

        if not batch:
            return
        owner = [(r, j) for r in batch for j in range(len(r.embeds))]
        embeds = [e for r in batch for e in r.embeds]
        adapters = [a for r in batch for a in r.adapters]
        alive = [True] * len(owner)
        tok = self.base.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        model, lock = self.base.model, base_lock(self.base.model)

        @contextmanager
        def step():
            with lock, mixed_adapters(model, adapters):
                yield model

        decode = batched_greedy(step, embeds, tok.eos_token_id, pad, [r.max_new for r, _ in owner], alive)
        for new in decode:
            touched = set()
            for (request, j), token in zip(owner, new):
                if token is not None:
                    request.tokens[j].append(token)
                    touched.add(request)
            for request in touched:
                request.mailbox.put((_STEP, None))
            for i, (request, _) in enumerate(owner):
                alive[i] = alive[i] and not request.cancelled and not _CLOSING.is_set()


_CLOSING = threading.Event()  # set at interpreter exit: lanes stop decoding and their threads end
_LANES: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_lanes(wait_s: float = 5.0) -> None:
    """End every lane's thread before the interpreter tears down: a daemon thread still inside a
    torch call at exit can abort the process after its work is done."""
    _CLOSING.set()
    deadline = time.monotonic() + wait_s
    for lane in list(_LANES):
        with lane.cond:
            lane.cond.notify_all()
            thread = lane.thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))


class ChatBatcher:
    def __init__(self, window_s: float = 0.02, max_rows: int = 64, idle_s: float = 30.0):
        self.window_s, self.max_rows, self.idle_s = window_s, max_rows, idle_s
        self._lanes: dict[int, _Lane] = {}
        self._lock = threading.Lock()

    def decode(self, base: Loaded, rows: list[tuple[list[int], RowView]], max_new_tokens: int | None = None
               ) -> Iterator[list[list[int]]]:
        """Greedy replies to `rows` (prompt ids, view) on `base`, decoded with other callers'
        rows: each row's tokens so far, after each step that added to any. Closing the
        iterator ends this caller's rows; an error in decoding them is raised here."""
        import torch

        from ..generate import reply_tokens

        embed = base.model.get_input_embeddings()
        with torch.no_grad():
            embeds = [view.prefill(ids) if view.prefill is not None else embed(torch.tensor(ids, device=base.device))
                      for ids, view in rows]
        request = _Request(embeds, [view.adapters for _, view in rows], reply_tokens(max_new_tokens))
        self._lane(base).put(request)
        shown: list[list[int]] = [[] for _ in rows]
        try:
            while True:
                kind, error = request.mailbox.get()
                while kind == _STEP and not request.mailbox.empty():  # fell behind: show the latest
                    kind, error = request.mailbox.get()
                if error is not None:
                    raise error
                tokens = [list(t) for t in request.tokens]
                if tokens != shown:
                    shown = tokens
                    yield tokens
                if kind == _END:
                    return
        finally:
            request.cancelled = True

    def _forget(self, lane: _Lane) -> None:
        with self._lock:
            if self._lanes.get(id(lane.base.model)) is lane:
                del self._lanes[id(lane.base.model)]

    def _lane(self, base: Loaded) -> _Lane:
        with self._lock:
            lane = self._lanes.get(id(base.model))
            if lane is None or lane.base.model is not base.model:
                lane = self._lanes[id(base.model)] = _Lane(base, self)
            return lane

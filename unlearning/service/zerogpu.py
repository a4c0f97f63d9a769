"""The app's side of ZeroGPU: runs and chat replies done in GPU workers (service/worker.py).

The app checks a job as the local backend would (the same `Studio.check`), then each run,
and each chat reply, is one `spaces.GPU` call that streams its messages back. The run's
handle, a `RemoteRun`, is fed by `drive()`, which the request that started the run calls
(the GPU call belongs to that request); the page reads the handle as it reads a local run.

    UNLEARNING_GPU_SECONDS         the GPU time one run or "teach first" asks for (default 120)
    UNLEARNING_GPU_CHAT_SECONDS    … one chat reply (default 30)
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import UserError, one_line
from ..runs import Event
from .budget import charge
from .chat import check_prompt
from .handles import Reply
from .jobs import ChatJob, RunJob
from .saved import SavedArtifact
from .session import Session
from .studio import Studio
from .worker import ChatWork, RunWork, Work, execute

STOP_SHARE = 0.9  # a run stops itself at this share of its GPU time, keeping the rest to save
FINAL = ("done", "failed", "cancelled")

GpuCall = Callable[[Work], Iterator[Any]]


def seconds(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def gpu_call(studio: Studio, duration: int) -> GpuCall:
    """A `spaces.GPU` generator that does one piece of work in a GPU worker."""
    import spaces

    def run_in_worker(work: Work):  # runs in the worker: work and every message are pickled across
        yield from execute(studio, work)

    return spaces.GPU(duration=duration)(run_in_worker)


def stream(call: GpuCall, work: Work) -> Iterator[Any]:
    """The work's messages; a platform failure (quota, a GPU taken back) becomes one sentence."""
    try:
        yield from call(work)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001  the platform's errors have no common type
        raise UserError(f"The GPU worker stopped: {one_line(e) or type(e).__name__}.") from None


class ZeroGpuBackend:
    """Runs and replies in ZeroGPU workers; same face as LocalBackend."""

    def __init__(self, studio: Studio, run_call: GpuCall | None = None, chat_call: GpuCall | None = None):
        self.studio = studio
        self.run_seconds = seconds("UNLEARNING_GPU_SECONDS", 120)
        self._run_call = run_call or gpu_call(studio, self.run_seconds)
        self._chat_call = chat_call or gpu_call(studio, seconds("UNLEARNING_GPU_CHAT_SECONDS", 30))

    def model_info(self, name: str | None) -> dict:
        return self.studio.models.info(name)

    def start(self, session: Session, job: RunJob) -> RemoteRun:
        with session.starting():  # one start at a time (Session.starting)
            seconds = self.studio.check(session, job)  # the same checks, here, before any GPU time is spent
            job = job.begin(session)
            flag = session.folder / f"cancel-{uuid.uuid4().hex[:8]}"
            work = RunWork(job, session.id, str(session.folder), dict(session.data), *_current(session),
                           benchmark=session.uses_benchmark(), cancel_flag=str(flag), seconds=STOP_SHARE * self.run_seconds)
            run = session.adopt(RemoteRun(f"{type(job).__name__}-{session.id}", job.unlearning_method(), flag,
                                          lambda: stream(self._run_call, work), partial(_keep, session, job), job.kind))
            charge(session, seconds)
            return run

    def chat(self, session: Session, job: ChatJob) -> Iterator[Reply]:
        check_prompt(job.prompt)  # (no data: a reply needs none, and each call pickles its work)
        return stream(self._chat_call, ChatWork(job, session.id, str(session.folder), {}, *_current(session)))


def _current(session: Session) -> tuple[str | None, int | None]:
    """The folder and number of the session's current kept run, which the worker attaches for
    chat and stress tests."""
    artifact = session.artifact
    return (str(artifact.folder), session.current) if isinstance(artifact, SavedArtifact) else (None, None)


def _keep(session: Session, job: RunJob, message: Any) -> None:
    """The worker saved what the finished job leaves in the session folder: the app's session
    keeps it, unless it closed meanwhile."""
    with session.lock:
        if not session.closed:
            job.keep(session, job.load(session.folder, message))


class RemoteRun:
    """A run executing in a worker, fed with the worker's messages by `drive()`."""

    def __init__(self, name: str, method: str | None, cancel_flag: Path, messages: Callable[[], Iterator[dict]],
                 on_done: Callable[[Any], None], kind: str = "unlearn"):
        self.name, self.method, self.kind, self.state = name, method, kind, "running"
        self.result: Any = None
        self.error: str | None = None
        self.traceback: str | None = None
        self._flag, self._messages, self._on_done = cancel_flag, messages, on_done
        self._events: list[Event] = []
        self._lock = threading.Lock()

    @property
    def finished(self) -> bool:
        return self.state in FINAL

    def cancel(self) -> None:
        """Ask the worker to stop: it looks for this file between steps (threads and events
        do not cross the fork). A session folder already deleted stops it too."""
        try:
            self._flag.touch()
        except OSError:
            pass

    def since(self, index: int) -> list[Event]:
        with self._lock:
            return self._events[index:]

    def drive(self) -> None:
        """Make the GPU call and feed its messages until the run ends (blocks till then)."""
        try:
            for message in self._messages():
                self.feed(message)
        except UserError as e:
            self.fail(str(e))
        self.fail("The GPU worker ended before the run did.")  # no-op when the run reported its end

    def feed(self, message: dict) -> None:
        """One message from the worker: new events, and at the end the final state."""
        with self._lock:
            self._events.extend(message.get("events", ()))
        state = message.get("state", "running")
        if state in FINAL and not self.finished:
            self.result, self.error, self.traceback = message.get("result"), message.get("error"), message.get("traceback")
            if self.traceback:
                print(self.traceback, file=sys.stderr)  # the operator's log; never the page
            if state == "done":
                self._on_done(self.result)
            self.state = state
            try:
                self._flag.unlink(missing_ok=True)  # a late Cancel must not linger for nothing
            except OSError:
                pass

    def fail(self, message: str) -> None:
        """The worker ended without a final message (the platform stopped it, a quota, …)."""
        if not self.finished:
            self.feed({"state": "failed", "error": message, "events": [Event("error", message=message)]})

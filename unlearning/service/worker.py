"""The worker side of ZeroGPU: a job done in a GPU worker process, for one session.

On a ZeroGPU Space the GPU exists only inside a `spaces.GPU` call, which runs in a process
forked from the app's; its arguments and what it yields are pickled across, and nothing it
changes in memory comes back (nor does the app's later memory reach a worker that is reused).
So the app sends a `Work` (the typed job, the session's data and folder); the worker rebuilds
the session from it and from the folder, runs the ordinary Studio path there, and keeps what
the session must keep in the folder, which both processes see (service/saved.py): each job
says what that is (RunJob.save). The app's side is service/zerogpu.py.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data import Dataset
from ..errors import UserError
from ..runs import Event, Run
from .jobs import ChatJob, Job, RunJob
from .saved import TAUGHT
from .session import Session
from .studio import Studio

if TYPE_CHECKING:
    from ..models import Loaded
    from ..suites import Benchmark

POLL_SECONDS = 0.2  # how often a worker sends new events and looks for the cancel flag


@dataclass
class Work(ABC):
    """Everything a worker needs to act for one session: plain, picklable data; each kind says
    what it sends back (`messages`)."""

    job: Job
    session_id: str
    folder: str
    data: dict[str, Dataset]
    artifact: str | None = None  # the session's current kept run (its folder), for chat and stress tests
    number: int | None = None  # … and its number there, which it keeps here
    benchmark: Benchmark | None = None  # the suite the session's data came from (its splits and oracle)

    @abstractmethod
    def messages(self, studio: Studio, session: Session) -> Iterator[Any]:
        """Do the work in this worker, yielding the picklable messages the app reads."""


@dataclass
class RunWork(Work):
    """A run: batches of events, then one final {"state", "error", "result"}."""

    job: RunJob
    cancel_flag: str | None = None
    seconds: float | None = None  # stop the run (as failed) after this long: the GPU lease

    def messages(self, studio: Studio, session: Session) -> Iterator[dict]:
        run = studio.start(session, self.job)
        stopped = yield from _follow(run, self)
        yield _final(run, stopped, self, lambda: self.job.save(session, Path(self.folder), run.result))


@dataclass
class ChatWork(Work):
    """A chat reply: the growing Replies."""

    job: ChatJob

    def messages(self, studio: Studio, session: Session) -> Iterator[Any]:
        yield from studio.chat(session, self.job)


def execute(studio: Studio, work: Work) -> Iterator[Any]:
    """Do `work` here (in the GPU worker), yielding picklable messages."""
    drop_inherited_connections()
    session = _rebuild(studio, work)
    try:
        yield from work.messages(studio, session)
    finally:  # a reused worker keeps its copy of the base: leave it as it was
        session.clear_result()


_cleaned: set[int] = set()  # the processes that dropped the app's connections (once each)
_IMPORTED_IN = os.getpid()  # the app's process: a worker forked from it has another pid


def drop_inherited_connections() -> None:
    """Close the app's network connections this forked worker inherited (once per process).

    A worker forked from the app holds copies of every socket the app had open at that moment,
    the browsers' event streams among them; when the app then ends one of those streams, the
    copy keeps the connection open, the browser never sees it end and waits on it for replies
    that go elsewhere — its run's progress froze at the moment of the fork. Only network (IP)
    sockets are closed: the worker's own pipe to the app is a local one."""
    if os.getpid() in (_IMPORTED_IN, *_cleaned) or not os.path.isdir("/proc/self/fd"):
        return  # (in the app's own process, as without ZeroGPU, nothing is closed)
    _cleaned.add(os.getpid())
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            probe = socket.socket(fileno=fd)
            family = probe.family
            probe.detach()  # (the probe must not close it)
            if family in (socket.AF_INET, socket.AF_INET6):
                os.close(fd)
        except OSError:
            continue


def _rebuild(studio: Studio, work: Work) -> Session:
    """The session as far as `work`'s job needs it (Job.needs_*): its data and folder, the
    taught model and oracle, the current kept run. Never `close()` it: that would delete the
    folder the app still uses."""
    job, folder = work.job, Path(work.folder)
    session = Session(id=work.session_id, workdir=folder, data=dict(work.data))
    session.benchmark = work.benchmark
    if job.needs_taught and (folder / TAUGHT / "model").is_dir():
        session.taught = _load_taught(studio, job.model_name, folder / TAUGHT / "model", "model")
        if job.needs_oracle and (folder / TAUGHT / "oracle").is_dir():
            session.taught_oracle = _load_taught(studio, job.model_name, folder / TAUGHT / "oracle", "oracle")
    if job.needs_run and work.artifact is not None:
        _attach_saved(studio, session, job.model_name, Path(work.artifact), work.number)
    return session


def _attach_saved(studio: Studio, session: Session, name: str, artifact: Path, number: int | None) -> None:
    """The session's current kept run, from its folder, attached to this worker's base."""
    from ..artifacts import MANIFEST
    from ..attach import load_unlearned

    if (artifact / MANIFEST).is_file():
        unlearned = load_unlearned(studio.base(session, name), artifact)
        session.keep(unlearned.method, unlearned, None, number)


def _load_taught(studio: Studio, name: str, folder: Path, label: str) -> Loaded:
    from ..models import load_model

    loaded = load_model(str(folder), studio.models.device, studio.models.trust_remote_code)
    return replace(loaded, name=f"{name} (taught {label})")


def _follow(run: Run, work: RunWork, poll: float = POLL_SECONDS) -> Generator[dict, None, str | None]:
    """Stream the run's events in batches until it ends. Stop it when the app asks (the
    cancel flag, or the session folder gone) or the GPU lease is nearly used up; return why."""
    flag = Path(work.cancel_flag) if work.cancel_flag else None
    deadline = time.monotonic() + work.seconds if work.seconds else float("inf")
    stopped, i = None, 0
    while True:
        if stopped is None:
            if (flag is not None and flag.exists()) or not Path(work.folder).is_dir():
                stopped = "cancel"
            elif time.monotonic() > deadline:
                stopped = "time"
            if stopped:
                run.cancel()
        run.wait(poll)
        done = run.finished  # read before the events, so none arrives after the last batch
        events = run.since(i)
        i += len(events)
        if events:
            yield {"state": "running", "events": [_plain(e) for e in events]}
        if done:
            return stopped


def _final(run: Run, stopped: str | None, work: RunWork, keep: Callable[[], Any]) -> dict:
    """The last message: the run's end state, after `keep()` saved what the session keeps."""
    if stopped == "time" and run.state == "cancelled":
        error = (f"The run was stopped after {work.seconds:.0f} s, the GPU time this Space lends one run; "
                 "use fewer steps (or ask the Space's owner to raise UNLEARNING_GPU_SECONDS).")
        return {"state": "failed", "error": error, "events": [Event("error", message=error)]}
    if run.state != "done":
        return {"state": run.state, "error": run.error, "traceback": run.traceback}
    try:
        return {"state": "done", "result": keep()}
    except UserError as e:
        return {"state": "failed", "error": str(e), "events": [Event("error", message=str(e))]}


def _plain(event: Event) -> Event:
    """Values as Python floats: nothing that holds a tensor (a CUDA one least) crosses the pipe."""
    fraction = None if event.fraction is None else float(event.fraction)
    return replace(event, values={k: float(v) for k, v in event.values.items()}, fraction=fraction)

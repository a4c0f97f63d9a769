"""The studio's work done in another process: a ZeroGPU Space's GPU worker.

On a ZeroGPU Space the GPU exists only inside a `spaces.GPU` call, which runs in a process
forked from the app's; its arguments and what it yields are pickled across, and nothing it
changes in memory comes back (nor does the app's later memory reach a worker that is reused).
So the app prepares a picklable `Job` (model name, datasets, the session's folder); the worker
rebuilds the session from it and from the folder, runs the ordinary Studio path there
(start, teach_first, chat) and keeps what the session must keep in the folder, which both
processes see:

    <session folder>/unlearned/            the last finished run's artifact (adapter or ECO guard)
    <session folder>/taught/model, oracle  "teach first" models (save_pretrained)
    <session folder>/cancel-<run>          written by Cancel in the app; the worker stops at its next step

    job = prepare(studio, session, "unlearn", "workshop", method="eco", settings={})  # the app
    for message in gpu_call(job):       # gpu_call = spaces.GPU(lambda job: execute(studio, job))
        session.run.feed(message)       # a RemoteRun: the same face as a Run for the UI
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator

from .artifacts import MANIFEST, load_unlearned, read_manifest
from .data import Dataset
from .errors import UserError
from .models import Loaded, load_model
from .runs import Event, Run

if TYPE_CHECKING:
    from .studio import SessionState, Studio

UNLEARNED, TAUGHT = "unlearned", "taught"
POLL_SECONDS = 0.2  # how often a worker sends new events and looks for the cancel flag
FINAL = ("done", "failed", "cancelled")


@dataclass
class Job:
    """Everything a worker needs to act for one session: plain, picklable data."""

    action: str  # "unlearn", "teach" or "chat"
    model_name: str
    session_id: str
    folder: str
    data: dict[str, Dataset]
    args: dict[str, Any] = field(default_factory=dict)  # method + settings, epochs, or prompt
    cancel_flag: str | None = None
    seconds: float | None = None  # stop the run (as failed) after this long: the GPU lease


class RemoteRun:
    """The app's side of a run executing in a worker: the face of a `Run` (state, finished,
    since, error, result, cancel), fed with the worker's messages."""

    def __init__(self, name: str, cancel_flag: Path, on_done: Callable[[Any], None] = lambda result: None):
        self.name, self.state = name, "running"
        self.result: Any = None
        self.error: str | None = None
        self.traceback: str | None = None
        self._flag, self._on_done = cancel_flag, on_done
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


class SavedArtifact:
    """The app's handle on an artifact a worker saved in the session folder: what the report
    panel needs (the method's name, a copy to zip or push), and nothing that runs a model."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.method = read_manifest(folder)["method"]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        if folder.resolve() != self.folder.resolve():
            shutil.copytree(self.folder, folder, dirs_exist_ok=True)
        return folder

    def release(self) -> None:
        """Nothing to drop: the worker released the adapters from its copy of the base."""


# ---------------------------------------------------------------------- app side
def prepare(studio: Studio, session: SessionState, action: str, model_name: str,
            seconds: float | None = None, **args: Any) -> Job:
    """Check the request as the in-process path would (same sentences) and build its job.
    For "unlearn" and "teach" the session gets a RemoteRun to feed; "chat" needs none."""
    from .studio import check_prompt

    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    if action == "chat":  # (no data: a reply needs none, and each call pickles its job)
        check_prompt(args["prompt"])
        return Job(action, model_name, session.id, str(session.folder), {}, dict(args))
    job = Job(action, model_name, session.id, str(session.folder), dict(session.data), dict(args), seconds=seconds)
    if session.run is not None and not session.run.finished:
        raise UserError("A run is already going in this session; cancel it or wait for it to finish.")
    on_done = {"unlearn": _prepare_unlearn, "teach": _prepare_teach}[action](studio, session, model_name, args)
    job.cancel_flag = str(session.folder / f"cancel-{uuid.uuid4().hex[:8]}")
    session.run = RemoteRun(f"{action}-{session.id}", Path(job.cancel_flag), on_done)
    return job


def _prepare_unlearn(studio: Studio, session: SessionState, model_name: str, args: dict) -> Callable:
    from .methods import get_method
    from .settings import build

    build(get_method(args["method"]).Config, args["settings"])  # a bad setting is refused here, not on the GPU
    studio.splits(session)
    studio.model(model_name)  # an unknown model too (and loaded before a worker forks: it inherits it)
    if session.unlearned is not None:
        session.unlearned.release()
    session.unlearned, session.report = None, None
    shutil.rmtree(session.folder / UNLEARNED, ignore_errors=True)

    def adopt(report: dict) -> None:
        session.unlearned, session.report = SavedArtifact(session.folder / UNLEARNED), report

    return adopt


def _prepare_teach(studio: Studio, session: SessionState, model_name: str, args: dict) -> Callable:
    studio.splits(session)
    studio.model(model_name)
    return lambda result: None  # the taught models stay in the folder; workers load them from there



# ---------------------------------------------------------------------- worker side
def execute(studio: Studio, job: Job) -> Iterator[dict]:
    """Do `job` here (in the GPU worker), yielding picklable messages: for a run, batches of
    events then one final {"state", "error", "result"}; for chat, the growing replies."""
    session = _rebuild(studio, job)
    try:
        yield from ACTIONS[job.action](studio, session, job)
    finally:  # a reused worker keeps its copy of the base: leave it as it was
        if session.unlearned is not None:
            session.unlearned.release()


def _rebuild(studio: Studio, job: Job) -> SessionState:
    """The session as far as `job` needs it: its data and folder, and the taught model (and
    for a run its oracle). Never `close()` it: that would delete the folder the app still uses."""
    from .studio import SessionState

    session = SessionState(id=job.session_id, folder=Path(job.folder), data=dict(job.data))
    taught = Path(job.folder) / TAUGHT
    if job.action != "teach" and (taught / "model").is_dir():  # teaching starts again from the base
        session.taught = _load_taught(studio, job.model_name, taught / "model", "model")
        if job.action == "unlearn" and (taught / "oracle").is_dir():
            session.taught_oracle = _load_taught(studio, job.model_name, taught / "oracle", "oracle")
    return session


def _load_taught(studio: Studio, model_name: str, folder: Path, label: str) -> Loaded:
    return replace(load_model(str(folder), studio.device, studio.trust_remote_code), name=f"{model_name} (taught {label})")


def _unlearn(studio: Studio, session: SessionState, job: Job) -> Iterator[dict]:
    run = studio.start(session, job.model_name, job.args["method"], job.args["settings"])
    stopped = yield from _follow(run, job)

    def keep() -> dict:
        _write(Path(job.folder) / UNLEARNED, session.unlearned.save)
        return session.report

    yield _final(run, stopped, job, keep)


def _teach(studio: Studio, session: SessionState, job: Job) -> Iterator[dict]:
    run = studio.teach_first(session, job.model_name, **job.args)
    stopped = yield from _follow(run, job)

    def keep() -> str:
        for label, loaded in (("model", session.taught), ("oracle", session.taught_oracle)):
            _write(Path(job.folder) / TAUGHT / label, lambda d, m=loaded: _save_loaded(m, d))
        return "taught"

    yield _final(run, stopped, job, keep)


def _chat(studio: Studio, session: SessionState, job: Job) -> Iterator[dict]:
    artifact = Path(job.folder) / UNLEARNED
    if (artifact / MANIFEST).is_file():
        session.unlearned = load_unlearned(session.taught or studio.model(job.model_name), artifact)
    yield from studio.chat(session, job.model_name, job.args["prompt"])


ACTIONS = {"unlearn": _unlearn, "teach": _teach, "chat": _chat}


def _follow(run: Run, job: Job, poll: float = POLL_SECONDS) -> Generator[dict, None, str | None]:
    """Stream the run's events in batches until it ends. Stop it when the app asks (the
    cancel flag, or the session folder gone) or the GPU lease is nearly used up; return why."""
    flag = Path(job.cancel_flag) if job.cancel_flag else None
    deadline = time.monotonic() + job.seconds if job.seconds else float("inf")
    stopped, i = None, 0
    while True:
        if stopped is None:
            if (flag is not None and flag.exists()) or not Path(job.folder).is_dir():
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


def _final(run: Run, stopped: str | None, job: Job, keep: Callable[[], Any]) -> dict:
    """The last message: the run's end state, after `keep()` saved what the session keeps."""
    if stopped == "time" and run.state == "cancelled":
        error = (f"The run was stopped after {job.seconds:.0f} s, the GPU time this Space lends one run; "
                 "use fewer steps (or ask the Space's owner to raise UNLEARNING_GPU_SECONDS).")
        return {"state": "failed", "error": error, "events": [Event("error", message=error)]}
    if run.state != "done":
        return {"state": run.state, "error": run.error, "traceback": run.traceback}
    try:
        return {"state": "done", "result": keep()}
    except UserError as e:
        return {"state": "failed", "error": str(e), "events": [Event("error", message=str(e))]}


def _write(folder: Path, save: Callable[[Path], Any]) -> None:
    """Save into a fresh sibling folder, then swap it in: a reader never sees half a save."""
    tmp = folder.with_name(f"{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        save(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _save_loaded(loaded: Loaded, folder: Path) -> None:
    loaded.model.save_pretrained(str(folder))
    loaded.tokenizer.save_pretrained(str(folder))


def _plain(event: Event) -> Event:
    """Values as Python floats: nothing that holds a tensor (a CUDA one least) crosses the pipe."""
    fraction = None if event.fraction is None else float(event.fraction)
    return replace(event, values={k: float(v) for k, v in event.values.items()}, fraction=fraction)

"""The worker side of ZeroGPU: a job done in a GPU worker process, for one session.

On a ZeroGPU Space the GPU exists only inside a `spaces.GPU` call, which runs in a process
forked from the app's; its arguments and what it yields are pickled across, and nothing it
changes in memory comes back (nor does the app's later memory reach a worker that is reused).
So the app sends a `Work` (the typed job, the session's data and folder); the worker rebuilds
the session from it and from the folder, runs the ordinary Studio path there, and keeps what
the session must keep in the folder, which both processes see:

    <session folder>/unlearned/            a run's artifact (adapter or ECO guard) as the worker saved it;
    <session folder>/runs/<id>/            … moved here by the app when the run is kept (one per kept run)
    <session folder>/taught/model, oracle  "teach first" models (save_pretrained)
    <session folder>/cancel-<run>          written by Cancel in the app; the worker stops at its next step

The app's side is service/zerogpu.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from ..data import Dataset
from ..errors import UserError
from ..runs import Event, Run
from .jobs import AttackJob, ChatJob, RunJob, TeachJob, UnlearnJob
from .session import Session
from .studio import Studio

UNLEARNED, TAUGHT = "unlearned", "taught"
POLL_SECONDS = 0.2  # how often a worker sends new events and looks for the cancel flag


@dataclass
class Work:
    """Everything a worker needs to act for one session: plain, picklable data."""

    job: RunJob | ChatJob
    session_id: str
    folder: str
    data: dict[str, Dataset]
    cancel_flag: str | None = None
    seconds: float | None = None  # stop the run (as failed) after this long: the GPU lease
    artifact: str | None = None  # the session's current kept run (its folder), for chat and stress tests


def execute(studio: Studio, work: Work) -> Iterator[Any]:
    """Do `work` here (in the GPU worker), yielding picklable messages: for a run, batches of
    events then one final {"state", "error", "result"}; for chat, the growing Replies."""
    drop_inherited_connections()
    session = _rebuild(studio, work)
    try:
        if isinstance(work.job, ChatJob):
            yield from _chat(studio, session, work.job)
        else:
            yield from _run(studio, session, work, work.job)
    finally:  # a reused worker keeps its copy of the base: leave it as it was
        if session.artifact is not None:
            session.artifact.release()


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
    """The session as far as `work` needs it: its data and folder, and the taught model (and
    for a run its oracle). Never `close()` it: that would delete the folder the app still uses."""
    session = Session(id=work.session_id, workdir=Path(work.folder), data=dict(work.data))
    taught = Path(work.folder) / TAUGHT
    if not isinstance(work.job, TeachJob) and (taught / "model").is_dir():  # teaching starts again from the base
        session.taught = _load_taught(studio, work.job.model_name, taught / "model", "model")
        if isinstance(work.job, (UnlearnJob, AttackJob)) and (taught / "oracle").is_dir():
            session.taught_oracle = _load_taught(studio, work.job.model_name, taught / "oracle", "oracle")
    if isinstance(work.job, (ChatJob, AttackJob)):
        _attach_saved(studio, session, work.job.model_name, work.artifact)
    return session


def _attach_saved(studio: Studio, session: Session, name: str, folder: str | None) -> None:
    """The session's current kept run, from its folder, attached to this worker's base."""
    from ..artifacts import MANIFEST, load_unlearned

    if folder is None:
        return
    artifact = Path(folder)
    if (artifact / MANIFEST).is_file():
        session.artifact = load_unlearned(studio.base(session, name), artifact)


def _load_taught(studio: Studio, name: str, folder: Path, label: str):
    from ..models import load_model

    loaded = load_model(str(folder), studio.models.device, studio.models.trust_remote_code)
    return replace(loaded, name=f"{name} (taught {label})")


def _run(studio: Studio, session: Session, work: Work, job: RunJob) -> Iterator[dict]:
    run = studio.start(session, job)
    stopped = yield from _follow(run, work)
    keep = {UnlearnJob: _keep_artifact, TeachJob: _keep_taught, AttackJob: _keep_robustness}[type(job)]
    yield _final(run, stopped, work, lambda: keep(session, Path(work.folder)))


def _keep_artifact(session: Session, folder: Path) -> dict | None:
    assert session.artifact is not None, "a finished unlearning run leaves its artifact"
    _write(folder / UNLEARNED, session.artifact.save)
    return session.report


def _keep_robustness(session: Session, folder: Path) -> dict | None:
    return session.robustness


def _keep_taught(session: Session, folder: Path) -> str:
    for label, loaded in (("model", session.taught), ("oracle", session.taught_oracle)):
        _write(folder / TAUGHT / label, partial(_save_loaded, loaded))
    return "taught"


def _chat(studio: Studio, session: Session, job: ChatJob) -> Iterator[Any]:
    yield from studio.chat(session, job)


def _follow(run: Run, work: Work, poll: float = POLL_SECONDS) -> Generator[dict, None, str | None]:
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


def _final(run: Run, stopped: str | None, work: Work, keep: Callable[[], Any]) -> dict:
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


def _write(folder: Path, save: Callable[[Path], Any]) -> None:
    """Save into a fresh sibling folder, then swap it in: a reader never sees half a save."""
    tmp = folder.with_name(f"{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        save(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _save_loaded(loaded, folder: Path) -> None:
    loaded.model.save_pretrained(str(folder))
    loaded.tokenizer.save_pretrained(str(folder))


def _plain(event: Event) -> Event:
    """Values as Python floats: nothing that holds a tensor (a CUDA one least) crosses the pipe."""
    fraction = None if event.fraction is None else float(event.fraction)
    return replace(event, values={k: float(v) for k, v in event.values.items()}, fraction=fraction)

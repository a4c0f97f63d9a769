"""Where the model work runs: ONE interface, two implementations, chosen here only.

    backend = choose_backend(studio)          # LocalBackend, or ZeroGpuBackend on a ZeroGPU Space
    run = backend.start(session, UnlearnJob("workshop", "eco"))   # a RunHandle; read run.since(i)
    run.drive()                               # returns at once here; carries a GPU call there
    for reply in backend.chat(session, ChatJob("workshop", "Hi")): ...

Everywhere (a laptop, CPU or dedicated-GPU hardware) a run goes to a background thread and a
chat reply streams from the request itself. On a Hugging Face ZeroGPU Space the GPU exists
only inside a call decorated with `spaces.GPU`, which runs in a worker process forked from
the app: there each run, and each chat reply, is one such call (service/zerogpu.py).

    UNLEARNING_ZERO_GPU=1      use ZeroGPU wherever `spaces` imports (tests); 0: never
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Protocol

from .handles import Reply, RunHandle
from .jobs import ChatJob, RunJob
from .session import Session
from .studio import Studio


class Backend(Protocol):
    studio: Studio

    def model_info(self, name: str | None) -> dict:
        """Name, device, dtype and size of a model (loading it if needed)."""

    def start(self, session: Session, job: RunJob) -> RunHandle:
        """Check the job and start it for the session (refusals are UserErrors, one sentence each)."""

    def chat(self, session: Session, job: ChatJob) -> Iterator[Reply]:
        """Both answers to one message, growing."""


class LocalBackend:
    """Runs on background threads of this process; replies from the request's own thread."""

    def __init__(self, studio: Studio):
        self.studio = studio

    def model_info(self, name: str | None) -> dict:
        return self.studio.models.info(name)

    def start(self, session: Session, job: RunJob) -> RunHandle:
        return self.studio.start(session, job)

    def chat(self, session: Session, job: ChatJob) -> Iterator[Reply]:
        return self.studio.chat(session, job)


def zero_gpu() -> bool:
    """True on a ZeroGPU Space (SPACES_ZERO_GPU set, as the platform does, and `spaces`
    importable), or where UNLEARNING_ZERO_GPU=1 asks for it. Importing `spaces` here is what
    lets it patch torch, so call this before any model loads (app.main does)."""
    override = os.environ.get("UNLEARNING_ZERO_GPU", "").strip()
    platform = os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")
    if override == "0" or not (override == "1" or platform):
        return False
    try:
        import spaces  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(studio: Studio) -> Backend:
    if zero_gpu():
        from .zerogpu import ZeroGpuBackend

        return ZeroGpuBackend(studio)
    return LocalBackend(studio)

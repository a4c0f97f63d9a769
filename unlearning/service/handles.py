"""What the app holds while the engine works for it, whichever backend does the work:
a RunHandle on a run, the Artifact a finished unlearning run leaves, and each chat Reply."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..runs import Event


@dataclass
class Reply:
    """Both answers so far: `unlearned` is None while the session has no artifact; `flag` is
    ECO's classifier verdict ({"flagged", "score", "threshold"}) or None."""

    original: str
    unlearned: str | None = None
    flag: dict | None = None


@runtime_checkable
class RunHandle(Protocol):
    """A run as the app sees it, in a thread here or in a GPU worker."""

    name: str
    method: str | None  # the unlearning method (None for teaching): what its plots look like
    kind: str  # the job's kind ("unlearn", "teach", "attack"): which panel shows it
    state: str  # running, done, failed or cancelled
    error: str | None  # one sentence, when failed
    result: Any

    @property
    def finished(self) -> bool: ...

    def since(self, index: int) -> list[Event]: ...

    def cancel(self) -> None: ...

    def drive(self) -> None:
        """Carry the run to its end where the caller must (a GPU call lives in the request
        that made it); return at once where the run carries itself (a thread)."""


@runtime_checkable
class Artifact(Protocol):
    """The result of an unlearning run, as a session keeps it."""

    method: str

    def save(self, folder: str | Path) -> Path: ...

    def release(self) -> None: ...

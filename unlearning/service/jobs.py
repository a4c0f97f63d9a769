"""What the app asks the engine to do, as typed, picklable jobs, and the two handles it gets
back (whichever backend does the work: service/backends.py).

    UnlearnJob("workshop", "ihl-fila", {"steps": 40})   → a RunHandle; its artifact on success
    TeachJob("workshop")                                 → a RunHandle; the session's taught models
    AttackJob("workshop", ("relearn", "quantize"))       → a RunHandle; the artifact's stress-test report
    ChatJob("workshop", "Where was Yara born?")          → Reply after Reply as the answers grow
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..runs import Event


@dataclass(frozen=True)
class UnlearnJob:
    model_name: str
    method: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TeachJob:
    """Teach a session copy of the model the session's forget+retain data, and an oracle the
    retain data only (see teach.py)."""

    model_name: str
    epochs: int | None = None


@dataclass(frozen=True)
class AttackJob:
    """Stress-test the session's artifact: each attack on the original, the unlearned model
    and the oracle (attacks/); `settings` are AttackSettings fields."""

    model_name: str
    attacks: tuple[str, ...] = ()  # empty: every attack
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatJob:
    model_name: str
    prompt: str
    max_new_tokens: int | None = None


RunJob = UnlearnJob | TeachJob | AttackJob


def kind_of(job: RunJob) -> str:
    """"unlearn", "teach" or "attack": which panel shows the run."""
    return {UnlearnJob: "unlearn", TeachJob: "teach", AttackJob: "attack"}[type(job)]


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
    kind: str  # "unlearn", "teach" or "attack": which panel shows it
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

"""Unlearning artifacts and the two views of one base model (DESIGN.md §One base model).

An artifact is a folder: `unlearning.json` ({"method": name, "model": base, "settings": …})
plus the method's own files (a peft adapter, or an ECO guard). Loading one never copies the
base model: `Unlearned.view("original" | "unlearned")` runs the same loaded weights with
or without the unlearning, under the base's lock (one view active at a time).
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .models import Loaded

MANIFEST = "unlearning.json"

# One lock per loaded base model: switching adapters or guards is a change of shared state.
_locks: dict[int, threading.RLock] = {}
_locks_guard = threading.Lock()


def base_lock(model) -> threading.RLock:
    """The lock of a shared base. Invariant: while nobody holds it, the base is the original
    model (LoRA views switch their adapters on only while holding it)."""
    with _locks_guard:
        return _locks.setdefault(id(model), threading.RLock())


# Chat first on a shared base: the lock is not fair, and a training run takes it for a whole
# step (forward and backward), so a room's replies, decoded a token per step of the batcher,
# waited behind run after run of steps (chat p95 13 s in a room of thirty while a run trained).
# The batcher counts the chat requests it holds on a base; a training step waits while there
# are any, up to limits.CHAT_FIRST_S, then takes its turn anyway.
_chatting: dict[int, int] = {}


def chat_requests(model, n: int) -> None:
    """`n` more (or, negative, fewer) chat requests waiting or decoding on `model`'s base."""
    with _locks_guard:
        count = _chatting.get(id(model), 0) + n
        if count > 0:
            _chatting[id(model)] = count
        else:
            _chatting.pop(id(model), None)


def defer_to_chat(model, limit_s: float | None = None) -> float:
    """Wait while chat replies are being decoded on `model`'s base, at most `limit_s`
    (limits.CHAT_FIRST_S); returns the seconds waited."""
    from . import limits

    t0 = time.monotonic()
    deadline = t0 + (limits.CHAT_FIRST_S if limit_s is None else limit_s)
    while _chatting.get(id(model)) and time.monotonic() < deadline:
        time.sleep(0.005)
    return time.monotonic() - t0


class LockedModel:
    """A model-like proxy that opens a view around each call (forward or generate) and
    closes it after, so sessions sharing one base interleave call by call instead of one
    holding it for a whole evaluation. Attributes (config, device, parameters, eval) come
    from the base model itself."""

    def __init__(self, base, open_view: Callable[[], Any]):
        self._base, self._open_view = base, open_view

    def __call__(self, *args, **kwargs):
        with self._open_view() as model:
            return model(*args, **kwargs)

    def generate(self, *args, **kwargs):
        with self._open_view() as model:
            return model.generate(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._base, name)


def original(model) -> LockedModel:
    """The plain base, safe to call while other sessions use views of it."""

    @contextmanager
    def open_view():
        with base_lock(model):
            yield model

    return LockedModel(model, open_view)


@dataclass(frozen=True)
class RowView:
    """One row of a batch decoded on a shared base (service/batcher.py), in one view:
    `adapters` on for that row alone (lora.mixed_adapters), and `prefill` giving the prompt's
    input embeddings (T, d) from its ids where the view changes them (ECO's guard)."""

    adapters: tuple[str, ...] = ()
    prefill: Callable[[list[int]], Any] | None = None


class Unlearned(ABC):
    """A base model plus one unlearning artifact. Methods subclass this."""

    method: str = ""

    def __init__(self, loaded: Loaded, settings: dict[str, Any]):
        self.loaded = loaded
        self.settings = settings
        self.lock = base_lock(loaded.model)
        # Filled by the method's run, for the report: one record per step, extra blocks
        # (ECO's "eco"), and the cost.
        self.history: list[dict[str, float]] = []
        self.extra_report: dict[str, Any] = {}
        self.trainable_params = 0
        self.steps = 0

    @contextmanager
    def view(self, which: str) -> Iterator[Any]:
        """Yield the model for "original" or "unlearned", holding the base's lock.

        The yielded object behaves like a causal LM for everything the engine does with one:
        `model(input_ids=…, attention_mask=…, labels=…)`, `model.generate(…)`,
        `model.parameters()`. For LoRA methods it is the peft model with the right adapters
        active; for ECO a guard that corrupts flagged prompts.
        """
        if which not in ("original", "unlearned"):
            raise ValueError(which)
        with self.lock, self._activate(which) as model:
            yield model

    @abstractmethod
    def _activate(self, which: str):
        """A context manager yielding the model with `which` in effect."""

    def proxy(self, which: str) -> LockedModel:
        """`which` view as a model that takes the lock per call (see LockedModel)."""
        return LockedModel(self.loaded.model, lambda: self.view(which))

    @contextmanager
    def evaluation_model(self) -> Iterator[Any]:
        """The unlearned model as the after-evaluation scores it: the locked view by default;
        a method may give a plain model no other session touches (LoRA: merged weights),
        which the pipeline then evaluates on several threads."""
        yield self.proxy("unlearned")

    def row_view(self, which: str) -> RowView | None:
        """`which` view as one row of a batch shared with other sessions, or None where this
        method's view cannot be (its replies are then decoded alone)."""
        return RowView() if which == "original" else None

    def flag(self, prompt: str) -> dict | None:
        """ECO: {"flagged", "score", "threshold"}; methods without a classifier return None."""
        return None

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        manifest = {"method": self.method, "model": self.loaded.name, "settings": self.settings}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        self._save_files(folder)
        return folder

    @abstractmethod
    def _save_files(self, folder: Path) -> None:
        """Write the method's own files (adapter weights, guard) next to the manifest."""

    def release(self) -> None:
        """Drop what this artifact added to the shared base (adapters), e.g. when a session ends."""


def read_json(path: Path, missing: str) -> Any:
    """A JSON file of an artifact; each way reading it can fail is one sentence naming it
    (`missing` is the sentence for a file that is not there)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(missing) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"'{path}' is corrupted (not valid JSON).") from None
    except OSError as e:  # a folder in its place, no permission
        raise UserError(f"'{path}' cannot be read ({e.strerror}).") from None


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UserError(f"'{folder}' is a file, not an unlearning artifact folder.")
    if not path.is_dir():
        raise UserError(f"Unlearned artifact folder '{folder}' does not exist.")
    manifest = read_json(path / MANIFEST, f"'{folder}' is not an unlearning artifact: it has no {MANIFEST}.")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("method"), str):
        raise UserError(f"'{folder}/{MANIFEST}' does not name the method that made it.")
    if not isinstance(manifest.get("settings") or {}, dict):
        raise UserError(f"'{folder}/{MANIFEST}' is corrupted (its 'settings' is not an object).")
    return manifest


def load_unlearned(loaded: Loaded, folder: str | Path) -> Unlearned:
    """Attach the artifact in `folder` to the loaded base model."""
    from .methods import get_method

    manifest = read_manifest(folder)
    method = get_method(manifest["method"])
    return method.load(loaded, Path(folder), manifest.get("settings") or {})

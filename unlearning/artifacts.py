"""Unlearning artifacts: what a run leaves behind, attached to a shared base (DESIGN.md §One base model).

An artifact is a folder: `unlearning.json` ({"method": name, "model": base, "settings": …})
plus the method's own files (a peft adapter, or an ECO guard). Loading one never copies the
base model: `Unlearned.view("original" | "unlearned")` runs the same loaded weights with
or without the unlearning, under the base's lock (base.py; one view active at a time).
Attaching a saved folder with the method that made it is attach.py's `load_unlearned`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import Detached, LockedModel, RowView, base_lock, detached
from .errors import UserError
from .models import Loaded

MANIFEST = "unlearning.json"


class Unlearned(ABC):
    """A base model plus one unlearning artifact. Methods subclass this."""

    method: str = ""
    # A prompt classifier in front of the unlearned view (ECO's guard: `flag(prompt)`,
    # `flag_rate(prompt ids)`), which the attacks report on; None for the others.
    guard: Any = None

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

    def detached(self, which: str) -> Detached:
        """A private, frozen copy of `which` view that no other session touches, for the
        attacks that change weights: the base's weights with the unlearning built in (LoRA:
        the adapters merged), or around them (ECO: a guard around the copy)."""
        with self.view(which) as model:
            return detached(model)

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

"""The session folder, which the app and its GPU workers both see: what a worker saves there
for the app to read back (service/worker.py, service/zerogpu.py).

    <session folder>/unlearned/            a run's artifact (adapter or ECO guard) as the worker saved it;
    <session folder>/runs/<id>/            … moved here by the app when the run is kept (one per kept run)
    <session folder>/taught/model, oracle  "teach first" models (save_pretrained)
    <session folder>/cancel-<run>          written by Cancel in the app; the worker stops at its next step
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import Loaded

UNLEARNED, TAUGHT, RUNS = "unlearned", "taught", "runs"


def write(folder: Path, save: Callable[[Path], Any]) -> None:
    """Save into a fresh sibling folder, then swap it in: a reader never sees half a save."""
    tmp = folder.with_name(f"{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        save(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_loaded(loaded: Loaded, folder: Path) -> None:
    loaded.model.save_pretrained(str(folder))
    loaded.tokenizer.save_pretrained(str(folder))


def keep_unlearned(session_folder: Path) -> SavedArtifact:
    """The artifact a worker saved in unlearned/, moved to a folder of its own under runs/."""
    kept = session_folder / RUNS / uuid.uuid4().hex[:8]
    kept.parent.mkdir(exist_ok=True)
    (session_folder / UNLEARNED).rename(kept)
    return SavedArtifact(kept)


class SavedArtifact:
    """The app's handle on an artifact a worker saved in the session folder: its method's
    name and a copy to zip or push, and nothing that runs a model."""

    def __init__(self, folder: Path):
        from ..artifacts import read_manifest

        self.folder = folder
        self.method = read_manifest(folder)["method"]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        if folder.resolve() != self.folder.resolve():
            shutil.copytree(self.folder, folder, dirs_exist_ok=True)
        return folder

    def release(self) -> None:
        """Nothing to drop: the worker released the adapters from its copy of the base."""

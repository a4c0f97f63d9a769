"""One browser session: its data, its run, its artifact and report, and its folder.

A `Session` lives in the app's gr.State, one per browser tab. Nothing in it is shared with
other sessions except the base models it points to (service/models.py); `close()` stops its
run and deletes what it holds: its folder, and the files it was given to `own()` (the app's
copies of its uploads and downloads). Exporting and pushing its artifact: service/export.py.

Folders are named after the process (`unlearning-session-<pid>-…`), so a process that was
killed before it could close its sessions has them swept at the next start
(`sweep_leftovers`), without touching those of another process still running.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..data import Dataset, check_pair, load_file
from ..errors import UserError
from .jobs import Artifact, RunHandle

if TYPE_CHECKING:
    from ..models import Loaded

ROLES = ("forget", "retain")
FOLDER_PREFIX = "unlearning-session-"
LEFTOVER = re.compile(r"^unlearning-(?:session|export)-(\d+)-")


def new_folder(root: str | Path | None = None, kind: str = "session") -> Path:
    """A fresh folder named after this process (see sweep_leftovers)."""
    return Path(tempfile.mkdtemp(prefix=f"unlearning-{kind}-{os.getpid()}-", dir=root))


@dataclass
class Session:
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    folder: Path = field(default_factory=new_folder)
    data: dict[str, Dataset] = field(default_factory=dict)  # "forget", "retain" (validated)
    taught: Loaded | None = None  # "teach first": this session's own copy of the model
    taught_oracle: Loaded | None = None
    run: RunHandle | None = None  # the latest run (unlearning or teaching)
    artifact: Artifact | None = None  # of the last finished unlearning run
    report: dict | None = None  # of the same run
    robustness: dict | None = None  # the last stress test of that artifact (attacks/)

    def __post_init__(self):
        # Held by close() and by a run keeping its result, so a run that ends as the session
        # closes either sees the cancel or has its artifact released by close(). Not a field:
        # Gradio copies a State's dataclass fields, and a lock cannot be copied.
        self.lock = threading.Lock()
        self.owned: list[Path] = []  # more to delete at close(), outside the folder

    def __deepcopy__(self, memo):  # gr.State deep-copies its initial value; ours is per session
        return Session()

    # -------------------------------------------------------------- data
    def use_preset(self, kind: str = "qa") -> dict[str, Dataset]:
        """The workshop kit's forget and retain files, with prompts worth trying on each."""
        self.data = preset(kind)
        return self.data

    def upload(self, role: str, path: str | Path, display_name: str) -> Dataset:
        """Validate a file (read from Gradio's temp file) and keep it as this session's `role`
        data. A file that fails leaves the session without that role (the error names it)."""
        self.data.pop(role, None)
        ds = load_file(path, display_name)
        other = self.data.get("retain" if role == "forget" else "forget")
        if other is not None:
            check_pair(ds, other) if role == "forget" else check_pair(other, ds)
        self.data[role] = ds
        return ds

    def remove(self, role: str) -> None:
        self.data.pop(role, None)

    def splits(self) -> dict[str, Dataset]:
        """forget, retain, holdout and general: what a run evaluates (pipeline.complete_splits)."""
        from ..pipeline import complete_splits

        missing = [r for r in ROLES if r not in self.data]
        if missing:
            raise UserError(f"Choose a {missing[0]} file first (or pick the workshop preset).")
        return complete_splits(self.data["forget"], self.data["retain"])

    def uses_preset(self) -> bool:
        ds = self.data.get("forget")
        return ds is not None and ds.name in ("forget.jsonl", "forget.txt") and ds.examples == preset(ds.kind)["forget"].examples

    # -------------------------------------------------------------- runs
    def _running(self) -> RunHandle | None:
        """The session's run while it has not finished."""
        run = self.run
        return run if run is not None and not run.finished else None

    @property
    def busy(self) -> bool:
        return self._running() is not None

    def check_idle(self) -> None:
        """One run per session at a time, whether it unlearns or teaches."""
        if self.busy:
            raise UserError("A run is already going in this session; cancel it or wait for it to finish.")

    def cancel(self) -> str:
        """Ask the session's run to stop; what to tell the user."""
        run = self._running()
        if run is None:
            return "There is no run to cancel."
        run.cancel()
        return "cancelling…"

    def clear_result(self) -> None:
        """Forget the last run's artifact and report (a new run is about to replace them)."""
        with self.lock:
            artifact, self.artifact, self.report, self.robustness = self.artifact, None, None, None
        if artifact is not None:
            artifact.release()

    # -------------------------------------------------------------- end
    def own(self, path: str | Path) -> Path:
        """Delete `path` (a file or folder) when the session closes."""
        path = Path(path)
        with self.lock:
            self.owned.append(path)
        return path

    def close(self) -> None:
        with self.lock:
            if (run := self._running()) is not None:
                run.cancel()
            artifact, self.artifact = self.artifact, None
        if artifact is not None:
            artifact.release()
        shutil.rmtree(self.folder, ignore_errors=True)
        with self.lock:
            owned, self.owned = self.owned, []
        for path in owned:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def sweep_leftovers(roots: Iterable[str | Path]) -> list[Path]:
    """Delete the session and export folders that processes no longer running left in
    `roots` (a process killed before it closed its sessions); what was deleted."""
    swept = []
    for root in roots:
        try:
            entries = list(Path(root).iterdir())
        except OSError:
            continue
        for entry in entries:
            match = LEFTOVER.match(entry.name)
            if match and entry.is_dir() and not _alive(int(match.group(1))):
                shutil.rmtree(entry, ignore_errors=True)
                swept.append(entry)
    return swept


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def preset(kind: str = "qa") -> dict[str, Dataset]:
    from ..models import WORKSHOP_DIR
    from ..workshop import suggested_prompts

    ext = "jsonl" if kind == "qa" else "txt"
    data = {role: load_file(WORKSHOP_DIR / f"{role}.{ext}") for role in ROLES}
    for role, ds in data.items():
        ds.suggested = suggested_prompts(role)
    return data

"""One browser session: its data, its run, its artifact and report, and its folder.

A `Session` lives in the app's gr.State, one per browser tab. Nothing in it is shared with
other sessions except the base models it points to (service/models.py); `close()` stops its
run and deletes what it holds. Exporting and pushing its artifact: service/export.py.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
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


@dataclass
class Session:
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX)))
    data: dict[str, Dataset] = field(default_factory=dict)  # "forget", "retain" (validated)
    taught: Loaded | None = None  # "teach first": this session's own copy of the model
    taught_oracle: Loaded | None = None
    run: RunHandle | None = None  # the latest run (unlearning or teaching)
    artifact: Artifact | None = None  # of the last finished unlearning run
    report: dict | None = None  # of the same run

    def __post_init__(self):
        # Held by close() and by a run keeping its result, so a run that ends as the session
        # closes either sees the cancel or has its artifact released by close(). Not a field:
        # Gradio copies a State's dataclass fields, and a lock cannot be copied.
        self.lock = threading.Lock()

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
            artifact, self.artifact, self.report = self.artifact, None, None
        if artifact is not None:
            artifact.release()

    # -------------------------------------------------------------- end
    def close(self) -> None:
        with self.lock:
            if (run := self._running()) is not None:
                run.cancel()
            artifact, self.artifact = self.artifact, None
        if artifact is not None:
            artifact.release()
        shutil.rmtree(self.folder, ignore_errors=True)


def preset(kind: str = "qa") -> dict[str, Dataset]:
    from ..models import WORKSHOP_DIR
    from ..workshop import suggested_prompts

    ext = "jsonl" if kind == "qa" else "txt"
    data = {role: load_file(WORKSHOP_DIR / f"{role}.{ext}") for role in ROLES}
    for role, ds in data.items():
        ds.suggested = suggested_prompts(role)
    return data

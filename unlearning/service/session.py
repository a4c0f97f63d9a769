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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .. import limits
from ..data import Dataset, check_pair, load_file
from ..errors import UserError
from .handles import Artifact, RunHandle
from .uploads import CLAIMS

if TYPE_CHECKING:
    from ..models import Loaded
    from ..suites import Benchmark

ROLES = ("forget", "retain")
FOLDER_PREFIX = "unlearning-session-"
LEFTOVER = re.compile(r"^unlearning-(?:session|export)-(\d+)-")
BUSY = "A run is already going in this session; cancel it or wait for it to finish."
R = TypeVar("R", bound=RunHandle)


def new_folder(root: str | Path | None = None, kind: str = "session") -> Path:
    """A fresh folder named after this process (see sweep_leftovers)."""
    return Path(tempfile.mkdtemp(prefix=f"unlearning-{kind}-{os.getpid()}-", dir=root))


@dataclass
class KeptRun:
    """A finished unlearning run the session keeps: its number in the session (1, 2, …), its
    artifact and report, and the last stress test of it."""

    number: int
    method: str
    artifact: Artifact
    report: dict | None
    robustness: dict | None = None
    data: str = ""  # which forget data it ran on ("forget.jsonl: 40 QA")
    preset: bool = False  # … and whether that was the workshop kit's (a room shares a run on uploads only when asked)

    @property
    def label(self) -> str:
        from .catalog import method_label

        return f"#{self.number} {method_label(self.method)}"


@dataclass
class Session:
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    workdir: Path | None = None  # its folder when given (a GPU worker works in the app's); else `folder` makes one
    data: dict[str, Dataset] = field(default_factory=dict)  # "forget", "retain" (validated)
    taught: Loaded | None = None  # "teach first": this session's own copy of the model
    taught_oracle: Loaded | None = None
    run: RunHandle | None = None  # the latest run (unlearning, teaching or a stress test)
    kept: list[KeptRun] = field(default_factory=list)  # every finished unlearning run, oldest first
    current_run: KeptRun | None = None  # the one chat answers with, the report shows and export saves

    def __post_init__(self):
        # Held by close() and by a run keeping its result, so a run that ends as the session
        # closes either sees the cancel or has its artifact released by close(). Not a field:
        # Gradio copies a State's dataclass fields, and a lock cannot be copied.
        self.lock = threading.RLock()  # (keep() runs under it too)
        self.owned: list[Path] = []  # more to delete at close(), outside the folder
        self.closed = False
        self._starting = False  # a run is being checked and started (see starting())
        self._cancel_asked = False  # … and cancel was pressed meanwhile
        self.device_log: list[tuple[float, float]] = []  # (monotonic start, estimated device s) of its runs: budget.py
        self._splits: dict[str, Dataset] | None = None  # splits() of the data it was computed from
        self.benchmark: Benchmark | None = None  # the suite use_benchmark chose (its splits and models)
        self.chat: tuple[list, list] = ([], [])  # the chat's two panes as the page shows them: a reload shows them again

    def __deepcopy__(self, memo):  # gr.State deep-copies its initial value; ours is per session
        return Session()

    @property
    def folder(self) -> Path:
        """The session's folder, made on first use: Gradio makes a Session for every session id
        a request names (a page, an API client, a crafted call), and most never hold a file.
        After close() it is a path that does not exist."""
        with self.lock:
            if self.workdir is None:
                self.workdir = Path(tempfile.gettempdir()) / f"{FOLDER_PREFIX}closed-{self.id}" if self.closed else new_folder()
            return self.workdir

    # -------------------------------------------------------------- the current kept run
    @property
    def current(self) -> int | None:
        """The current kept run's number."""
        return None if self.current_run is None else self.current_run.number

    @property
    def artifact(self) -> Artifact | None:
        return None if self.current_run is None else self.current_run.artifact

    @artifact.setter
    def artifact(self, artifact: Artifact) -> None:
        """An artifact made outside a run of this session is kept as a run of its own."""
        self.keep(artifact.method, artifact, None)

    @property
    def report(self) -> dict | None:
        return None if self.current_run is None else self.current_run.report

    @report.setter
    def report(self, report: dict | None) -> None:
        assert self.current_run is not None, "a report belongs to a kept run"
        self.current_run.report = report

    @property
    def robustness(self) -> dict | None:
        """The last stress test of the current run (attacks/)."""
        return None if self.current_run is None else self.current_run.robustness

    # -------------------------------------------------------------- data
    def use_preset(self, kind: str = "qa") -> dict[str, Dataset]:
        """The workshop kit's forget and retain files, with prompts worth trying on each."""
        self.data = preset(kind)
        return self.data

    def use_benchmark(self, name: str) -> Benchmark:
        """A benchmark from the Hub (suites.py): its forget and retain sets as the data; its
        holdout, general and extra splits, and its target and retain models, kept for splits()
        and the oracle while that data stays."""
        from ..suites import load

        bench = load(name)
        self.data = {role: bench.splits[role] for role in ROLES}
        self.benchmark = bench
        return bench

    def uses_benchmark(self) -> Benchmark | None:
        """The chosen benchmark while the session's data is still its data."""
        bench = self.benchmark
        if bench is None or any(self.data.get(r) is not bench.splits[r] for r in ROLES):
            return None
        return bench

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
        cached = self._splits  # computed again only when the forget or retain data is another
        if cached is None or any(cached[r] is not self.data[r] for r in ROLES):
            bench = self.uses_benchmark()
            if bench is None:
                cached = complete_splits(self.data["forget"], self.data["retain"])
            else:
                cached = {**complete_splits(self.data["forget"], self.data["retain"], bench.splits.get("holdout"),
                                            bench.splits.get("general"), bench.paraphrased), **bench.extra}
            self._splits = cached
        return dict(cached)

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
        return self._starting or self._running() is not None

    def check_idle(self) -> None:
        """One run per session at a time, whether it unlearns or teaches."""
        if self._running() is not None:
            raise UserError(BUSY)

    @contextmanager
    def starting(self) -> Iterator[None]:
        """Hold the session for one run while it is checked and started, so that two starts sent
        at the same instant cannot both pass the idle check (the second is refused); the run
        started inside joins the session with adopt()."""
        with self.lock:
            if self.busy:
                raise UserError(BUSY)
            self._starting, self._cancel_asked = True, False
        try:
            yield
        finally:
            with self.lock:
                self._starting = False

    def adopt(self, run: R) -> R:
        """The run being started becomes the session's, where cancel and close reach it; a cancel
        pressed while it was being checked, or a close meanwhile, stops it at once."""
        with self.lock:
            self.run = run
            if self.closed or self._cancel_asked:
                run.cancel()
        return run

    def cancel(self) -> str:
        """Ask the session's run to stop; what to tell the user."""
        with self.lock:
            run = self._running()
            if run is None and self._starting:
                self._cancel_asked = True
                return "cancelling…"
        if run is None:
            return "There is no run to cancel."
        run.cancel()
        return "cancelling…"

    def clear_result(self) -> None:
        """Forget every kept run (their artifacts belong to a model about to change)."""
        with self.lock:
            kept, self.kept, self.current_run = self.kept, [], None
        for k in kept:
            k.artifact.release()

    # -------------------------------------------------------------- kept runs
    def check_room(self) -> None:
        """A new unlearning run needs room among the kept runs."""
        if len(self.kept) >= limits.MAX_KEPT_RUNS:
            raise UserError(f"This session keeps {limits.MAX_KEPT_RUNS} runs, the most it may; remove one under "
                            "Compare first.")

    def keep(self, method: str, artifact: Artifact, report: dict | None, number: int | None = None) -> KeptRun:
        """A finished run joins the kept ones and becomes the current one (chat, report, export);
        `number` is the one it has where it was kept first (a GPU worker attaching the app's)."""
        with self.lock:
            number = number or max((k.number for k in self.kept), default=0) + 1
            forget = self.data.get("forget")
            data = f"{forget.name}: {len(forget.examples)} {'QA' if forget.kind == 'qa' else 'passages'}" if forget else ""
            if report is not None and (bench := self.uses_benchmark()) is not None:  # as the CLI's --benchmark
                from ..suites import leaderboard

                report["leaderboard"] = {"benchmark": bench.name, **leaderboard(report, bench.name)}
            run = KeptRun(number, method, artifact, report, data=data, preset=self.uses_preset())
            self.kept.append(run)
            self.current_run = run
        return run

    def kept_run(self, number: int | None) -> KeptRun:
        run = next((k for k in self.kept if k.number == number), None)
        if run is None:
            raise UserError(f"There is no run #{number} in this session (it was removed, or the page is out of date).")
        return run

    def select(self, number: int) -> KeptRun:
        """Make kept run `number` the current one: chat answers with it, the report shows it."""
        run = self.kept_run(number)
        with self.lock:
            self.current_run = run
        return run

    def remove_run(self, number: int) -> None:
        """Drop kept run `number` (its adapters leave the shared model); the newest left becomes current."""
        run = self.kept_run(number)
        with self.lock:
            self.kept.remove(run)
            if self.current_run is run:
                self.current_run = self.kept[-1] if self.kept else None
        run.artifact.release()

    def keep_robustness(self, report: dict | None, number: int | None) -> None:
        """A finished stress test of kept run `number` (the current one when it started): kept
        with that run, and shown if it is still the current one; a run removed meanwhile takes
        it with it, and never passes it to another."""
        with self.lock:
            for run in self.kept:
                if run.number == number:
                    run.robustness = report

    # -------------------------------------------------------------- end
    def own(self, path: str | Path) -> Path:
        """Delete `path` (a file or folder) when the session closes, unless another session
        still claims it (the same bytes uploaded twice are one file: uploads.CLAIMS)."""
        path = CLAIMS.claim(path)
        with self.lock:
            self.owned.append(path)
        return path

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if (run := self._running()) is not None:
                run.cancel()
            kept, self.kept, self.current_run = self.kept, [], None
            folder = self.workdir
        for k in kept:
            k.artifact.release()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        with self.lock:
            owned, self.owned = self.owned, []
        for path in owned:
            if CLAIMS.release(path):
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
    from ..kit.workshop import suggested_prompts
    from ..models import WORKSHOP_DIR

    ext = "jsonl" if kind == "qa" else "txt"
    data = {role: load_file(WORKSHOP_DIR / f"{role}.{ext}") for role in ROLES}
    for role, ds in data.items():
        ds.suggested = suggested_prompts(role)
    return data

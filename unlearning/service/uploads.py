"""The files sessions keep outside their folders — the web framework's copies of their uploads,
their zips — and the sweep of uploads no session claims.

An upload lands in the framework's upload folder (`<folder>/<sha256 of the bytes>/<name>`)
before any session sees it, and a script can POST files there without ever opening a page; so
whatever no session has claimed after `limits.UPLOAD_GRACE_SECONDS` is deleted. The same bytes
uploaded by two sessions are one path there: it is deleted when the last session claiming it
closes, never by the first.

    CLAIMS.claim(path)                 # a session keeps it (Session.own)
    CLAIMS.release(path)               # True: no session claims it any more, delete it
    sweep_unclaimed(folder, 600)       # what no session claims, older than 10 minutes
    sweeping(folder)                   # that, every minute, on a daemon thread

The upload folder is taken to be this app's (a Space runs one app; elsewhere give each app its
own GRADIO_TEMP_DIR): another process's uploads there are claimed by none of these sessions.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .. import limits

SWEEP_EVERY_S = 60.0


class Claims:
    """How many sessions claim each path (a file or a folder)."""

    def __init__(self) -> None:
        self._count: dict[Path, int] = {}
        self._lock = threading.Lock()

    def claim(self, path: str | Path) -> Path:
        key = Path(path).resolve()
        with self._lock:
            self._count[key] = self._count.get(key, 0) + 1
        return Path(path)

    def release(self, path: str | Path) -> bool:
        """One session lets go of `path`; True when none claims it any more."""
        key = Path(path).resolve()
        with self._lock:
            left = self._count.get(key, 0) - 1
            if left > 0:
                self._count[key] = left
                return False
            self._count.pop(key, None)
        return True

    def covers(self, path: Path) -> bool:
        """Is `path`, or a folder above it, claimed?"""
        key = path.resolve()
        with self._lock:
            return any(p in self._count for p in (key, *key.parents))


CLAIMS = Claims()


def sweep_unclaimed(folder: str | Path, older_than_s: float, claims: Claims = CLAIMS) -> list[Path]:
    """Delete the uploads in `folder` that no session claims and that are older than
    `older_than_s` (and their emptied folders); what was deleted. Only the framework's layout,
    one folder per upload named by its hash, is looked at."""
    deadline, swept = time.time() - older_than_s, list[Path]()
    try:
        entries = [e for e in Path(folder).iterdir() if e.is_dir() and _is_hash(e.name)]
    except OSError:
        return swept
    for entry in entries:
        for path in [p for p in entry.rglob("*") if p.is_file()]:
            try:
                if path.stat().st_mtime < deadline and not claims.covers(path):
                    path.unlink()
                    swept.append(path)
            except OSError:
                continue  # gone meanwhile
        try:
            entry.rmdir()  # only when empty (an upload arriving now keeps it)
        except OSError:
            pass
    return swept


def _is_hash(name: str) -> bool:
    return len(name) >= 32 and all(c in "0123456789abcdef" for c in name)


def sweeping(folder: str | Path, every_s: float = SWEEP_EVERY_S) -> threading.Thread:
    """Sweep `folder` every `every_s` seconds for as long as the process runs."""

    def loop() -> None:
        while True:
            time.sleep(every_s)
            sweep_unclaimed(folder, limits.UPLOAD_GRACE_SECONDS)

    thread = threading.Thread(target=loop, name="sweep-uploads", daemon=True)
    thread.start()
    return thread

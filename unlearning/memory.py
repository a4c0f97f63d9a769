"""The peak memory of one run, not of the process that happens to host it.

A server process lives through many runs, so its lifetime peak (`ru_maxrss`) says nothing
about the run in front of the user. `MemoryWatch` measures while its block runs:

    with MemoryWatch(loaded.device) as watch:
        report = work()
    report["peak_mem_mb"] = watch.peak_mb

On a GPU it is the CUDA allocator's peak (reset at entry); on the CPU, the largest resident
set seen by a daemon thread that samples it every `interval_s`. Both are of the whole
process while the block runs: two runs side by side in one process share their peaks.
"""

from __future__ import annotations

import os
import threading
from typing import Self

_STATM = "/proc/self/statm"


def rss_mb() -> float:
    """The resident set now, in MB; where /proc is missing, the lifetime peak (the best there is)."""
    try:
        with open(_STATM, "rb") as f:
            resident_pages = int(f.read().split()[1])  # statm: size resident shared text lib data dt
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


class MemoryWatch:
    """Context manager: `peak_mb` is the peak memory while the block ran (see the module)."""

    def __init__(self, device: str = "cpu", interval_s: float = 0.05):
        self.cuda = str(device).startswith("cuda")
        self.interval_s = interval_s
        self.start_mb = self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
            self.start_mb = self.peak_mb = torch.cuda.memory_allocated() / 2**20
            return self
        self.start_mb = self.peak_mb = rss_mb()
        self._thread = threading.Thread(target=self._sample, name="memory-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            import torch

            self.peak_mb = max(self.peak_mb, torch.cuda.max_memory_allocated() / 2**20)
            return
        self._stop.set()
        assert self._thread is not None, "__exit__ without __enter__"
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb())

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, rss_mb())

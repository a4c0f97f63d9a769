"""The device queue: training runs take turns on the device.

    queue = DeviceQueue()
    with queue.hold(ctx):        # waits (showing "waiting…" and checking cancel) for a slot
        ...                      # the run's work on the device

`limits.DEVICE_RUNS` runs hold the device at once; up to `limits.MAX_WAITING_RUNS` wait
behind them, and one more is told the queue is full.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from .. import limits
from ..errors import UserError
from ..runs import RunContext

WAIT_POLL_SECONDS = 0.5


class DeviceQueue:
    def __init__(self):
        self._new_locks()
        _live.add(self)

    def _new_locks(self) -> None:
        """Fresh locks and counts; also in a forked GPU worker (see ModelCache._new_locks)."""
        self._slots = threading.Semaphore(limits.DEVICE_RUNS)
        self._lock = threading.Lock()
        self._waiting = 0

    @contextmanager
    def hold(self, ctx: RunContext) -> Iterator[None]:
        """Hold a device slot for the run; refuse when too many are already waiting."""
        with self._lock:
            if self._waiting >= limits.MAX_WAITING_RUNS:
                raise UserError(f"The run queue is full ({limits.MAX_WAITING_RUNS} runs are waiting for the device); "
                                "try again when one has finished.")
            self._waiting += 1
        try:
            while not self._slots.acquire(timeout=WAIT_POLL_SECONDS):
                ctx.progress(0.0, "waiting for another run to finish")
                ctx.check_cancel()
        finally:
            with self._lock:
                self._waiting -= 1
        try:
            ctx.restart_clock()  # the time limit counts from here, not from the queue
            yield
        finally:
            self._slots.release()


_live: weakref.WeakSet[DeviceQueue] = weakref.WeakSet()


def _renew_locks() -> None:
    for queue in list(_live):
        queue._new_locks()


os.register_at_fork(after_in_child=_renew_locks)

"""A run: work on a background thread that publishes typed events and can be cancelled.

    run = Run(lambda ctx: work(ctx)).start()
    for event in run.events():      # blocks until the run ends; the UI polls `since(i)`
        ...
    run.result                      # what `work` returned, once run.state == "done"

The work function receives a `RunContext`: it emits events, calls `ctx.check_cancel()`
between steps, and registers undo actions with `ctx.on_abort(fn)` for anything it changes in
a shared model. On an error or a cancel the undo actions run (last first), so the loaded base
model is left as it was. Events know nothing of plots or widgets. `run.subscribe(fn)` calls
`fn(event)` on the publishing thread as each event happens (a benchmark probes the model there),
and `run.undo_actions` lists what an abort would undo (a LoRA run's first is its adapters' removal).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import limits
from .errors import Cancelled, UserError, one_line

KINDS = ("progress", "step", "log", "result", "error", "cancelled")


@dataclass
class Event:
    """One thing that happened in a run.

    kind: progress (fraction done + message), step (one point per named value for the live
    plot of `series`), log (a line of text), and the final one: result, error or cancelled.
    """

    kind: str
    message: str = ""
    series: str = ""  # the plot a step belongs to: "train", "classifier", "search", ...
    step: int | None = None
    total: int | None = None
    values: dict[str, float] = field(default_factory=dict)
    fraction: float | None = None
    t: float = field(default_factory=time.time)


class RunContext:
    """What the work function sees of its run. `within(lo, hi)` and `quiet()` make child
    contexts for a part of the work: the same run (cancel, time limit, undo), with progress
    mapped into a share of this context's bar, or with no events at all."""

    def __init__(self, run: Run, lo: float = 0.0, hi: float = 1.0, silent: bool = False):
        self._run = run
        self._lo, self._hi, self._silent = lo, hi, silent

    def within(self, lo: float, hi: float) -> RunContext:
        """A child whose progress 0 → 1 is this context's lo → hi (a phase's share of the bar)."""
        span = self._hi - self._lo
        return RunContext(self._run, self._lo + span * lo, self._lo + span * hi, self._silent)

    def quiet(self) -> RunContext:
        """A child that publishes no events (a data-parallel worker: the main process reports)."""
        return RunContext(self._run, self._lo, self._hi, silent=True)

    def emit(self, kind: str, **fields: Any) -> None:
        # after a cancel the run says nothing more but its end (a helper thread may still finish a part)
        if not self._silent and not self._run._cancel.is_set():
            self._run._publish(Event(kind, **fields))

    def log(self, message: str) -> None:
        self.emit("log", message=message)

    def progress(self, fraction: float, message: str = "") -> None:
        """`fraction` of this context's share done (clamped to [0, 1])."""
        fraction = max(0.0, min(1.0, fraction))
        self.emit("progress", fraction=self._lo + (self._hi - self._lo) * fraction, message=message)

    def step(self, series: str, step: int, total: int | None, values: dict[str, float]) -> None:
        self.emit("step", series=series, step=step, total=total, values=dict(values))

    def check_cancel(self) -> None:
        """Stop here if the run was cancelled or has run past limits.MAX_RUN_SECONDS."""
        if self._run._cancel.is_set():
            raise Cancelled()
        if time.monotonic() > self._run._deadline:
            minutes = limits.MAX_RUN_SECONDS // 60
            raise UserError(f"The run was stopped after {minutes} minutes, the limit for one run; "
                            "use fewer steps or a smaller model.")

    def restart_clock(self) -> None:
        """Start the run's time limit now (the studio calls this once the run has the device)."""
        self._run._deadline = time.monotonic() + limits.MAX_RUN_SECONDS

    def on_abort(self, undo: Callable[[], None]) -> None:
        """Register an action that restores shared state if the run fails or is cancelled."""
        self._run._undo.append(undo)

    @property
    def cancelled(self) -> bool:
        return self._run._cancel.is_set()


class Run:
    """Runs `work(ctx)` on a daemon thread; states: pending → running → done|failed|cancelled."""

    def __init__(self, work: Callable[[RunContext], Any], name: str = "run", method: str | None = None,
                 kind: str = "unlearn"):
        self.name = name
        self.method = method  # the unlearning method it runs, if any (the UI draws its plots)
        self.kind = kind  # "unlearn", "teach" or "attack": which panel shows it
        self.state = "pending"
        self.result: Any = None
        self.error: str | None = None  # one sentence for the user
        self.traceback: str | None = None  # for the operator's log, never for the user
        self._work = work
        self._events: list[Event] = []
        self._changed = threading.Condition()
        self._cancel = threading.Event()
        self._undo: list[Callable[[], None]] = []
        self._subscribers: list[Callable[[Event], None]] = []
        self._deadline = float("inf")  # set by start(); see RunContext.check_cancel
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> Run:
        self.state = "running"
        self._deadline = time.monotonic() + limits.MAX_RUN_SECONDS
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the work to stop; it does so at its next check_cancel (between steps)."""
        self._cancel.set()

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def drive(self) -> None:
        """Nothing to do: the run's own thread carries it (service.jobs.RunHandle)."""

    def since(self, index: int) -> list[Event]:
        """Events from position `index` on (non-blocking): the UI polls with this."""
        with self._changed:
            return self._events[index:]

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Every event, blocking for new ones until the run ends (or `timeout` of silence)."""
        i = 0
        while True:
            with self._changed:
                if i >= len(self._events) and not self.finished:
                    self._changed.wait(timeout)
                new = self._events[i:]
                done = self.finished
            yield from new
            i += len(new)
            if done and i >= len(self.since(0)):
                return
            if not new and timeout is not None:
                return

    def wait(self, timeout: float | None = None) -> Any:
        self._thread.join(timeout)
        return self.result

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Call `callback(event)` with every event from now on, as it is published: on the thread
        that publishes it (the work's), after it is stored, so the work waits for the callback."""
        self._subscribers.append(callback)

    @property
    def undo_actions(self) -> tuple[Callable[[], None], ...]:
        """The undo actions registered so far (ctx.on_abort), first registered first."""
        return tuple(self._undo)

    def _publish(self, event: Event, end: str | None = None) -> None:
        """Store `event` and tell the subscribers; `end`: the state the run ends in, set with its last event."""
        with self._changed:
            if end is not None:
                self.state = end
            self._events.append(event)
            self._changed.notify_all()
        for callback in self._subscribers:
            callback(event)

    def _abort(self) -> bool:
        """Run the undo actions, last first. One that fails does not stop the others; its
        traceback is kept for the log. False if any failed."""
        ok = True
        for undo in reversed(self._undo):
            try:
                undo()
            except Exception:  # noqa: BLE001  any failure: the next undo must still run
                ok = False
                self.traceback = (self.traceback or "") + traceback.format_exc()
        self._undo.clear()
        return ok

    def _main(self) -> None:
        ctx = RunContext(self)
        try:
            self.result = self._work(ctx)
        except Cancelled:
            state, message = "cancelled", "Cancelled; nothing was changed."
        except UserError as e:
            state, message = "failed", str(e)
        except Exception as e:  # noqa: BLE001  a bug: keep the traceback for the log, show one line
            self.traceback = traceback.format_exc()
            state = "failed"
            message = f"The run failed with an internal error: {type(e).__name__}: {one_line(e)}"
        else:
            self._undo.clear()
            self._publish(Event("result", message="Finished."), end="done")
            return
        if not self._abort():  # the shared model may not be as it was: never say "nothing was changed"
            why = "The run was cancelled" if state == "cancelled" else message.rstrip(".")
            state, message = "failed", (f"{why}, and undoing its changes to the shared model failed "
                                        "(an internal error); restart the app before the next run.")
        if state == "failed":
            self.error = message
        self._publish(Event("cancelled" if state == "cancelled" else "error", message=message), end=state)

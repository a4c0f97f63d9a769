"""A stand-in for Hugging Face's `spaces` package that behaves like ZeroGPU where it matters.

Put this folder on PYTHONPATH (or sys.path) with SPACES_ZERO_GPU=1 and `spaces.GPU` does what
the real one does on a ZeroGPU Space (spaces/zero/wrappers.py, decorator.py, torch/patching.py
of the `spaces` package), minus the GPU:
- the decorated function runs in a worker process forked from the app ('fork' context);
- its arguments and each value it returns or yields are pickled across a pipe; an exception
  in the worker is pickled back and raised in the caller; nothing else comes back;
- an idle worker is reused by the next call, so it keeps its own memory from call to call
  (and never sees what the app changed after forking it);
- a call that outlives its `duration` (default 60 s) is killed: "GPU task aborted";
- once the app is launched, the app process can no longer run a model (ZeroGPU packs the
  weights off to disk there at launch): any torch module called outside a worker raises.
Without SPACES_ZERO_GPU the decorator returns the function unchanged, as the real one does.
"""

from __future__ import annotations

import inspect
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import time
import traceback
from functools import wraps

# The real package refuses to be imported by gradio halfway through gradio's own import.
if (_gr := sys.modules.get("gradio")) is not None and not hasattr(_gr, "Blocks"):
    raise ImportError("spaces is imported after gradio")

ZERO_GPU = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")
DEFAULT_DURATION = 60
_fork = multiprocessing.get_context("fork")
_app_pid = os.getpid()
_in_worker = False


def GPU(task=None, *, duration=None, **kwargs):
    if task is None:
        return lambda fn: _decorate(fn, duration)
    return _decorate(task, duration)


def gradio_auto_wrap(task):
    return task


def _decorate(task, duration):
    if not ZERO_GPU:
        return task
    pool: list[_Worker] = []  # idle workers of this function, reused like the real ones
    generator = inspect.isgeneratorfunction(task)

    def seconds(args, kwargs) -> float:
        value = duration(*args, **kwargs) if callable(duration) else duration
        return float(value or DEFAULT_DURATION)

    def calls(args, kwargs):
        """(kind, value) messages of one call in a worker: 'yield'… then 'return' or 'end'."""
        worker = pool.pop() if pool and pool[-1].alive() else _Worker(task, generator)
        worker.conn.send((args, kwargs))  # pickles the arguments: unpicklable ones fail here
        deadline = time.monotonic() + seconds(args, kwargs)
        finished = False
        try:
            while True:
                kind, value = worker.receive(deadline)
                if kind == "error":  # like the real one, a failed worker is not reused
                    finished = True
                    worker.process.kill()
                    raise value
                if kind in ("return", "end"):
                    finished = True
                    pool.append(worker)
                    yield kind, value
                    return
                yield kind, value
        finally:
            if not finished and worker.alive():  # the caller stopped listening: the worker goes on
                threading.Thread(target=worker.drain, args=(pool,), daemon=True).start()

    if generator:
        @wraps(task)
        def gen_handler(*args, **kwargs):
            if _in_worker:
                yield from task(*args, **kwargs)
                return
            for kind, value in calls(args, kwargs):
                if kind == "yield":
                    yield value
        return gen_handler

    @wraps(task)
    def handler(*args, **kwargs):
        if _in_worker:
            return task(*args, **kwargs)
        for kind, value in calls(args, kwargs):
            if kind == "return":
                return value

    return handler


_workers: list = []  # every worker started, for shutdown()


def shutdown() -> None:
    """End every worker (a test's teardown): forked from the test process, an idle worker holds
    copies of its pipes — Playwright's among them, whose driver then never sees them close."""
    for worker in _workers:
        worker.process.kill()
        worker.process.join(5)
    _workers.clear()


class _Worker:
    def __init__(self, task, generator: bool):
        self.conn, child = _fork.Pipe()
        self.process = _fork.Process(target=_serve, args=(task, generator, child, _app_pid), daemon=True)
        self.process.start()
        _workers.append(self)

    def alive(self) -> bool:
        return self.process.is_alive()

    def receive(self, deadline: float):
        ready = multiprocessing.connection.wait([self.conn, self.process.sentinel], max(0.0, deadline - time.monotonic()))
        if self.conn in ready:
            return self.conn.recv()
        self.process.kill()  # past its duration, or it died: ZeroGPU takes the GPU back
        raise RuntimeError("GPU task aborted")

    def drain(self, pool: list) -> None:
        """Read what an abandoned call still sends; the worker is idle again at its end."""
        try:
            while (kind := self.conn.recv()[0]) not in ("return", "end", "error"):
                pass
        except (EOFError, OSError):
            return
        if kind == "error":
            self.process.kill()
        else:
            pool.append(self)


def _serve(task, generator: bool, conn, app_pid: int) -> None:
    """The worker's loop: one call at a time, everything pickled back through `conn`."""
    global _in_worker
    _in_worker = True
    threading.Thread(target=_exit_with_app, args=(app_pid,), daemon=True).start()
    while True:
        try:
            args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if generator:
                for value in task(*args, **kwargs):
                    conn.send(("yield", value))  # pickled now: an unpicklable value fails the call
                conn.send(("end", None))
            else:
                conn.send(("return", task(*args, **kwargs)))
        except Exception as e:
            traceback.print_exc()
            try:
                conn.send(("error", e))
            except Exception:  # the exception itself would not pickle
                conn.send(("error", RuntimeError(f"{type(e).__name__}: {e}")))


def _exit_with_app(app_pid: int) -> None:
    """The app is gone, so is its GPU: end the worker even mid-call."""
    while os.getppid() == app_pid:
        time.sleep(0.5)
    os._exit(1)


def _offload_at_launch() -> None:
    """From launch on, the app process has no weights to compute with (they live on disk
    until a worker moves them to the GPU): calling any torch module there fails."""
    import torch

    call = torch.nn.Module.__call__

    def guarded(self, *args, **kwargs):
        if os.getpid() == _app_pid:
            raise RuntimeError(f"fake ZeroGPU: {type(self).__name__} called in the app process after launch; "
                               "models run only inside @spaces.GPU")
        return call(self, *args, **kwargs)

    torch.nn.Module.__call__ = guarded


if ZERO_GPU:
    import gradio as gr

    _launch = gr.Blocks.launch

    @wraps(_launch)
    def _launch_once(*args, **kwargs):
        _offload_at_launch()
        gr.Blocks.launch = _launch
        return _launch(*args, **kwargs)

    gr.Blocks.launch = _launch_once

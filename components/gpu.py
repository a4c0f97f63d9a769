"""Where the model work runs: the one place that decides.

Everywhere (a laptop, CPU or dedicated-GPU hardware) a run goes to a background thread that
the run panel polls, and chat replies stream from the request itself. On a Hugging Face
ZeroGPU Space the GPU exists only inside a call decorated with `spaces.GPU`, which runs in a
worker process forked from the app: there each run, and each chat reply, is one such call that
streams its events back (unlearning/detached.py; Spaces.md §ZeroGPU).

    UNLEARNING_ZERO_GPU=1      use the ZeroGPU path wherever `spaces` imports (tests); 0: never
    UNLEARNING_GPU_SECONDS     the GPU time one run or "teach first" asks for (default 120)
    UNLEARNING_GPU_CHAT_SECONDS    … one chat reply (default 30)

No torch here; `spaces` is imported only when ZeroGPU is on.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator

from unlearning import detached
from unlearning.errors import UserError
from unlearning.studio import SessionState, Studio

STOP_SHARE = 0.9  # a run stops itself at this share of its GPU time, keeping the rest to save


def zero_gpu() -> bool:
    """True on a ZeroGPU Space (SPACES_ZERO_GPU set, as the platform does, and `spaces`
    importable), or where UNLEARNING_ZERO_GPU=1 asks for it. Importing `spaces` here is what
    lets it patch torch, so call this before any model loads (app.main does)."""
    override = os.environ.get("UNLEARNING_ZERO_GPU", "").strip()
    platform = os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")
    if override == "0" or not (override == "1" or platform):
        return False
    try:
        import spaces  # noqa: F401
    except ImportError:
        return False
    return True


def seconds(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def on_gpu(studio: Studio, duration: int) -> Callable[[Any], Iterator[dict]]:
    """A `spaces.GPU` generator that does one prepared job in the GPU worker."""
    import spaces

    def execute(job):  # runs in the worker: job and every message are pickled across
        yield from detached.execute(studio, job)

    return spaces.GPU(duration=duration)(execute)


def stream(call: Callable[[Any], Iterator[dict]], job: Any) -> Iterator[dict]:
    """The job's messages; a platform failure (quota, a GPU taken back) becomes one sentence."""
    try:
        yield from call(job)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"The GPU worker stopped: {' '.join(str(e).split())[:300] or type(e).__name__}.") from None


def runner(studio: Studio) -> Callable[[Any], Iterator[dict]] | None:
    """The GPU call for runs and "teach first" on ZeroGPU; None where runs use a thread."""
    return on_gpu(studio, seconds("UNLEARNING_GPU_SECONDS", 120)) if zero_gpu() else None


def run_seconds() -> float:
    """How long a run may take before it stops itself (a share of its GPU time)."""
    return STOP_SHARE * seconds("UNLEARNING_GPU_SECONDS", 120)


def chat(studio: Studio) -> Callable[[SessionState, str, str], Iterator[dict]]:
    """How the chat panel gets both replies: `studio.chat` here, or inside a GPU call."""
    if not zero_gpu():
        return studio.chat
    call = on_gpu(studio, seconds("UNLEARNING_GPU_CHAT_SECONDS", 30))

    def reply(session: SessionState, model_name: str, prompt: str) -> Iterator[dict]:
        return stream(call, detached.prepare(studio, session, "chat", model_name, prompt=prompt))

    return reply

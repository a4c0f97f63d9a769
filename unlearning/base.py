"""The shared base model: its lock, chat-first scheduling, and views that take the lock per call.

Many sessions share one loaded base (DESIGN.md §One base model); a LoRA view switches
adapters on and an ECO view runs the base behind its guard, both changes of shared state, so
each view holds the base's lock. `LockedModel` takes it per forward or generate call, so
sessions interleave call by call; the chat batcher and training steps take it per step.

    with base_lock(model): ...                  # the base is the original model in here
    original(model)(input_ids=ids)              # the plain base, locked per call
    chat_requests(model, 1); defer_to_chat(model)   # chat replies go before training steps
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

_locks: dict[int, threading.RLock] = {}
_locks_guard = threading.Lock()


def base_lock(model) -> threading.RLock:
    """The lock of a shared base. Invariant: while nobody holds it, the base is the original
    model (LoRA views switch their adapters on only while holding it)."""
    with _locks_guard:
        return _locks.setdefault(id(model), threading.RLock())


@contextmanager
def locked(model) -> Iterator[Any]:
    """`model` itself, holding its lock."""
    with base_lock(model):
        yield model


# The lock is not fair and a training step holds it for a forward and a backward pass, so
# chat replies, decoded a token per step, would wait behind run after run of steps: the
# batcher counts the requests it holds on a base, and a step waits while there are any.
_chatting: dict[int, int] = {}


def chat_requests(model, n: int) -> None:
    """`n` more (or, negative, fewer) chat requests waiting or decoding on `model`'s base."""
    with _locks_guard:
        count = _chatting.get(id(model), 0) + n
        if count > 0:
            _chatting[id(model)] = count
        else:
            _chatting.pop(id(model), None)


def defer_to_chat(model, limit_s: float | None = None) -> float:
    """Wait while chat replies are being decoded on `model`'s base, at most `limit_s`
    (limits.CHAT_FIRST_S); returns the seconds waited."""
    from . import limits

    t0 = time.monotonic()
    deadline = t0 + (limits.CHAT_FIRST_S if limit_s is None else limit_s)
    while _chatting.get(id(model)) and time.monotonic() < deadline:
        time.sleep(0.005)
    return time.monotonic() - t0


class LockedModel:
    """A model-like proxy that opens a view around each call (forward or generate) and
    closes it after, so sessions sharing one base interleave call by call instead of one
    holding it for a whole evaluation. Attributes (config, device, parameters, eval) come
    from the base model itself."""

    def __init__(self, base, open_view: Callable[[], Any]):
        self._base, self._open_view = base, open_view

    def __call__(self, *args, **kwargs):
        with self._open_view() as model:
            return model(*args, **kwargs)

    def generate(self, *args, **kwargs):
        with self._open_view() as model:
            return model.generate(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._base, name)


def original(model) -> LockedModel:
    """The plain base, safe to call while other sessions use views of it."""
    return LockedModel(model, lambda: locked(model))


@dataclass(frozen=True)
class RowView:
    """One row of a batch decoded on a shared base (service/batcher.py), in one view:
    `adapters` on for that row alone (lora.mixed_adapters: LoRA adapter sets, each with its
    weights), and `prefill` giving the prompt's input embeddings (T, d) from its ids where
    the view changes them (ECO's guard)."""

    adapters: tuple[Any, ...] = ()
    prefill: Callable[[list[int]], Any] | None = None


@dataclass(frozen=True)
class Detached:
    """A private copy of one view, frozen and in eval mode: `model` answers (forward,
    generate) as the view did; `weights` is the plain causal LM inside it, the one an attack
    may change (round its weights, fine-tune an adapter on it)."""

    model: Any
    weights: Any


def frozen_copy(model) -> Any:
    """A deep copy of `model`, every parameter frozen, in eval mode."""
    out = copy.deepcopy(model)
    out.requires_grad_(False)
    return out.eval()


def detached(model) -> Detached:
    """A private frozen copy of a plain model (call it holding the base's lock)."""
    plain = frozen_copy(model)
    return Detached(plain, plain)
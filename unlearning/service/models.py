"""The model cache: one loaded base model per name per process, shared by every session.

    models = ModelCache(device="auto")
    base = models.get("workshop")                  # loaded once, then shared
    models.get("owner/model", operator=False)      # a visitor's name: a hub id or an alias

Each name loads on its own thread, so a slow download of one model never makes another
session wait for a model that is already here; whoever waits for it longer than
`limits.MODEL_LOAD_SECONDS` gets one sentence, and the load goes on for the next request. Models a visitor named (anything but the
operator's own and the workshop aliases) are kept up to `limits.MAX_VISITOR_MODELS`; loading
one more evicts the least recently used of them.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import limits
from ..errors import UserError

if TYPE_CHECKING:
    from ..models import Loaded

DEFAULT_MODEL = "workshop"


def model_name(name: str | None) -> str:
    """The model a request means: what was typed, trimmed, or the workshop model."""
    return (name or "").strip() or DEFAULT_MODEL


class ModelCache:
    def __init__(self, device: str = "auto", trust_remote_code: bool = False, local_models: bool = False,
                 device_map: str | None = None):
        self.device = device
        self.device_map = device_map  # "auto": accelerate places each model over the GPUs (UNLEARNING_DEVICE_MAP)
        self.trust_remote_code = trust_remote_code
        self.local_models = local_models  # may visitors name folders on this machine? (the operator's choice)
        self._loaded: OrderedDict[str, Loaded] = OrderedDict()  # least recently used first
        self._pinned: set[str] = set()  # the operator's models: never evicted
        self._new_locks()
        _live.add(self)

    def _new_locks(self) -> None:
        """Fresh locks; also in a forked GPU worker, where one held by another thread at the
        fork would stay held forever (service/worker.py)."""
        self._lock = threading.Lock()  # guards the dicts only, never held during a load
        self._loading: dict[str, _Load] = {}

    def get(self, name: str | None, operator: bool = False, wait_s: float | None = None, fisher: bool = False) -> Loaded:
        """The shared base model called `name`. A visitor's name must be a hub id or an alias
        unless the operator allowed local models; `operator=True` is for the operator's own
        choice (the app's default model), which may be a folder and is never evicted. A model
        still loading is waited for `wait_s` (limits.MODEL_LOAD_SECONDS unless given), then one
        sentence; the load goes on. `fisher`: for a FILA method, whose Fisher pass must fit
        beside the weights: checked from the config before a load, and on the loaded model."""
        from ..model_check import check_fisher_room
        from ..models import ALIASES, check_model, check_visitor_model

        name = model_name(name)
        visitor = not (operator or self.local_models or name in self._pinned)  # the operator's model is anyone's once loaded
        if visitor:
            check_visitor_model(name)
        hub_only = visitor and name not in ALIASES
        loaded_before = name in self.names()
        if fisher and not loaded_before:  # from the config, before the download, not in the load others may wait for
            check_model(name, self.device, self.device_map, hub_only, fisher=True)
        loaded = self._get(name, operator, hub_only, wait_s)
        if fisher and loaded_before:  # its weights already hold their memory: the Fisher pass must fit in what is left
            check_fisher_room(name, loaded.model, loaded.device, loaded.device_map is not None)
        return loaded

    def _get(self, name: str, operator: bool, hub_only: bool, wait_s: float | None) -> Loaded:
        from ..models import ALIASES, load_model

        with self._lock:
            if operator or name in ALIASES:
                self._pinned.add(name)
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name]
            load = self._loading.get(name)
            if load is None:  # the first to ask starts the load; later askers wait for the same one
                load = self._loading[name] = _Load(name, lambda: load_model(name, self.device, self.trust_remote_code,
                                                                                 self.device_map, hub_only))
                load.on_done = lambda loaded: self._keep(name, loaded)
                load.start()
        return load.result(limits.MODEL_LOAD_SECONDS if wait_s is None else wait_s)

    def _keep(self, name: str, loaded: Loaded | None) -> None:
        with self._lock:
            self._loading.pop(name, None)
            if loaded is not None:
                self._loaded[name] = loaded
                self._evict()

    def _evict(self) -> None:
        visitors = [n for n in self._loaded if n not in self._pinned]
        for name in visitors[: max(0, len(visitors) - limits.MAX_VISITOR_MODELS)]:
            del self._loaded[name]  # sessions holding it keep their reference; memory goes with the last

    def names(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def info(self, name: str | None, operator: bool = False) -> dict:
        """Name, device, dtype and size of a model, for the model panel (loads it if needed)."""
        loaded = self.get(name, operator)
        params = sum(p.numel() for p in loaded.model.parameters())
        dtype = str(next(loaded.model.parameters()).dtype).replace("torch.", "")
        return {"name": loaded.name, "device": loaded.device, "dtype": dtype, "params": params}


_live: weakref.WeakSet[ModelCache] = weakref.WeakSet()


def _renew_locks() -> None:
    for cache in list(_live):
        cache._new_locks()


os.register_at_fork(after_in_child=_renew_locks)


class _Load:
    """One model loading on its own thread; any number of requests wait for its result."""

    def __init__(self, name: str, load: Callable[[], Loaded]):
        self.name, self._load = name, load
        self.on_done: Callable[[Loaded | None], None] = lambda loaded: None
        self._done = threading.Event()
        self._loaded: Loaded | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        threading.Thread(target=self._main, name=f"load {self.name}", daemon=True).start()

    def _main(self) -> None:
        try:
            self._loaded = self._load()
        except BaseException as e:  # noqa: BLE001  handed to every waiting request
            self._error = e
        self.on_done(self._loaded)
        self._done.set()

    def result(self, timeout: float) -> Loaded:
        if not self._done.wait(timeout):
            raise UserError(f"Model '{self.name}' is still loading after {timeout:.0f} s (a large download, or a "
                            "slow network); try again in a few minutes.")
        if self._error is not None:
            raise self._error
        assert self._loaded is not None
        return self._loaded

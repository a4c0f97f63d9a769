"""Evaluations cached by content: a (model, split) pair is evaluated once.

    cache = EvalCache()                       # in memory: the app shares `shared()` across sessions
    cache = EvalCache("cache/")               # and in a folder of JSON files (the CLI's --cache DIR)
    one = cached_split(cache, loaded)         # metrics.evaluate(..., evaluate_one=one)
    known = lookup(cache, loaded, splits)     # (metrics, raw) if every split is cached, else None

An entry is one split's `metrics.evaluate_split` result (its metrics and raw values), so the
cross-split metrics are recomputed from the pieces and a new forget set still reuses the
retain, holdout and general entries. Its key holds everything the result depends on: the
model's identity (`model_identity`), the split's name and content, the metric version and a
digest of the code that computes the metrics, the generation limits, device, dtype, batch size
and the torch/transformers versions. A key that differs in anything misses.

On disk an entry is `<sha256 of the key>.json` holding the key itself: a file that does not
parse, or whose key is not the one asked for (a foreign or hand-edited file), is a miss and is
overwritten, never a crash. Files are written to a temporary name and renamed (atomic).

The app's cache (`shared()`) also reads the entries shipped in SHIPPED (the workshop preset's
oracle and `before`, written by `python -m unlearning.service.preset_evals`), so a fresh app's
first run is as fast as a warm one's. A shipped entry answers only the key it was computed
under: after a change to the model, the data, the metric code or the settings it is ignored.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import limits
from ..errors import UserError

if TYPE_CHECKING:
    from ..data import Dataset
    from ..models import Loaded

FORMAT = "unlearning-eval-cache"
SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "workshop" / "evaluations.json"
# The modules whose code decides every number of an evaluation: any change to them misses.
METRIC_CODE = ("evaluation/metrics.py", "evaluation/scores.py", "evaluation/textstats.py", "generate.py", "batches.py",
               "evaluation/probes.py", "evaluation/wordings.py", "evaluation/leaderboard.py")  # below unlearning/

Value = tuple[dict[str, float], dict[str, Any]]  # one split's (metrics, raw)


class EvalCache:
    """A bounded in-memory LRU of evaluations, backed by `folder` when one is given."""

    def __init__(self, folder: str | Path | None = None, entries: int | None = None, shipped: Path | None = None):
        self.folder = Path(folder) if folder is not None else None
        self._shipped = read_shipped(shipped) if shipped is not None else {}  # read only, never evicted
        self.entries = entries if entries is not None else limits.EVAL_CACHE_ENTRIES
        self.hits = self.misses = 0  # split evaluations reused / computed (and stored) through this cache
        self.write_error: str | None = None  # the last failed write to the folder, for the log
        self._memory: OrderedDict[str, Value] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[str, threading.Event] = {}  # entries a thread is evaluating now
        if self.folder is not None:
            _check_folder(self.folder)

    def get(self, key: dict[str, Any]) -> Value | None:
        name = key_digest(key)
        with self._lock:
            value = self._memory.get(name)
            if value is not None:
                self._memory.move_to_end(name)
        if value is None and self.folder is not None:
            value = self._read(self.folder / f"{name}.json", key)
            if value is not None:
                self._remember(name, value)
        if value is None:
            value = self._shipped.get(name)
        return copy.deepcopy(value)  # callers may fill in a dict (forget_quality); the entry stays as computed

    def claim(self, key: dict[str, Any], check_cancel: Callable[[], None] | None = None) -> Value | None:
        """The entry, once there; None when the caller is to compute it (then `release` it,
        after `put`). While another thread computes the same entry this waits for it, so two
        runs (or a run and the app's warm-up) never evaluate one split twice at once."""
        name = key_digest(key)
        while True:
            if (hit := self.get(key)) is not None:
                return hit
            with self._lock:
                busy = self._computing.get(name)
                if busy is None:
                    self._computing[name] = threading.Event()
                    break
            while not busy.wait(0.2):
                if check_cancel is not None:
                    check_cancel()
        if (hit := self.get(key)) is not None:  # put and released between the first get and the claim
            self.release(key)
            return hit
        return None

    def release(self, key: dict[str, Any]) -> None:
        """End a claim: whoever waits for the entry reads it now (or, if it was never put,
        claims it in turn)."""
        with self._lock:
            busy = self._computing.pop(key_digest(key), None)
        if busy is not None:
            busy.set()

    def count(self, hit: bool, n: int = 1) -> None:
        with self._lock:
            self.hits, self.misses = (self.hits + n, self.misses) if hit else (self.hits, self.misses + n)

    def put(self, key: dict[str, Any], value: Value) -> None:
        name = key_digest(key)
        value = copy.deepcopy(value)
        self._remember(name, value)
        if self.folder is not None:
            self._write(self.folder / f"{name}.json", {"format": FORMAT, "key": key, "metrics": value[0], "raw": value[1]})

    def _remember(self, name: str, value: Value) -> None:
        with self._lock:
            self._memory[name] = value
            self._memory.move_to_end(name)
            while len(self._memory) > self.entries:
                self._memory.popitem(last=False)

    @staticmethod
    def _read(path: Path, key: dict[str, Any]) -> Value | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):  # missing, unreadable or not JSON: a miss
            return None
        if not (isinstance(data, dict) and data.get("format") == FORMAT and data.get("key") == json.loads(json.dumps(key))
                and isinstance(data.get("metrics"), dict) and isinstance(data.get("raw"), dict)):
            return None  # a foreign file, or another key under this name
        return data["metrics"], data["raw"]

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, ensure_ascii=False)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:  # a full disk must not fail the run whose numbers are already known
            self.write_error = f"{path.parent}: {e.strerror or e}"


def read_shipped(path: Path) -> dict[str, Value]:
    """The entries of a shipped file ({"format", "entries": [{"key", "metrics", "raw"}]}) by
    their key's digest, so each answers only the key it holds. A missing or unreadable file
    holds none: the app then computes them (its warm-up), as it did before they were shipped."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) and data.get("format") == FORMAT else None
    return {key_digest(e["key"]): (e["metrics"], e["raw"]) for e in entries or []
            if isinstance(e, dict) and isinstance(e.get("key"), dict) and isinstance(e.get("metrics"), dict)
            and isinstance(e.get("raw"), dict)}


def _check_folder(folder: Path) -> None:
    """The folder exists (created if need be) and can be written, or one sentence says why not."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--cache {folder} is a file, not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--cache {folder} could not be created ({e.strerror}).") from e
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"--cache {folder} is not writable.")


_shared: EvalCache | None = None
_shared_lock = threading.Lock()


def shared() -> EvalCache:
    """The process's in-memory cache, shared by every session of the app, with the shipped
    evaluations of the workshop preset."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = EvalCache(shipped=SHIPPED)
        return _shared


# ------------------------------------------------------------------ keys


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def dataset_digest(ds: Dataset) -> str:
    """The split's content: its kind and every field of every example (not its file name)."""
    examples = [asdict(ex) for ex in ds.examples]
    return hashlib.sha256(json.dumps([ds.kind, examples], sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@cache
def code_digest() -> str:
    """The source of the modules that compute the metrics (METRIC_CODE)."""
    h = hashlib.sha256()
    for name in METRIC_CODE:
        h.update((Path(__file__).resolve().parents[1] / name).read_bytes())
    return h.hexdigest()[:16]


def settings_key() -> dict[str, Any]:
    """What besides model and data decides an evaluation's numbers."""
    import torch
    import transformers

    from . import metrics

    return {"metric_version": metrics.METRIC_VERSION, "code": code_digest(), "max_new_tokens": limits.MAX_NEW_TOKENS,
            "max_tokens": limits.MAX_TOKENS, "extraction": [metrics.EXTRACTION_N, metrics.EL_MAX_CUTS, metrics.EL_MAX_TOKENS,
                                                            list(metrics.EXTRACTION_SPLITS)],
            "fluency_tokens": metrics.FLUENCY_TOKENS, "torch": torch.__version__, "transformers": transformers.__version__}


def split_key(identity: str, device: str, dtype: str, split: str, ds: Dataset, batch_size: int) -> dict[str, Any]:
    return {"model": identity, "device": device, "dtype": dtype, "split": split, "data": dataset_digest(ds),
            "batch_size": batch_size, **settings_key()}


# -------------------------------------------------------- model identity

_identities: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model → identity
_files: dict[tuple, str] = {}  # (folder, names, sizes, mtimes) → digest of its files
_identity_lock = threading.Lock()


def model_identity(loaded: Loaded) -> str:
    """A content address of the model and tokenizer: a loaded folder (the workshop models,
    a local model) by the digest of its files; anything else (a hub model, a taught copy in
    memory) by a digest of its weights, config and tokenizer. Computed once per model object."""
    with _identity_lock:
        known = _identities.get(loaded.model)
    if known is not None:
        return known
    folder = _source_folder(loaded.name)
    identity = f"files:{folder_digest(folder)}" if folder is not None else f"weights:{weights_digest(loaded)}"
    with _identity_lock:
        _identities[loaded.model] = identity
    return identity


def _source_folder(name: str) -> Path | None:
    """The folder `load_model` read a model called `name` from, or None (a hub id, or a name
    no loader gives: a taught copy is called e.g. 'workshop (taught model)')."""
    from ..models import resolve_source

    try:
        source = Path(resolve_source(name))
    except UserError:
        return None
    return source if source.is_dir() else None


def folder_digest(folder: Path) -> str:
    """Digest of every file directly in `folder` (config, weights, tokenizer), by name and
    content; re-read only when a file's size or modification time changes."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    stat = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    memo = (str(folder.resolve()), stat)
    if memo in _files:
        return _files[memo]
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    _files[memo] = h.hexdigest()
    return _files[memo]


def weights_digest(loaded: Loaded) -> str:
    """Digest of the base weights (LoRA adapters a run attached are left out, and peft's
    `base_layer` wrapper is read through), the config and the tokenizer."""
    import torch

    h = hashlib.sha256()
    state = {k.replace(".base_layer", ""): v for k, v in loaded.model.state_dict().items() if "lora_" not in k}
    for name in sorted(state):
        t = state[name].detach()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\0".encode())
        h.update(t.cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())  # bytes of any dtype (bf16 too)
    h.update(loaded.model.config.to_json_string(use_diff=False).encode())
    tok = loaded.tokenizer
    backend = getattr(tok, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else json.dumps(sorted(tok.get_vocab().items()))
    h.update(vocab.encode() + str(getattr(tok, "chat_template", None)).encode())
    return h.hexdigest()


# ---------------------------------------------------- evaluation through the cache


class _Miss(Exception):
    """A split lookup() found no entry for."""


def cached_split(cache: EvalCache, loaded: Loaded, only_cached: bool = False) -> Callable[..., Value]:
    """A drop-in for metrics.evaluate_split that reads and fills `cache` for `loaded`'s model."""
    from .metrics import evaluate_split

    identity = model_identity(loaded)
    dtype = str(next(loaded.model.parameters()).dtype).replace("torch.", "")

    def one(model, tokenizer, ds: Dataset, split: str, batch_size: int = 32, check_cancel=None) -> Value:
        key = split_key(identity, loaded.device, dtype, split, ds, batch_size)
        if only_cached:  # lookup() counts its hits once it found them all
            if (hit := cache.get(key)) is None:
                raise _Miss(split)
            return hit
        hit = cache.claim(key, check_cancel)  # waits while another thread evaluates this split
        cache.count(hit is not None)
        if hit is not None:
            return hit
        try:
            value = evaluate_split(model, tokenizer, ds, split, batch_size, check_cancel)
            cache.put(key, value)
        finally:
            cache.release(key)
        return value

    return one


def lookup(cache: EvalCache, loaded: Loaded, splits: dict[str, Dataset]) -> Value | None:
    """`metrics.evaluate`'s (metrics, raw) for `loaded` on `splits` if every split is cached."""
    from .metrics import evaluate, scored_splits

    try:
        value = evaluate(loaded.model, loaded.tokenizer, splits, evaluate_one=cached_split(cache, loaded, only_cached=True))
    except _Miss:
        return None
    cache.count(True, sum(1 for ds in scored_splits(splits).values() if len(ds)))  # the splits evaluate read
    return value

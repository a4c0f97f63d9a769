"""LoRA adapters on a shared base model, and the artifact a LoRA run leaves behind.

Design (DESIGN.md §One base model): the loaded base is shared by every session, so its
weights are never written. A run adds uniquely named peft adapters to every `nn.Linear`
except the output head: `<tag>_<id>`, the one it trains, and, for an init that does not
start at zero (FILA), a frozen `<tag>_<id>_offset` holding −s·B0·A0 (B = −B0, A = A0, same
scale). With both active a layer computes W·x + s·B·A·x − s·B0·A0·x = W_res·x + s·B·A·x,
which is METHODS.md's FILA model exactly: METHODS.md (and the paper) replace the base
weight by W_res = W − s·B0·A0; we add the offset instead, so "original" is simply the base
with adapters off and nobody else's view changes. Outside `Adapters.use()` every adapter on
the model is disabled, and `use()` holds the base's lock while any is on.

Kept runs stay off the base: an adapter injected in a base costs every forward and every
walk of its modules, kept or not, so only the adapters being trained and the
`IDLE_ON_BASE` most recently used others stay injected; the rest are parked (their weights
held beside the base) and come back on their next `use()`. Chat rows never need them back
(`mixed_adapters` adds their products by hooks), nor merged copies (`merged_copy`).
The files are lora_files.py's.
"""

from __future__ import annotations

import json
import uuid
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from transformers.pytorch_utils import Conv1D

from ..artifacts import Unlearned
from ..base import Detached, RowView, base_lock
from ..errors import UserError
from ..models import SMALL_MODEL_PARAMS, Loaded, offloaded
from .deltas import ADAPTABLE, Deltas, combined, lora_layers, lora_weights, merged_copy
from .files import Weights, adapted_modules, read_adapter, read_run, weight_of, write_adapter

Init = dict[str, tuple[torch.Tensor, torch.Tensor]]  # module name → (A0 (r, in), B0 (out, r))

IDLE_ON_BASE = 1  # finished runs' adapters left injected in a base between uses (the last used)


def target_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear | Conv1D]:
    """Every linear layer (nn.Linear, or GPT-2's Conv1D: lora_deltas.ADAPTABLE) except the
    output head, by module name; a layer some other run already wrapped in LoRA counts as its
    base layer (and the LoRA A/B matrices are not targets)."""
    get_head = getattr(model, "get_output_embeddings", None)  # a transformers model has one
    head = get_head() if get_head is not None else None
    wrapped = {n: m for n, m in model.named_modules() if isinstance(m, LoraLayer)}
    out = {n: base for n, m in wrapped.items() if isinstance(base := m.get_base_layer(), ADAPTABLE)}
    for name, m in model.named_modules():
        inside = any(name.startswith(w + ".") for w in wrapped)
        if isinstance(m, ADAPTABLE) and m is not head and not inside:
            out[name] = m
    if head is not None:
        out = {n: m for n, m in out.items() if m is not head}
    return dict(sorted(out.items()))


def check_trainable(loaded: Loaded) -> None:
    """LoRA adapts every linear layer (nn.Linear, GPT-2's Conv1D); accelerate's offloaded
    layers hold no weights between calls."""
    if not target_linears(loaded.model):
        kinds = sorted({type(m).__name__ for m in loaded.model.modules() if not list(m.children())} - {"Embedding"})
        raise UserError(f"Model '{loaded.name}' has no layer LoRA can adapt (no nn.Linear or Conv1D outside its output "
                        f"head; its layers are {', '.join(kinds[:4]) or 'none'}), so LoRA methods cannot train it; "
                        "ECO, which trains nothing, still works.")
    if offloaded(loaded):
        raise UserError(f"Model '{loaded.name}' did not fit on the GPUs, so accelerate offloaded some of its layers to "
                        "the CPU, and LoRA methods cannot train those; use more GPUs, or ECO, which trains nothing.")


def _switch(model: torch.nn.Module, names: list[str] | None) -> None:
    """Turn on exactly `names` on every LoRA layer, or (None) every adapter off."""
    for _, layer in lora_layers(model):
        if names is None:
            layer.enable_adapters(False)
        else:
            layer.enable_adapters(True)
            layer.set_adapter(names)


@contextmanager
def adapters_off(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The shared model as loaded (every adapter off), under the base's lock."""
    with base_lock(model):
        _switch(model, None)
        yield model


def _inject(model: torch.nn.Module, config: LoraConfig, name: str) -> None:
    """peft's functional injection, minus its side effects on shared state: it freezes every
    other parameter (flags restored) and draws its random init from the global generator
    (forked, so other users of torch's RNG see no difference)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.filterwarnings("ignore", message=".*peft_config.*")  # "multiple adapters": intended
        inject_adapter_in_model(config, model, adapter_name=name)
    for p, flag in flags:
        p.requires_grad_(flag)
    # Adapters in float32 whatever the base's dtype: peft casts them to a bf16 base's dtype,
    # and in bf16 FILA's trained adapter and its frozen offset (values ~10) no longer cancel
    # (max |Δlogit| 0.19 at step 0 on a 0.5 B model) and AdamW's small updates round away.
    # peft runs a float32 adapter in float32 and casts the layer's output back.
    for _, layer in lora_layers(model):
        if name in layer.lora_A:
            layer.lora_A[name].float()
            layer.lora_B[name].float()


def _unwrap_empty(model: torch.nn.Module) -> None:
    """Put plain base layers back where no adapter is left, so the module tree is as loaded."""
    for name, layer in lora_layers(model):
        if not layer._get_available_adapters():
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, layer.get_base_layer())
    if hasattr(model, "peft_config") and not model.peft_config:
        del model.peft_config


# Per base (by id), the adapters injected in it, least recently used first. Weak: a private
# copy's adapters (an attack's) go with the copy.
_injected: dict[int, list[weakref.ref[Adapters]]] = {}


class Adapters:
    """One run's adapters on a shared base: `adapter` (trained) and optionally `offset` (frozen).

    Injected in the base while `pinned` (being made: `create` to `keep`) or in use, and for the
    `IDLE_ON_BASE` most recently used kept runs; otherwise parked: `_parked` holds the weights."""

    def __init__(self, model: torch.nn.Module, config: LoraConfig, adapter: str, offset: str | None):
        self.model, self.config, self.adapter, self.offset = model, config, adapter, offset
        self.lock = base_lock(model)
        self.pinned = True
        self._parked: dict[str, Weights] | None = None
        self._in_use = 0

    @classmethod
    def create(cls, model: torch.nn.Module, tag: str, rank: int, alpha: int, with_offset: bool,
               targets: list[str] | None = None) -> Adapters:
        """Add this run's adapters (disabled) to every target layer of the shared model."""
        layers = target_linears(model)
        targets = targets or list(layers)
        # fan_in_fan_out: GPT-2's Conv1D stores W as (in, out); peft would set it itself, with a warning
        transposed = any(isinstance(layers.get(t), Conv1D) for t in targets)
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, bias="none", target_modules=targets,
                            fan_in_fan_out=transposed)
        adapter = f"{tag.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        self = cls(model, config, adapter, f"{adapter}_offset" if with_offset else None)
        with self.lock:
            self._put_on()
            self._touch()
        return self

    @property
    def names(self) -> list[str]:
        return [self.adapter] + ([self.offset] if self.offset else [])

    @property
    def scale(self) -> float:
        return self.config.lora_alpha / self.config.r

    @property
    def parked(self) -> bool:
        return self._parked is not None

    def _layers(self) -> dict[str, LoraLayer]:
        return {n: m for n, m in lora_layers(self.model) if self.adapter in m.lora_A}

    def weights(self, which: str | None = None) -> Weights:
        """{module: (A (r, in), B (out, r))} of `which` (default: the trained adapter), injected or parked."""
        name = which or self.adapter
        if self._parked is not None:
            return self._parked[name]
        return {module: lora_weights(layer, name) for module, layer in self._layers().items()}

    def deltas(self) -> Deltas:
        """What this run adds to each layer: the trained adapter, then the offset."""
        return combined([{m: [(a, b, self.scale)] for m, (a, b) in self.weights(n).items()} for n in self.names])

    def parameters(self, which: str | None = None) -> list[torch.Tensor]:
        """The A and B weights (parameters) of `which` (default: the trained adapter), layer by layer."""
        return [t for a, b in self.weights(which).values() for t in (a, b)]

    def trainable_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def write_init(self, init: Init) -> None:
        """A ← A0, B ← B0 for the trained adapter; the offset gets A0 and −B0."""
        for name, (a, b) in self.weights().items():
            a0, b0 = init[name]
            a.copy_(a0)
            b.copy_(b0)
        if self.offset:
            for name, (a, b) in self.weights(self.offset).items():
                a0, b0 = init[name]
                a.copy_(a0)
                b.copy_(-b0)

    @contextmanager
    def use(self, train: bool = False) -> Iterator[torch.nn.Module]:
        """The shared model with this run's adapters on (under the base's lock), all off after.
        `train` makes the trained adapter require grad; the offset never does."""
        with self.lock:
            self._touch()
            self._in_use += 1
            _switch(self.model, self.names)
            for p in self.parameters():
                p.requires_grad_(train)
            if self.offset:
                for p in self.parameters(self.offset):
                    p.requires_grad_(False)
            try:
                yield self.model
            finally:
                _switch(self.model, None)
                self._in_use -= 1

    def keep(self) -> None:
        """Training is over: from now on these adapters may be parked while not in use."""
        with self.lock:
            self.pinned = False
            for p in self.parameters() + (self.parameters(self.offset) if self.offset else []):
                p.requires_grad_(False)
            self._touch()

    def remove(self) -> None:
        """Delete this run's adapters from the shared model and restore plain layers."""
        with self.lock:
            if self._parked is None:
                self._take_off()
            self._parked = None
            _forget(self)

    # ---------------------------------------------------------------- on and off the base

    def _put_on(self) -> None:
        """Put these adapters in the base (disabled), with their parked weights if any."""
        for name in self.names:
            _inject(self.model, self.config, name)
        parked, self._parked = self._parked, None
        if parked is not None:
            with torch.no_grad():
                for name in self.names:
                    for module, (a, b) in self.weights(name).items():
                        a.copy_(parked[name][module][0])
                        b.copy_(parked[name][module][1])
                        a.requires_grad_(False)
                        b.requires_grad_(False)
        _switch(self.model, None)

    def _take_off(self) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*was active which is now deleted.*")  # all go off below
            for _, layer in lora_layers(self.model):
                for name in self.names:
                    if name in layer._get_available_adapters():
                        layer.delete_adapter(name)
        for name in self.names:
            getattr(self.model, "peft_config", {}).pop(name, None)
        _switch(self.model, None)
        _unwrap_empty(self.model)

    def _park(self) -> None:
        """Take these adapters out of the base, keeping their weights (the same tensors)."""
        parked = {name: {m: (a.detach(), b.detach()) for m, (a, b) in self.weights(name).items()} for name in self.names}
        self._take_off()
        self._parked = parked

    def _touch(self) -> None:
        """Inject these adapters if parked, count them the most recently used, and park the
        least recently used kept runs beyond IDLE_ON_BASE (never one being made or in use).
        Call it holding the base's lock."""
        if self._parked is not None:
            self._put_on()
        alive = [a for ref in _injected.get(id(self.model), []) if (a := ref()) is not None and a is not self]
        alive.append(self)
        idle = [a for a in alive if not a.pinned and not a._in_use]
        for a in idle[: max(0, len(idle) - IDLE_ON_BASE)]:
            a._park()
            alive.remove(a)
        _injected[id(self.model)] = [weakref.ref(a) for a in alive]

    # ---------------------------------------------------------------- files

    def save(self, folder: Path, base_name: str) -> None:
        """`adapter/` and `offset/` as PeftModel.save_pretrained writes them."""
        for sub, name in (("adapter", self.adapter), ("offset", self.offset)):
            if name is not None:
                write_adapter(folder / sub, self.config, base_name, self.weights(name))

    @classmethod
    def load(cls, model: torch.nn.Module, folder: Path, tag: str) -> Adapters:
        """Attach a saved adapter (and its offset) to the shared model under fresh names."""
        config, state = read_adapter(folder / "adapter")
        offset_state = read_adapter(folder / "offset")[1] if (folder / "offset").is_dir() else None
        modules = adapted_modules(state)
        missing = [m for m in modules if m not in target_linears(model)]
        if missing:
            raise UserError(f"The artifact in {folder} was made for another model: this one has no layer '{missing[0]}'.")
        self = cls.create(model, tag, config.r, config.lora_alpha, offset_state is not None, modules)
        try:
            self._load_state(self.adapter, state, folder)
            if offset_state is not None:
                assert self.offset is not None  # created with one just above
                self._load_state(self.offset, offset_state, folder)
        except BaseException:
            self.remove()
            raise
        return self

    @torch.no_grad()
    def _load_state(self, name: str, state: dict[str, torch.Tensor], folder: Path) -> None:
        for module, pair in self.weights(name).items():
            for part, target in zip(("lora_A", "lora_B"), pair):
                saved = weight_of(state, module, part)
                if saved is None or saved.shape != target.shape:
                    raise UserError(f"The artifact in {folder} does not fit this model (layer '{module}' differs).")
                target.copy_(saved)


def _forget(adapters: Adapters) -> None:
    """`adapters` are gone from their base: drop them from its list."""
    refs = [r for r in _injected.pop(id(adapters.model), []) if (a := r()) is not None and a is not adapters]
    if refs:
        _injected[id(adapters.model)] = refs


class LoraUnlearned(Unlearned):
    """The base model plus one run's adapters: "original" is the base with every adapter off,
    "unlearned" turns this run's adapter (and FILA's offset) on."""

    def __init__(self, loaded: Loaded, settings: dict[str, Any], method: str, adapters: Adapters):
        super().__init__(loaded, settings)
        self.method = method
        self.adapters = adapters
        self.trainable_params = adapters.trainable_count()
        adapters.keep()

    @contextmanager
    def _activate(self, which: str) -> Iterator[torch.nn.Module]:
        if which == "unlearned":
            with self.adapters.use() as model:
                yield model
        else:
            with adapters_off(self.loaded.model) as model:  # already off outside any view; made certain
                yield model

    def row_view(self, which: str) -> RowView:
        return RowView((self.adapters,) if which == "unlearned" else ())

    def _merged(self, which: str) -> torch.nn.Module:
        with self.lock:
            return merged_copy(self.loaded.model, self.adapters.deltas() if which == "unlearned" else {})

    def detached(self, which: str) -> Detached:
        """The base's weights with this run's adapters merged in ("unlearned") or none."""
        plain = self._merged(which)
        return Detached(plain, plain)

    @contextmanager
    def evaluation_model(self) -> Iterator[Any]:
        """A small model on the CPU: a private copy with the adapters merged (no lock, no
        per-layer LoRA matmuls, evaluated on two threads). Anything larger, or placed by
        accelerate: the locked view."""
        model = self.loaded.model
        small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS
        if self.loaded.device == "cpu" and small and not getattr(model, "hf_device_map", None):
            yield self._merged("unlearned")
        else:
            yield self.proxy("unlearned")

    def _save_files(self, folder: Path) -> None:
        self.adapters.save(folder, self.loaded.name)
        run = {"steps": self.steps, "trainable_params": self.trainable_params, "history": self.history,
               **{k: v for k, v in self.extra_report.items() if k in ("stopping", "fila")}}
        (folder / "run.json").write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")

    def release(self) -> None:
        self.adapters.remove()

    @classmethod
    def open(cls, loaded: Loaded, folder: Path, settings: dict[str, Any], method: str) -> LoraUnlearned:
        """The artifact in `folder`, attached to `loaded` (the engine's `load`)."""
        run = read_run(folder / "run.json")  # before the adapters go on the shared base
        unlearned = cls(loaded, settings, method, Adapters.load(loaded.model, folder, method))
        unlearned.steps, unlearned.history = run.get("steps", 0), run.get("history", [])
        return unlearned

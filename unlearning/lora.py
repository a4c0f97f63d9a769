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

The artifact folder holds `adapter/` (and `offset/`) in peft's standard format
(adapter_config.json + adapter_model.safetensors, loadable with PeftModel.from_pretrained)
and `run.json` (steps, history, stopping); the manifest holds the settings.
"""

from __future__ import annotations

import copy
import json
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import limits
from .artifacts import RowView, Unlearned, base_lock, read_json
from .errors import UserError
from .models import SMALL_MODEL_PARAMS, Loaded

PREFIX = "base_model.model."  # what PeftModel.save_pretrained puts before module names
WEIGHTS = "adapter_model.safetensors"

Init = dict[str, tuple[torch.Tensor, torch.Tensor]]  # module name → (A0 (r, in), B0 (out, r))


def target_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """Every nn.Linear except the output head, by module name; a layer some other run already
    wrapped in LoRA counts as its base layer (and the LoRA A/B matrices are not targets)."""
    get_head = getattr(model, "get_output_embeddings", None)  # a transformers model has one
    head = get_head() if get_head is not None else None
    wrapped = {n: m for n, m in model.named_modules() if isinstance(m, LoraLayer)}
    out = {n: base for n, m in wrapped.items() if isinstance(base := m.get_base_layer(), torch.nn.Linear)}
    for name, m in model.named_modules():
        inside = any(name.startswith(w + ".") for w in wrapped)
        if isinstance(m, torch.nn.Linear) and m is not head and not inside:
            out[name] = m
    if head is not None:
        out = {n: m for n, m in out.items() if m is not head}
    return dict(sorted(out.items()))


def _lora_layers(model: torch.nn.Module) -> list[tuple[str, LoraLayer]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoraLayer)]


def _weights(layer: LoraLayer, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Adapter `name`'s A (r, in) and B (out, r) weights in `layer`."""
    a, b = layer.lora_A[name], layer.lora_B[name]
    assert isinstance(a, torch.nn.Linear) and isinstance(b, torch.nn.Linear), "LoRA on a Linear layer"
    return a.weight, b.weight


def _switch(model: torch.nn.Module, names: list[str] | None) -> None:
    """Turn on exactly `names` on every LoRA layer, or (None) every adapter off."""
    for _, layer in _lora_layers(model):
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


def merged_copy(model: torch.nn.Module, names: list[str]) -> torch.nn.Module:
    """A private copy of the shared model with adapters `names` merged into its weights and
    every LoRA wrapper gone: a plain model that takes no lock, which several threads may
    evaluate at once. It costs one model's memory (callers keep it to small models)."""
    with base_lock(model):
        plain = copy.deepcopy(model)
    with torch.no_grad():
        for name, layer in _lora_layers(plain):
            base = layer.get_base_layer()
            assert isinstance(base, torch.nn.Linear), "LoRA on a Linear layer"
            for adapter in names:
                if adapter in layer.lora_A:
                    a, b = _weights(layer, adapter)
                    base.weight += layer.scaling[adapter] * (b @ a).to(base.weight.dtype)  # s · B · A: (out, in)
            parent, _, attr = name.rpartition(".")
            setattr(plain.get_submodule(parent) if parent else plain, attr, base)
    return plain


@contextmanager
def mixed_adapters(model: torch.nn.Module, rows: list[tuple[str, ...]]) -> Iterator[torch.nn.Module]:
    """The shared model computing a batch whose row i has adapters `rows[i]` on (() the base).
    Call under the base's lock, where every adapter is off: each LoRA layer then computes its
    base output and a hook adds each row's adapters in order, as peft's forward does for
    `set_adapter(names)` on that row alone. (peft's own mixed batches, `adapter_names=`, take
    one adapter per row; FILA's unlearned view needs two, the trained adapter and its offset.)"""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, names in enumerate(rows):
        if names:
            groups.setdefault(tuple(names), []).append(i)
    index = {names: torch.tensor(idx) for names, idx in groups.items()}

    def add_rows(layer: LoraLayer, args: tuple, out: torch.Tensor) -> torch.Tensor:
        x = args[0]  # (B, T, in) → out (B, T, out)
        for names, idx in index.items():
            idx = idx.to(x.device)
            xs, result = x[idx], out[idx]
            for name in names:
                if name in layer.lora_A:
                    a, b = layer.lora_A[name], layer.lora_B[name]
                    result = result + b(a(layer.lora_dropout[name](xs.to(a.weight.dtype)))) * layer.scaling[name]
            out[idx] = result.to(out.dtype)
        return out

    layers: list[Any] = [layer for _, layer in _lora_layers(model)] if index else []  # each an nn.Module too
    hooks = [layer.register_forward_hook(add_rows) for layer in layers]
    try:
        yield model
    finally:
        for hook in hooks:
            hook.remove()


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
    for _, layer in _lora_layers(model):
        if name in layer.lora_A:
            layer.lora_A[name].float()
            layer.lora_B[name].float()


def _unwrap_empty(model: torch.nn.Module) -> None:
    """Put plain base layers back where no adapter is left, so the module tree is as loaded."""
    for name, layer in _lora_layers(model):
        if not layer._get_available_adapters():
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, layer.get_base_layer())
    if hasattr(model, "peft_config") and not model.peft_config:
        del model.peft_config


class Adapters:
    """One run's adapters on a shared base: `adapter` (trained) and optionally `offset` (frozen)."""

    def __init__(self, model: torch.nn.Module, config: LoraConfig, adapter: str, offset: str | None):
        self.model, self.config, self.adapter, self.offset = model, config, adapter, offset
        self.lock = base_lock(model)

    @classmethod
    def create(cls, model: torch.nn.Module, tag: str, rank: int, alpha: int, with_offset: bool,
               targets: list[str] | None = None) -> Adapters:
        """Add this run's adapters (disabled) to every target layer of the shared model."""
        targets = targets or list(target_linears(model))
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, bias="none", target_modules=targets)
        adapter = f"{tag.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        self = cls(model, config, adapter, f"{adapter}_offset" if with_offset else None)
        with self.lock:
            for name in self.names:
                _inject(model, config, name)
            _switch(model, None)
        return self

    @property
    def names(self) -> list[str]:
        return [self.adapter] + ([self.offset] if self.offset else [])

    @property
    def scale(self) -> float:
        return self.config.lora_alpha / self.config.r

    def _layers(self) -> dict[str, LoraLayer]:
        return {n: m for n, m in _lora_layers(self.model) if self.adapter in m.lora_A}

    def parameters(self, which: str | None = None) -> list[torch.Tensor]:
        """The A and B weights (parameters) of `which` (default: the trained adapter), layer by layer."""
        name = which or self.adapter
        return [p for m in self._layers().values() for p in _weights(m, name)]

    def trainable_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def write_init(self, init: Init) -> None:
        """A ← A0, B ← B0 for the trained adapter; the offset gets A0 and −B0."""
        for name, layer in self._layers().items():
            a0, b0 = init[name]
            a, b = _weights(layer, self.adapter)
            a.copy_(a0)
            b.copy_(b0)
            if self.offset:
                a, b = _weights(layer, self.offset)
                a.copy_(a0)
                b.copy_(-b0)

    @contextmanager
    def use(self, train: bool = False) -> Iterator[torch.nn.Module]:
        """The shared model with this run's adapters on (under the base's lock), all off after.
        `train` makes the trained adapter require grad; the offset never does."""
        with self.lock:
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

    def remove(self) -> None:
        """Delete this run's adapters from the shared model and restore plain layers."""
        with self.lock, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*was active which is now deleted.*")  # all go off below
            for _, layer in _lora_layers(self.model):
                for name in self.names:
                    if name in layer._get_available_adapters():
                        layer.delete_adapter(name)
            for name in self.names:
                getattr(self.model, "peft_config", {}).pop(name, None)
            _switch(self.model, None)
            _unwrap_empty(self.model)

    # ---------------------------------------------------------------- files

    def save(self, folder: Path, base_name: str) -> None:
        """`adapter/` and `offset/` as PeftModel.save_pretrained writes them."""
        for sub, name in (("adapter", self.adapter), ("offset", self.offset)):
            if name is None:
                continue
            (folder / sub).mkdir(parents=True, exist_ok=True)
            config = copy.copy(self.config)
            config.base_model_name_or_path = base_name
            config.save_pretrained(str(folder / sub))
            state = {}
            for module, layer in self._layers().items():
                a, b = _weights(layer, name)
                state[f"{PREFIX}{module}.lora_A.weight"] = a.detach().cpu().contiguous()
                state[f"{PREFIX}{module}.lora_B.weight"] = b.detach().cpu().contiguous()
            save_file(state, str(folder / sub / WEIGHTS), metadata={"format": "pt"})

    @classmethod
    def load(cls, model: torch.nn.Module, folder: Path, tag: str) -> Adapters:
        """Attach a saved adapter (and its offset) to the shared model under fresh names."""
        config, state = _read_adapter(folder / "adapter")
        offset_state = _read_adapter(folder / "offset")[1] if (folder / "offset").is_dir() else None
        # The weights name every adapted layer in full (peft may shorten config.target_modules).
        modules = sorted({k.removeprefix(PREFIX).rsplit(".lora_", 1)[0] for k in state})
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
        for module, layer in self._layers().items():
            for part in ("lora_A", "lora_B"):
                key = f"{PREFIX}{module}.{part}.weight"
                target = getattr(layer, part)[name].weight
                if key not in state or state[key].shape != target.shape:
                    raise UserError(f"The artifact in {folder} does not fit this model (layer '{module}' differs).")
                target.copy_(state[key])


def _read_adapter(folder: Path) -> tuple[LoraConfig, dict[str, torch.Tensor]]:
    """The adapter's config and weights; a missing or damaged file is one sentence naming it."""
    for file in (folder / "adapter_config.json", folder / WEIGHTS):
        if not file.is_file():
            raise UserError(f"The LoRA adapter in {folder} is incomplete: '{file.name}' is missing.")
    try:  # a damaged config: JSONDecodeError (a ValueError), or TypeError for fields of the wrong type
        config = LoraConfig.from_pretrained(str(folder))
    except (OSError, TypeError, ValueError, KeyError) as e:
        raise UserError(f"'{folder / 'adapter_config.json'}' is corrupted ({_short(e)}).") from None
    rank_ok = isinstance(config.r, int) and 1 <= config.r <= limits.MAX_RANK  # a huge r would fill the memory
    if not (rank_ok and isinstance(config.lora_alpha, (int, float))):
        raise UserError(f"'{folder / 'adapter_config.json'}' is corrupted (its rank 'r' is not between 1 and "
                        f"{limits.MAX_RANK}, or its 'lora_alpha' is not a number).")
    try:
        state = load_file(str(folder / WEIGHTS))
    except (OSError, SafetensorError) as e:
        raise UserError(f"'{folder / WEIGHTS}' is corrupted ({_short(e)}).") from None
    return config, state


def _short(e: Exception, n: int = 100) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= n else text[: n - 1] + "…"


class LoraUnlearned(Unlearned):
    """The base model plus one run's adapters: "original" is the base with every adapter off,
    "unlearned" turns this run's adapter (and FILA's offset) on."""

    def __init__(self, loaded: Loaded, settings: dict[str, Any], method: str, adapters: Adapters):
        super().__init__(loaded, settings)
        self.method = method
        self.adapters = adapters
        self.trainable_params = adapters.trainable_count()

    @contextmanager
    def _activate(self, which: str) -> Iterator[torch.nn.Module]:
        if which == "unlearned":
            with self.adapters.use() as model:
                yield model
        else:
            with adapters_off(self.loaded.model) as model:  # already off outside any view; made certain
                yield model

    def row_view(self, which: str) -> RowView:
        return RowView(tuple(self.adapters.names) if which == "unlearned" else ())

    @contextmanager
    def evaluation_model(self) -> Iterator[Any]:
        """A small model on the CPU: a private copy with the adapters merged (no lock, no
        per-layer LoRA matmuls; with two threads the after-evaluation took 4.6 s instead of
        11.8 s on the preset). Anything larger, or placed by accelerate: the locked view."""
        model = self.loaded.model
        small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS
        if self.loaded.device == "cpu" and small and not getattr(model, "hf_device_map", None):
            yield merged_copy(model, self.adapters.names)
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
        run = _read_run(folder / "run.json")  # before the adapters go on the shared base
        unlearned = cls(loaded, settings, method, Adapters.load(loaded.model, folder, method))
        unlearned.steps, unlearned.history = run.get("steps", 0), run.get("history", [])
        return unlearned


def _read_run(path: Path) -> dict:
    """run.json (steps and history, for the report); optional, but a damaged one is refused."""
    if not path.exists():
        return {}
    run = read_json(path, f"'{path}' is missing.")
    if not isinstance(run, dict) or not isinstance(run.get("steps", 0), int) or not isinstance(run.get("history", []), list):
        raise UserError(f"'{path}' is corrupted (it is not an object with 'steps' and 'history').")
    return run


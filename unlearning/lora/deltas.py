"""What LoRA adapters add to a layer, computed outside peft's forward: by hooks for the rows
of a shared batch (`mixed_adapters`), or merged into the weights of a private copy
(`merged_copy`, the one merge: evaluation copies and the attacks' copies).

An adapter set is anything with `deltas()`: {module name: [(A (r, in), B (out, r), scale)]},
each term adding s · B · A · x to the module's output, in order (lora.Adapters, injected or
parked).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
import torch.nn.functional as F
from peft.tuners.lora import LoraLayer
from transformers.pytorch_utils import Conv1D

from ..base import base_lock

Deltas = dict[str, list[tuple[torch.Tensor, torch.Tensor, float]]]  # module name → [(A, B, scale)], in order


class AdapterSet(Protocol):
    def deltas(self) -> Deltas: ...


# The layer types the Studio adapts: nn.Linear, and GPT-2's Conv1D (a linear layer that stores
# its weight transposed, (in, out), and computes x·W + b); peft's LoRA wraps both, its A and B
# are (r, in) and (out, r) either way.
ADAPTABLE = (torch.nn.Linear, Conv1D)


def out_in(layer: torch.nn.Module, t: torch.Tensor | None = None) -> torch.Tensor:
    """`layer`'s weight (or `t`, a tensor shaped like it) as (out, in): a transposed view for a Conv1D."""
    w = layer.weight if t is None else t
    assert isinstance(w, torch.Tensor), "an adaptable layer (ADAPTABLE)"
    return w.T if isinstance(layer, Conv1D) else w


def features(layer: torch.nn.Module) -> tuple[int, int]:
    """(in, out) of an adaptable layer."""
    out, fan_in = out_in(layer).shape
    return fan_in, out


def lora_layers(model: torch.nn.Module) -> list[tuple[str, LoraLayer]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoraLayer)]


def lora_weights(layer: LoraLayer, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Adapter `name`'s A (r, in) and B (out, r) weights in `layer`."""
    a, b = layer.lora_A[name], layer.lora_B[name]
    assert isinstance(a, torch.nn.Linear) and isinstance(b, torch.nn.Linear), "LoRA on a Linear layer"
    return a.weight, b.weight


def merged_copy(model: torch.nn.Module, deltas: Deltas) -> torch.nn.Module:
    """A private copy of the shared model with `deltas` merged into its weights and every
    LoRA wrapper gone, frozen and in eval mode: a plain model that takes no lock, which
    several threads may evaluate or an attack may change. It costs one model's memory."""
    with base_lock(model):
        plain = copy.deepcopy(model)
    with torch.no_grad():
        for name, layer in lora_layers(plain):
            parent, _, attr = name.rpartition(".")
            setattr(plain.get_submodule(parent) if parent else plain, attr, layer.get_base_layer())
        for name, terms in deltas.items():
            target = plain.get_submodule(name)
            assert isinstance(target, ADAPTABLE), "LoRA on a Linear or Conv1D layer (lora.target_linears)"
            weight = out_in(target)  # a view of the stored weight
            for a, b, scale in terms:  # s · B · A: (out, in), in the adapter's float32, added in the base's dtype
                weight += (b @ a * scale).to(weight.dtype)
    if hasattr(plain, "peft_config"):
        del plain.peft_config
    plain.requires_grad_(False)
    return plain.eval()


def active_deltas(model: torch.nn.Module) -> Deltas:
    """The adapters switched on in `model` (inside a view), layer by layer."""
    out: Deltas = {}
    for name, layer in lora_layers(model):
        if not layer.disable_adapters:
            for adapter in layer.active_adapters:
                if adapter in layer.lora_A:
                    out.setdefault(name, []).append((*lora_weights(layer, adapter), layer.scaling[adapter]))
    return out


def detached(model: torch.nn.Module) -> torch.nn.Module:
    """merged_copy of a view's model with the adapters it has on (call it holding the base's lock)."""
    return merged_copy(model, active_deltas(model))


@contextmanager
def mixed_adapters(model: torch.nn.Module, rows: list[tuple[AdapterSet, ...]]) -> Iterator[torch.nn.Module]:
    """The shared model computing a batch whose row i has the adapter sets `rows[i]` on (()
    the base). Call under the base's lock, where every adapter is off: each adapted layer then
    computes its base output and a hook adds each row's adapters in order, as peft's forward
    does for `set_adapter(names)` on that row alone, from their weights whether they are
    injected or parked. (peft's own mixed batches, `adapter_names=`, take one adapter per row;
    FILA's unlearned view needs two, the trained adapter and its offset.)"""
    groups: dict[tuple[AdapterSet, ...], list[int]] = {}
    for i, sets in enumerate(rows):
        if sets:
            groups.setdefault(tuple(sets), []).append(i)
    by_layer: dict[str, list[tuple[torch.Tensor, list]]] = {}
    for sets, idx in groups.items():
        rows_idx = torch.tensor(idx)
        for name, terms in combined([s.deltas() for s in sets]).items():
            by_layer.setdefault(name, []).append((rows_idx, terms))

    def add_rows(groups: list[tuple[torch.Tensor, list]]):
        def hook(layer: torch.nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
            x = args[0]  # (B, T, in) → out (B, T, out)
            for idx, terms in groups:
                idx = idx.to(x.device)
                xs, result = x[idx], out[idx]
                for a, b, scale in terms:
                    result = result + F.linear(F.linear(xs.to(a.dtype), a), b) * scale
                out[idx] = result.to(out.dtype)
            return out
        return hook

    hooks = [model.get_submodule(name).register_forward_hook(add_rows(g)) for name, g in by_layer.items()]
    try:
        yield model
    finally:
        for hook in hooks:
            hook.remove()


def combined(parts: list[Deltas]) -> Deltas:
    out: Deltas = {}
    for deltas in parts:
        for name, terms in deltas.items():
            out.setdefault(name, []).extend(terms)
    return out

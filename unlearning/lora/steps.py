"""One LoRA training step's passes and gradients (trainer.train runs them step by step).

    values, grads = step_gradients(model, terms, batch, device, reference_pass(...), params, pool)

`reference_pass` is the original model's forward on each split a term reads a "ref_" value of;
`step_values` evaluates every term (and `total`) from one forward pass per split;
`step_gradients` adds total's gradient with respect to the trained parameters, the splits side
by side on two cores where `split_pool` gives a thread for that. `StepStrategy` is what the
trainer asks of the processes a run is spread over: `trainer.Local` (one) or
`distributed.DataParallel` (several, each with a whole model).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ..models import Loaded
from .adapters import adapters_off
from .losses import REFERENCE, Term, evaluate_terms, reads_of, splits_of

if TYPE_CHECKING:
    from .fila import FisherStats

Batch = dict[str, dict[str, torch.Tensor]]  # {"forget": {...}, "retain": {...}}, tensors (B, T)
Values = dict[str, torch.Tensor]  # each term by name, and "total"


class StepStrategy(Protocol):
    """How a LoRA run's batches, gradients and stop decision are shared among its processes;
    chosen once per run (LoraMethod.run), so the training loop has no branch on it."""

    @property
    def main(self) -> bool: ...  # this process measures the holdout criterion

    @property
    def pool(self) -> ThreadPoolExecutor | None: ...  # a thread for a step's second split, or None

    def shard(self, batch: Batch) -> Batch:
        """This process's rows of a global training batch."""
        ...

    def own(self, batches: Iterable[Batch], n: int) -> tuple[Iterable[Batch], int]:
        """The whole batches (and how many) a summing pass takes here, of `n`: FILA's Fisher."""
        ...

    def gradients(self, model, terms: tuple[Term, ...], batch: Batch, device, reference: dict[str, dict[str, Any]],
                  params: list[torch.Tensor]) -> tuple[Values, list[torch.Tensor]]:
        """The global batch's loss values and total's gradient w.r.t. `params`, from this process's shard."""
        ...

    def fisher(self, stats: FisherStats) -> FisherStats:
        """The Fisher sums of the whole pass, from this process's."""
        ...

    def decide(self, measure: Callable[[], tuple[dict[str, float], bool]]) -> tuple[dict[str, float], bool]:
        """The holdout measurement and whether to stop, the same on every process."""
        ...


def forward(model, batch: dict[str, torch.Tensor], device, hidden: bool) -> dict[str, Any]:
    """One split's forward pass as the reads a Term may name (losses.Term)."""
    b = {k: v.to(device) for k, v in batch.items()}
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False, output_hidden_states=hidden)
    return {"logits": out.logits, "labels": b["labels"], "attention_mask": b["attention_mask"],  # (B, T, V), (B, T), (B, T)
            "hidden_states": out.hidden_states}  # None unless asked: L + 1 of (B, T, H)


def reference_pass(model, terms: tuple[Term, ...], batch: dict, device) -> dict[str, dict[str, Any]]:
    """The original model's forward pass (every adapter off, no grad) on each split some term
    reads a "ref_" value of, under those names; {} for objectives that read none."""
    out = {}
    for split in splits_of(terms):
        wanted = {r.removeprefix(REFERENCE) for r in reads_of(terms, split) if r.startswith(REFERENCE)}
        if wanted and batch[split]["input_ids"].shape[0]:  # a data-parallel process's empty shard needs none
            with torch.no_grad(), adapters_off(model) as original:
                values = forward(original, batch[split], device, "hidden_states" in wanted)
            out[split] = {REFERENCE + k: v for k, v in values.items()}
    return out


def step_values(model, terms: tuple[Term, ...], batch: dict, device,
                reference: dict[str, dict[str, Any]] | None = None) -> dict[str, torch.Tensor]:
    outputs = {}
    for split in splits_of(terms):
        values = forward(model, batch[split], device, "hidden_states" in reads_of(terms, split))
        outputs[split] = values | (reference or {}).get(split, {})
    return evaluate_terms(terms, outputs)


def split_step(model, terms: tuple[Term, ...], split: str, batch: dict, device, reference: dict[str, dict[str, Any]],
               params: list[torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """One split's terms (their own "total": Σ weight · value) and that total's gradient."""
    mine = tuple(t for t in terms if t.split == split)
    values = step_values(model, mine, batch, device, reference)
    return values, list(torch.autograd.grad(values["total"], params, allow_unused=True, materialize_grads=True))


def step_gradients(model, terms: tuple[Term, ...], batch: dict, device, reference: dict[str, dict[str, Any]],
                   params: list[torch.Tensor], pool: ThreadPoolExecutor | None = None
                   ) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """Every term, `total`, and total's gradient with respect to `params`. With `pool`, the
    splits' passes run side by side, the second on the pool's thread (each term reads one
    split, so the total and its gradient are the sums of the splits'): on a small CPU model a
    step is a chain of matmuls too short to split across cores, but two passes fill two."""
    splits = splits_of(terms)
    if pool is None or len(splits) < 2:
        values = step_values(model, terms, batch, device, reference)
        return values, list(torch.autograd.grad(values["total"], params, allow_unused=True, materialize_grads=True))
    later = [pool.submit(split_step, model, terms, s, batch, device, reference, params) for s in splits[1:]]
    parts = [split_step(model, terms, splits[0], batch, device, reference, params)] + [f.result() for f in later]
    named = {k: v for part, _ in parts for k, v in part.items() if k != "total"}
    values = {t.name: named[t.name] for t in terms}
    values["total"] = torch.stack([part["total"] for part, _ in parts]).sum()
    return values, [torch.stack(gs).sum(0) for gs in zip(*(g for _, g in parts))]


def split_pool(loaded: Loaded) -> ThreadPoolExecutor | None:
    """A thread for a step's second split where that fills an idle core: a CPU model run on one
    intra-op thread (models.set_cpu_threads) on a machine with more than one core."""
    if str(loaded.device) == "cpu" and torch.get_num_threads() == 1 and (os.cpu_count() or 1) > 1:
        return ThreadPoolExecutor(1, thread_name_prefix="split")
    return None

"""Data-parallel LoRA unlearning under `accelerate launch` (DESIGN.md §Scale).

    accelerate launch --multi_gpu --num_processes 4 -m unlearning unlearn --method ihl-fila …

Each process holds the whole model and takes its share of every paired batch (the same
global batch a one-process run takes: `--batch-size` is global). A step's loss terms are
means over the global batch, so each process weighs its own mean by its share of the term's
units (labelled tokens, answers, rows or positions: `losses.Term.unit`) and the gradients are
summed: every process gets the gradient of the one-process loss, clips it and takes the same
AdamW step. FILA's Fisher pass gives each process whole batches and sums the Fisher sums.
Only the main process evaluates, writes the report and saves the artifact. `DataParallel` is
the trainer's step strategy (steps.StepStrategy) for such a run; `trainer.Local` the one-process one.

The collectives go through accelerate (`PartialState`, `accelerate.utils.reduce` /
`broadcast_object_list` over torch.distributed: NCCL on GPUs, gloo on the CPU). A process
not launched with more than one process never imports accelerate here: `start()` is None and
the run is a one-process one.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

import torch

from ..batches import IGNORE
from ..errors import UserError
from ..runs import RunContext
from .fila import FisherStats
from .losses import Term
from .steps import Batch, Values, step_values

_group: DataParallel | None = None  # joined once per process: a process group cannot be joined twice


def launched_processes() -> int:
    """How many processes the launcher started (torchrun's WORLD_SIZE; 1 when not launched)."""
    text = os.environ.get("WORLD_SIZE", "1")
    return int(text) if text.isdigit() and int(text) > 0 else 1


def start(device: str = "auto") -> DataParallel | None:
    """Join the launched processes (once per process); None when launched as one. On the CPU
    (asked for, or no GPU here) the group is gloo's; on GPUs accelerate binds each process to
    the GPU of its local rank, so '--device cuda' in each process means its own GPU."""
    global _group
    if _group is None and launched_processes() > 1:
        _group = DataParallel(cpu=device == "cpu" or not torch.cuda.is_available())
    return _group


def current() -> DataParallel | None:
    """The group `start` joined, or None: a one-process run."""
    return _group


def check_job(method: Any, device_map: str | None) -> None:
    """What data-parallel runs cannot do, as one sentence each (before any model loads)."""
    if not getattr(method, "trains_weights", False):
        raise UserError(f"Method '{method.name}' trains no weights, so it does not run data-parallel; "
                        "run it as one process (python -m unlearning unlearn …).")
    if device_map:
        raise UserError("--device-map shards one model within one process; under accelerate launch each process "
                        "holds a whole copy, so leave --device-map out.")


# ------------------------------------------------------------------ pure parts (tested alone)


def unit_count(term: Term, batch: dict[str, torch.Tensor]) -> int:
    """How many of what `term` averages over its split's `batch` holds (losses.Term.unit)."""
    if term.unit == "positions":
        return int(batch["attention_mask"].bool().sum())
    if term.unit == "rows":  # unshifted: RMU reads hidden state t where label t is set
        return int(((batch["labels"] != IGNORE).sum(-1) > 0).sum())
    labelled = batch["labels"][:, 1:] != IGNORE  # (B, T-1): position t predicts token t+1
    if term.unit == "answers":
        return int((labelled.sum(-1) > 0).sum())
    return int(labelled.sum())


def shard(batch: Batch, rank: int, world: int) -> Batch:
    """Process `rank`'s rows of each split of a global batch: contiguous, as even as can be
    (the first `B mod world` processes take one more; a process may get none)."""
    out = {}
    for split, tensors in batch.items():
        rows = torch.tensor_split(torch.arange(tensors["input_ids"].shape[0]), world)[rank]
        out[split] = {k: v[rows] for k, v in tensors.items()}
    return out


def is_empty(batch: Batch) -> bool:
    return all(t["input_ids"].shape[0] == 0 for t in batch.values())


def weigh(terms: tuple[Term, ...], values: dict[str, torch.Tensor], counts: list[int],
          totals: list[float]) -> dict[str, torch.Tensor]:
    """This process's part of each term of the global loss: its mean × its units / all
    processes' units (0 where the global batch has none), and their weighted sum as "total".
    Summed over the processes, each is the mean over the global batch."""
    weighed = {t.name: values[t.name] * (c / n if n else 0.0) for t, c, n in zip(terms, counts, totals)}
    parts = [t.weight * weighed[t.name] for t in terms]
    return weighed | {"total": sum(parts[1:], start=parts[0])}


# ---------------------------------------------------------------------------- the group


class DataParallel:
    """This process's place in the launched group, and the collectives training needs."""

    def __init__(self, cpu: bool):
        from accelerate import PartialState  # type: ignore[import-untyped]

        self.state = PartialState(cpu=cpu)
        self.rank, self.world = self.state.process_index, self.state.num_processes
        atexit.register(self.close)

    pool: ThreadPoolExecutor | None = None  # each process's share of a step is one pass per split

    def close(self) -> None:
        """Leave the group before the interpreter exits: a gloo group left to the C++ destructors at
        exit can abort a process after its work is done (benchmarks/RESULTS.md)."""
        self.state.destroy_process_group()

    @property
    def main(self) -> bool:
        return bool(self.state.is_main_process)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over the processes (a new tensor on every process)."""
        from accelerate.utils import reduce  # type: ignore[import-untyped]

        return reduce(tensor, reduction="sum")

    def broadcast(self, obj: Any) -> Any:
        """The main process's `obj` on every process (picklable objects)."""
        from accelerate.utils import broadcast_object_list  # type: ignore[import-untyped]

        return broadcast_object_list([obj if self.main else None])[0]

    def shard(self, batch: Batch) -> Batch:
        return shard(batch, self.rank, self.world)

    def own_batches(self, batches: Iterable[Batch]) -> Iterable[Batch]:
        """Whole batches for a pass that sums over them (FILA's Fisher): every world-th one."""
        return islice(batches, self.rank, None, self.world)

    def own(self, batches: Iterable[Batch], n: int) -> tuple[Iterable[Batch], int]:
        return self.own_batches(batches), len(range(self.rank, n, self.world))

    def gradients(self, model, terms: tuple[Term, ...], batch: Batch, device, reference: dict[str, dict[str, Any]],
                  params: list[torch.Tensor]) -> tuple[Values, list[torch.Tensor]]:
        """This process's share of each term, its gradient, then both summed over the processes."""
        if is_empty(batch):
            grads, values = self.nothing(terms, params)
        else:
            values = self.weigh(terms, step_values(model, terms, batch, device, reference), batch)
            # into the adapter only, never into the base's .grad; a layer the forward skips gets 0
            grads = list(torch.autograd.grad(values["total"], params, allow_unused=True, materialize_grads=True))
        grads, values = self.reduce_step(grads, values)
        return values, grads

    def fisher(self, stats: FisherStats) -> FisherStats:
        return self.reduce_fisher(stats)

    def decide(self, measure: Callable[[], tuple[dict[str, float], bool]]) -> tuple[dict[str, float], bool]:
        """The main process's measurement and decision, so that all stop at the same step."""
        return self.broadcast(measure() if self.main else None)

    def weigh(self, terms: tuple[Term, ...], values: dict[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """`weigh` with every process's units summed (one all-reduce)."""
        counts = [unit_count(t, batch[t.split]) for t in terms]
        totals = self.sum(torch.tensor(counts, dtype=torch.float64, device=self.state.device)).tolist()
        return weigh(terms, values, counts, totals)

    def nothing(self, terms: tuple[Term, ...], params: list[torch.Tensor]) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """A process without rows this step: zero gradients and values, still counted in the sums."""
        self.sum(torch.zeros(len(terms), dtype=torch.float64, device=self.state.device))  # the units' all-reduce
        zero = torch.zeros((), device=params[0].device)
        return [torch.zeros_like(p) for p in params], {**{t.name: zero for t in terms}, "total": zero}

    def reduce_step(self, grads: list[torch.Tensor], values: dict[str, torch.Tensor]
                    ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """Gradients and loss values summed over the processes, in one all-reduce."""
        device = grads[0].device
        flat = torch.cat([g.reshape(-1).float().to(device) for g in grads]
                         + [v.detach().reshape(1).float().to(device) for v in values.values()])
        flat = self.sum(flat)
        out, at = [], 0
        for g in grads:
            out.append(flat[at : at + g.numel()].view_as(g).to(g.dtype))
            at += g.numel()
        return out, {k: flat[at + i] for i, k in enumerate(values)}

    def reduce_fisher(self, stats: FisherStats) -> FisherStats:
        """Every process's Fisher sums and token counts added up (one layer at a time)."""
        counts = self.sum(torch.tensor([stats.n_forget, stats.n_retain], dtype=torch.float64, device=self.state.device))
        return FisherStats({n: self.sum(f) for n, f in stats.forget.items()},
                           {n: self.sum(f) for n, f in stats.retain.items()},
                           int(counts[0]), int(counts[1]))


def worker_job(group: DataParallel, method: Any, cfg: Any, loaded: Any, splits: dict[str, Any]):
    """Work function of a process other than the main one: its share of the training, nothing else
    (no events, evaluation, report or artifact; the holdout criterion's measurements come from the main one)."""

    def work(ctx: RunContext) -> None:
        method.run(ctx.quiet(), loaded, splits, cfg, None, group)

    return work

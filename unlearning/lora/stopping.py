"""When a LoRA run may stop (METHODS.md §FILA Stopping): the forget set is known no better than
the holdout set, text the model never saw. trainer.train measures it every `check_every` steps."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

import torch

from ..batches import Encoded, encode_dataset
from ..data import Dataset
from ..evaluation.metrics import evaluate_split, sequence_logprobs
from ..models import Loaded
from .adapters import adapters_off


def knowledge(model, tokenizer, ds: Dataset, items: list[Encoded],
              check_cancel: Callable[[], None] | None = None, pool: Executor | None = None) -> dict[str, float]:
    """How well `model` knows `ds`: mem_acc over its labelled tokens and, for passages, EL_n.
    With `pool`, QA items are scored in two halves side by side (the second on its thread)."""
    with torch.no_grad():
        if ds.kind == "passage":  # EL_n needs generations; evaluate_split has them
            metrics, _ = evaluate_split(model, tokenizer, ds, "forget", check_cancel=check_cancel)
            return {k: metrics[k] for k in ("mem_acc", "extraction_n") if k in metrics}
        if pool is None or len(items) < 2:
            scores = sequence_logprobs(model, tokenizer, items, check_cancel=check_cancel)
        else:
            half = len(items) // 2
            later = pool.submit(_scores, model, tokenizer, items[half:], check_cancel)
            scores = sequence_logprobs(model, tokenizer, items[:half], check_cancel=check_cancel) + later.result()
    correct = [ok for s in scores for ok in s.correct]
    return {"mem_acc": sum(correct) / max(len(correct), 1)}


def _scores(model, tokenizer, items: list[Encoded], check_cancel) -> list:
    with torch.no_grad():  # grad mode is per thread
        return sequence_logprobs(model, tokenizer, items, check_cancel=check_cancel)


class HoldoutCriterion:
    """METHODS.md §FILA Stopping: the forget set's mem_acc (and, for passages, EL_n) has fallen
    to the value the original model shows on the holdout set — text it never saw. The target
    is measured once, on the original model, so it does not move while unlearning."""

    def __init__(self, tokenizer, forget: Dataset, forget_items: list[Encoded], target: dict[str, float]):
        self.tokenizer, self.forget, self.items, self.target = tokenizer, forget, forget_items, target

    @classmethod
    def build(cls, loaded: Loaded, splits: dict[str, Dataset], forget_items: list[Encoded],
              before: dict[str, float] | None) -> HoldoutCriterion | None:
        holdout = splits.get("holdout")
        if holdout is None or not len(holdout):
            return None
        keys = ("mem_acc", "extraction_n") if splits["forget"].kind == "passage" else ("mem_acc",)
        before = before or {}
        if all(f"holdout.{k}" in before for k in keys):  # the pipeline measured it already
            target = {k: before[f"holdout.{k}"] for k in keys}
        else:
            with adapters_off(loaded.model) as model:
                measured = knowledge(model, loaded.tokenizer, holdout, encode_dataset(loaded.tokenizer, holdout))
            target = {k: measured[k] for k in keys if k in measured}  # a QA holdout has no EL_n
        return cls(loaded.tokenizer, splits["forget"], forget_items, target)

    def measure(self, model, check_cancel: Callable[[], None] | None = None, pool: Executor | None = None
                ) -> dict[str, float]:
        return knowledge(model, self.tokenizer, self.forget, self.items, check_cancel, pool)

    def reached(self, measured: dict[str, float]) -> bool:
        return all(measured[k] <= v for k, v in self.target.items())

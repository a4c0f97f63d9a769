"""Unlearning losses as pure functions of logits and labels (METHODS.md §IHL).

Every function takes causal-LM `logits` (B, T, V) and `labels` (B, T) with -100 on masked
positions; position t predicts label t+1, as in the model's own loss. Each is a token mean
over all labelled tokens of the micro-batch (not a mean of per-sequence means). A batch with
no labelled token gives 0 (still attached to the graph, so backward works).

A method's objective is a tuple of `Term`s: named values, each weighted into the total. The
trainer evaluates them and reports every term by name, plus `total`.

    terms = (Term("forget_ihl", "forget", ihl), Term("retain_nll", "retain", nll))
    values = evaluate_terms(terms, {"forget": (logits_f, labels_f), "retain": (...)})
    values["total"].backward()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .batches import IGNORE

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _labelled(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (N, V) float32 logit rows that predict a labelled token, and those N targets."""
    target = labels[:, 1:]  # (B, T-1): position t predicts token t+1
    mask = target != IGNORE  # (B, T-1)
    return logits[:, :-1][mask].float(), target[mask]  # (N, V), (N,)


def _empty(logits: torch.Tensor) -> torch.Tensor:
    return logits.sum() * 0.0  # a zero that keeps the graph, for a batch without labels


def nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of the labelled tokens."""
    rows, y = _labelled(logits, labels)  # (N, V), (N,)
    return F.cross_entropy(rows, y) if len(y) else _empty(logits)


def ihl(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Inverted hinge loss: mean over labelled tokens of 1 + p_y − max_{v≠y} p_v, in [0, 2].

    Lowering it lowers the target's probability by raising the runner-up's; the max(0, ·) of
    a hinge never binds because p_y − max p_v ≥ −1, so it is left out."""
    rows, y = _labelled(logits, labels)  # (N, V), (N,)
    if not len(y):
        return _empty(logits)
    p = rows.softmax(-1)  # (N, V)
    p_y = p.gather(1, y[:, None]).squeeze(1)  # (N,)
    p_other = p.scatter(1, y[:, None], float("-inf")).amax(-1)  # (N,): best token that is not y
    return (1 + p_y - p_other).mean()


def ga(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Gradient ascent: minus the NLL, so minimising it pushes the labelled tokens away."""
    return -nll(logits, labels)


def gd(forget_logits: torch.Tensor, forget_labels: torch.Tensor,
       retain_logits: torch.Tensor, retain_labels: torch.Tensor) -> torch.Tensor:
    """Gradient difference: ascent on the forget batch plus descent on the retain batch."""
    return ga(forget_logits, forget_labels) + nll(retain_logits, retain_labels)


def ihl_objective(forget_logits: torch.Tensor, forget_labels: torch.Tensor, retain_logits: torch.Tensor,
                  retain_labels: torch.Tensor, lambda_f: float = 1.0, lambda_r: float = 1.0) -> torch.Tensor:
    """METHODS.md's L = λ_f · IHL(forget) + λ_r · NLL(retain)."""
    return lambda_f * ihl(forget_logits, forget_labels) + lambda_r * nll(retain_logits, retain_labels)


@dataclass(frozen=True)
class Term:
    """One named part of an objective: `fn` on the `split` batch, times `weight` in the total."""

    name: str  # how it is reported: "forget_ihl", "retain_nll", ...
    split: str  # "forget" or "retain"
    fn: LossFn
    weight: float = 1.0


def evaluate_terms(terms: tuple[Term, ...], batches: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """{term name: value} plus "total" = Σ weight · value; `batches` maps split → (logits, labels)."""
    values = {t.name: t.fn(*batches[t.split]) for t in terms}
    weighted = [t.weight * values[t.name] for t in terms]
    values["total"] = sum(weighted[1:], start=weighted[0])  # started from a tensor, so the sum is one
    return values


def splits_of(terms: tuple[Term, ...]) -> tuple[str, ...]:
    """The batches an objective needs, in a fixed order (GA never runs the retain batch)."""
    return tuple(s for s in ("forget", "retain") if any(t.split == s for t in terms))

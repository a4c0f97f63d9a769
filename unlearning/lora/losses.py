"""Unlearning losses as pure functions of logits and labels (METHODS.md §IHL).

Every function takes causal-LM `logits` (B, T, V) and `labels` (B, T) with -100 on masked
positions; position t predicts label t+1, as in the model's own loss. Each is a token mean
over all labelled tokens of the micro-batch (not a mean of per-sequence means), except NPO
and SimNPO, which their papers define as a mean over sequences of a score of the whole
answer, and RMU, whose activation distance is a mean of per-sequence means (open-unlearning's).
Those three drop a row with no labelled token (never 0/0). A batch with no labelled token gives 0
(still attached to the graph, so backward works). RMU's losses read hidden states instead of
logits (see `activation_distance`).

A method's objective is a tuple of `Term`s: named values, each weighted into the total. A
term's `reads` name what its function takes from its split's forward pass (by default the
logits and labels); the trainer runs the passes, evaluates the terms and reports every term by
name, plus `total`.

    terms = (Term("forget_ihl", "forget", ihl), Term("retain_nll", "retain", nll))
    values = evaluate_terms(terms, {"forget": {"logits": logits_f, "labels": labels_f}, "retain": {...}})
    values["total"].backward()
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..batches import IGNORE

LossFn = Callable[..., torch.Tensor]  # takes its Term's `reads`, in order


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


# ------------------------------------------------- NPO and SimNPO (METHODS.md §IHL, baselines)


def answer_logprob(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """lp(y|x), the summed log-probability of each row's labelled tokens, and |y|, their count: (B,), (B,)."""
    target = labels[:, 1:]  # (B, T-1): position t predicts token t+1
    mask = target != IGNORE  # (B, T-1)
    logp = logits[:, :-1].float().log_softmax(-1)  # (B, T-1, V)
    token = logp.gather(-1, target.clamp(min=0)[..., None]).squeeze(-1)  # (B, T-1); masked ones read token 0
    return (token * mask).sum(-1), mask.sum(-1)


def npo(logits: torch.Tensor, labels: torch.Tensor, ref_logits: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """Negative preference optimisation (Zhang et al., arXiv 2404.05868):
    (2/β) · mean over answers of log(1 + exp(β·(lp_θ − lp_ref))), lp_ref from `ref_logits`, the
    original model's (no gradient). It is (2/β)·log 2 while θ = ref and falls towards 0, ever
    more slowly, as the answers become less likely than the original found them: gradient
    ascent with a brake (β → 0 is GA on lp, minus a constant)."""
    lp, n = answer_logprob(logits, labels)  # (B,), (B,)
    lp_ref, _ = answer_logprob(ref_logits.detach(), labels)  # (B,)
    keep = n > 0  # rows with an answer
    if not keep.any():
        return _empty(logits)
    return (2 / beta) * F.softplus(beta * (lp - lp_ref))[keep].mean()  # softplus(x) = log(1 + e^x), stable


def simnpo(logits: torch.Tensor, labels: torch.Tensor, beta: float = 4.5, delta: float = 0.0) -> torch.Tensor:
    """SimNPO (Fan et al., arXiv 2410.07163): −(2/β) · mean over answers of
    logsigmoid(β·(ℓ̄ − δ)), ℓ̄ = −lp_θ/|y| the answer's mean NLL per token. Reference-free and
    length-normalised, so long answers weigh no more than short ones. The margin δ sits inside β
    as open-unlearning writes it (its `beta * (nll/|y| − delta)`); the paper's margin γ outside
    β is γ = β·δ, and δ > 0 pushes harder in both. (METHODS.md prints the margin inside β with
    the other sign; at the default δ = 0 all agree.) The weight γ of the term is its weight."""
    lp, n = answer_logprob(logits, labels)  # (B,), (B,)
    keep = n > 0
    if not keep.any():
        return _empty(logits)
    return -(2 / beta) * F.logsigmoid(beta * (-lp[keep] / n[keep] - delta)).mean()


# ------------------------------------------------------------- RMU (METHODS.md §IHL, baselines)


def activation_distance(hidden: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """open-unlearning's RMU distance: the squared error averaged over the hidden size, then over
    each row's positions with mask 1, then over the rows that have any (a mean of per-sequence
    means; a row without one is dropped, never 0/0). hidden (B, T, H); target (H,) or (B, T, H);
    mask (B, T), the labelled positions (`labels != -100`: a QA example's answer and EOS, every
    token of a passage chunk)."""
    d = (hidden.float() - target.float()).pow(2).mean(-1)  # (B, T)
    m = mask.to(d.dtype)  # (B, T)
    n = m.sum(-1)  # (B,): positions per row
    keep = n > 0
    if not keep.any():
        return _empty(hidden)
    return ((d * m).sum(-1)[keep] / n[keep]).mean()


@functools.cache
def random_direction(dim: int, seed: int) -> torch.Tensor:
    """RMU's fixed unit vector u (dim,): uniform in [0, 1) then normalised, as WMDP's code draws
    it, from a generator seeded with `seed` (never torch's global one)."""
    u = torch.rand(dim, generator=torch.Generator().manual_seed(seed))
    return u / u.norm()


def rmu_forget(hidden_states: tuple[torch.Tensor, ...], labels: torch.Tensor, layer: int, steering: float,
               seed: int) -> torch.Tensor:
    """RMU's forget term (Li et al., arXiv 2403.03218): the mean squared distance of h_ℓ to c·u over
    the forget batch's labelled positions (`activation_distance`), h_ℓ = hidden_states[ℓ], the
    output of decoder layer ℓ (1-based; index 0 holds the embeddings; for the last layer
    transformers gives it after the final norm). The hidden state at position t is read where
    label t is set, as open-unlearning does (not shifted like the logits)."""
    h = hidden_states[layer]  # (B, T, H)
    return activation_distance(h, steering * random_direction(h.shape[-1], seed).to(h.device), labels != IGNORE)


def rmu_retain(hidden_states: tuple[torch.Tensor, ...], ref_hidden_states: tuple[torch.Tensor, ...],
               labels: torch.Tensor, layer: int) -> torch.Tensor:
    """RMU's retain term: the mean squared distance of h_ℓ to the original's h_ℓ over the retain
    batch's labelled positions; 0 while the adapters are 0."""
    return activation_distance(hidden_states[layer], ref_hidden_states[layer].detach(), labels != IGNORE)


# ---------------------------------------------------------------------- objectives

REFERENCE = "ref_"  # a read with this prefix comes from the original model (every adapter off, no grad)


@dataclass(frozen=True)
class Term:
    """One named part of an objective: `fn` on the `split` batch, times `weight` in the total.

    `fn` takes the `reads` of that batch's forward pass, in order: "logits" (B, T, V), "labels"
    (B, T), "attention_mask" (B, T), "hidden_states" (L + 1 of (B, T, H): the embeddings, then
    each decoder layer's output); "ref_" before a name gives the original model's."""

    name: str  # how it is reported: "forget_ihl", "retain_nll", ...
    split: str  # "forget" or "retain"
    fn: LossFn
    weight: float = 1.0
    reads: tuple[str, ...] = ("logits", "labels")
    # What `fn` averages over, so data-parallel training (distributed.py) can weigh each
    # process's share: "tokens" (labelled ones), "answers" (rows with a labelled token) or
    # "positions" (attention-mask 1s) or "rows" (rows with a label at any position, RMU's
    # sequences: its hidden state t is read where label t is set, unshifted).
    unit: str = "tokens"


def evaluate_terms(terms: tuple[Term, ...], batches: Mapping[str, Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """{term name: value} plus "total" = Σ weight · value; `batches` maps split → {read: value}."""
    values = {t.name: t.fn(*(batches[t.split][r] for r in t.reads)) for t in terms}
    weighted = [t.weight * values[t.name] for t in terms]
    values["total"] = sum(weighted[1:], start=weighted[0])  # started from a tensor, so the sum is one
    return values


def splits_of(terms: tuple[Term, ...]) -> tuple[str, ...]:
    """The batches an objective needs, in a fixed order (GA never runs the retain batch)."""
    return tuple(s for s in ("forget", "retain") if any(t.split == s for t in terms))


def reads_of(terms: tuple[Term, ...], split: str) -> set[str]:
    """Everything the terms on `split` read from its forward passes."""
    return {r for t in terms if t.split == split for r in t.reads}

"""FILA: Fisher-weighted low-rank initialisation of LoRA adapters (METHODS.md §FILA).

Cha et al., ICLR 2025, arXiv 2408.06621. The adapters start as the weighted rank-r part of
each weight that matters most to the forget set relative to the retain set, so training
moves exactly those directions first.

    stats = accumulate_fisher(model, weights, paired_batches(...))    # step 1, full model
    f_rel, eps_share = relative_importance(stats)                     # step 2
    A0, B0 = fila_init(W, row_weights(f_rel[name]), rank, alpha, seed)  # steps 3–5
    init = fila_init_layers(weights, f_rel, rank, alpha, seed)       # the same, every layer

Everything is computed in float32 whatever the model's dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from ..batches import IGNORE
from ..errors import UserError
from .losses import nll

EPS = 1e-5  # ε of F_rel = (F_f/N_f) / (ε + F_r/N_r)
ROW_EPS = 1e-5  # keeps 1/(w + ·) finite for rows the forget set never touches
EXACT_SVD_MAX = 2048  # matrices with both sides at most this get an exact SVD
OVERSAMPLE, POWER_ITERS = 10, 2  # randomized SVD (Halko et al. 2011)


@dataclass
class FisherStats:
    """Token-weighted sums of squared batch gradients: Σ_b N_b · (∂L̄_b/∂W)², float32 (out, in)."""

    forget: dict[str, torch.Tensor]
    retain: dict[str, torch.Tensor]
    n_forget: int = 0  # labelled tokens seen
    n_retain: int = 0


@contextmanager
def _requiring_grad(params: list[torch.Tensor]) -> Iterator[None]:
    """Let autograd reach `params` for a moment, then put their flags back as they were
    (the base model may be shared: its flags are not ours to keep)."""
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _batch_gradient(model, batch: dict[str, torch.Tensor], params: list[torch.Tensor]
                    ) -> tuple[int, tuple[torch.Tensor, ...]]:
    """(N_b, the gradient of the batch's token-mean NLL with respect to `params`); (0, ()) for a
    batch without labelled tokens."""
    b = {k: v.to(params[0].device) for k, v in batch.items()}
    n_b = int((b["labels"][:, 1:] != IGNORE).sum())
    if n_b == 0:
        return 0, ()
    with torch.enable_grad():  # grad mode is per thread: also on a pool's
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False).logits
        return n_b, torch.autograd.grad(nll(logits, b["labels"]), params)


def accumulate_fisher(model, weights: dict[str, torch.Tensor], batches: Iterable[dict[str, dict[str, torch.Tensor]]],
                      each_batch: Callable[[int], None] | None = None, guard=None,
                      pool: Executor | None = None) -> FisherStats:
    """One pass over paired {"forget", "retain"} batches: for each, the gradient g of the batch's
    token-mean NLL with respect to every weight, added as N_b · g² (N_b = labelled tokens).

    `each_batch(i)` runs before batch i (progress, cancellation); `guard` is a context manager
    factory held around each batch (the shared base's lock); with `pool`, a batch's retain
    half runs on the pool's thread beside its forget half (the sums are the same, added in
    the same order). Gradients go to autograd.grad, never into `.grad`, so the model is left
    exactly as it was."""
    names, params = list(weights), list(weights.values())
    stats = FisherStats({n: torch.zeros_like(p, dtype=torch.float32) for n, p in weights.items()},
                        {n: torch.zeros_like(p, dtype=torch.float32) for n, p in weights.items()})
    for i, batch in enumerate(batches):
        if each_batch is not None:
            each_batch(i)
        with (guard() if guard is not None else nullcontext()), _requiring_grad(params):
            retain = pool.submit(_batch_gradient, model, batch["retain"], params) if pool is not None else None
            parts = [_batch_gradient(model, batch["forget"], params),
                     retain.result() if retain is not None else _batch_gradient(model, batch["retain"], params)]
        for (n_b, grads), acc in zip(parts, (stats.forget, stats.retain)):
            for name, g in zip(names, grads):
                acc[name].add_(g.float().square(), alpha=n_b)
        stats.n_forget += parts[0][0]
        stats.n_retain += parts[1][0]
    return stats


def relative_importance(stats: FisherStats, eps: float = EPS) -> tuple[dict[str, torch.Tensor], float]:
    """F_rel = (F_f/N_f) / (ε + F_r/N_r) per weight, and the share of all entries where ε
    exceeds F_r/N_r (near 1, the ratio measures forget importance alone)."""
    if stats.n_forget == 0 or stats.n_retain == 0:
        raise UserError("FILA needs labelled tokens in both the forget and the retain set; one of them has none.")
    out, dominated, total = {}, 0, 0
    for name, f_f in stats.forget.items():
        f_r = stats.retain[name] / stats.n_retain
        out[name] = (f_f / stats.n_forget) / (eps + f_r)
        dominated += int((f_r < eps).sum())
        total += f_r.numel()
    return out, dominated / total


def row_weights(f_rel: torch.Tensor) -> torch.Tensor:
    """w = sqrt(Σ_in F_rel): one importance weight per output row. (out, in) → (out,)."""
    return f_rel.sum(dim=1).sqrt()


class ExactSVD:
    """Full thin SVD, truncated to rank r."""

    def __call__(self, m: torch.Tensor, r: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        u, s, vh = torch.linalg.svd(m, full_matrices=False)
        return u[:, :r], s[:r], vh[:r].T


class RandomizedSVD:
    """Seeded randomized range finder with oversampling and power iterations (Halko et al.)."""

    def __init__(self, oversample: int = OVERSAMPLE, power_iters: int = POWER_ITERS):
        self.oversample, self.power_iters = oversample, power_iters

    def __call__(self, m: torch.Tensor, r: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        k = min(r + self.oversample, min(m.shape))
        omega = torch.randn(m.shape[1], k, generator=generator, device=m.device)  # (in, k)
        q = torch.linalg.qr(m @ omega).Q  # (out, k): a basis of m's dominant range
        for _ in range(self.power_iters):
            q = torch.linalg.qr(m @ torch.linalg.qr(m.T @ q).Q).Q
        u, s, vh = torch.linalg.svd(q.T @ m, full_matrices=False)  # (k, k), (k,), (k, in)
        return (q @ u)[:, :r], s[:r], vh[:r].T


def svd_for(shape: tuple[int, ...]) -> ExactSVD | RandomizedSVD:
    """Exact for matrices small enough to decompose whole, randomized for large ones."""
    return ExactSVD() if max(shape) <= EXACT_SVD_MAX else RandomizedSVD()


def weighted_low_rank(w_mat: torch.Tensor, w: torch.Tensor, r: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Rank-r SVD of diag(w)·W = U S Vᵀ: U (out, r), S (r,), V (in, r)."""
    m = w[:, None] * w_mat.float()  # (out, in)
    generator = torch.Generator(device=m.device).manual_seed(seed)
    return svd_for(tuple(m.shape))(m, r, generator)


def fila_init(w_mat: torch.Tensor, w: torch.Tensor, r: int, alpha: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(A0 (r, in), B0 (out, r)) with LoRA scale s = α/r, so that s·B0·A0 is W's Fisher-weighted
    rank-r part: A0 = (V·diag(sqrt(S/s)))ᵀ, B0 = diag(1/(w + 1e-5))·U·diag(sqrt(S/s))."""
    if r > min(w_mat.shape):
        raise UserError(f"--rank {r} is larger than a {w_mat.shape[0]}×{w_mat.shape[1]} layer allows; pick a smaller rank.")
    s = alpha / r
    u, sing, v = weighted_low_rank(w_mat, w.float(), r, seed)
    root = (sing / s).sqrt()  # (r,)
    a0 = (v * root).T.contiguous()  # (r, in)
    b0 = (u * root) / (w.float() + ROW_EPS)[:, None]  # (out, r)
    return a0, b0


def fila_init_layers(weights: dict[str, torch.Tensor], f_rel: dict[str, torch.Tensor], r: int, alpha: float,
                     seed: int = 0, each_layer: Callable[[int], None] | None = None
                     ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """fila_init of every layer, by name. `each_layer(i)` runs before layer i (progress,
    cancellation): on a large model each SVD takes a while, and there are hundreds."""
    init = {}
    for i, (name, w_mat) in enumerate(weights.items()):
        if each_layer is not None:
            each_layer(i)
        init[name] = fila_init(w_mat, row_weights(f_rel[name]), r, alpha, seed)
    return init


def eps_share_message(share: float) -> str:
    """The log line METHODS.md asks for, with a plain warning when ε does most of the work."""
    line = f"FILA: ε exceeds F_r/N_r in {share:.1%} of weight entries"
    if share > 0.5:
        line += " — most of them, so the importance mostly ignores the retain set (small retain set or tiny gradients)"
    return line + "."


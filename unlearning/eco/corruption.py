"""ECO's embedding corruption functions (Liu et al., NeurIPS 2024, arXiv 2406.07933, §3.2).

A flagged prompt is not refused; its input embeddings are corrupted so the model can no
longer read *what* was asked, while the request still looks like a request: the model
answers fluently but without the forgotten fact. Each function below is one strategy
object with the same `apply`; the guard never branches on the name.

`e` is one token's embedding of width d. The strength is σ (noise scale) for the three
noise functions and k (how many dimensions) for the two deterministic ones; `n_dims` is the
other knob of the noise functions (n or k, fixed before the strength search).

    corruption = make_corruption("rand_noise_first_n", n_dims=1)
    corrupted = corruption.apply(e, strength=2.0, generator=torch.Generator().manual_seed(0))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from ..errors import UserError


class Corruption(ABC):
    """One way of corrupting a prompt's token embeddings."""

    name: str = ""
    integer_strength: bool = False  # strength is a dimension count k, not a noise scale σ

    def __init__(self, n_dims: int = 1):
        self.n_dims = n_dims

    def params(self) -> dict:
        """What, besides the strength, saves with the guard."""
        return {"n_dims": self.n_dims}

    def strength_range(self, width: int) -> tuple[float, float]:
        """The (lowest, highest) strength the search may try for embeddings of `width` dims."""
        return (1.0, float(width)) if self.integer_strength else (1e-3, 1e4)

    @abstractmethod
    def apply(self, e: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
        """e: (P, d) float32 embeddings of the positions to corrupt → corrupted (P, d), a new tensor."""

    def _count(self, strength: float, width: int) -> int:
        return max(0, min(round(strength), width))


def _noise(shape: tuple[int, ...], sigma: float, generator: torch.Generator) -> torch.Tensor:
    # Drawn on the CPU in float32 from the request's generator, so a seed gives the same noise
    # on every device and dtype; the caller moves the result.
    return sigma * torch.randn(shape, generator=generator, dtype=torch.float32)


def _top_k_mask(e: torch.Tensor, k: int) -> torch.Tensor:
    """(P, d) bool: each position's k largest-|e| dimensions."""
    mask = torch.zeros_like(e, dtype=torch.bool)
    if k > 0:
        mask.scatter_(1, e.abs().topk(k, dim=1).indices, True)  # indices: (P, k)
    return mask


class RandNoiseFirstN(Corruption):
    """Add N(0, σ²) to the first n dims: ECO's default (n = 1). One huge coordinate makes the
    first layer's RMSNorm shrink every other coordinate, so the token's identity fades."""

    name = "rand_noise_first_n"

    def apply(self, e, strength, generator):
        out = e.clone()
        n = min(self.n_dims, e.shape[1])
        out[:, :n] += _noise((e.shape[0], n), strength, generator)  # (P, n)
        return out


class RandNoiseRandN(Corruption):
    """Add N(0, σ²) to n dims chosen at random once per request (the same dims at every
    position of the prompt, as one draw of the corruption)."""

    name = "rand_noise_rand_n"

    def apply(self, e, strength, generator):
        out = e.clone()
        n = min(self.n_dims, e.shape[1])
        dims = torch.randperm(e.shape[1], generator=generator)[:n]  # (n,)
        out[:, dims] += _noise((e.shape[0], n), strength, generator)  # (P, n)
        return out


class RandNoiseTopK(Corruption):
    """Add N(0, σ²) to each position's k largest-|e| dims (k = n_dims): the coordinates that
    carry the most of the token's signal."""

    name = "rand_noise_top_k"

    def apply(self, e, strength, generator):
        mask = _top_k_mask(e, min(self.n_dims, e.shape[1]))  # (P, d)
        return e + _noise(tuple(e.shape), strength, generator) * mask


class _CountStrength(Corruption):
    """Corruptions whose strength is a count of dims k: nothing else to save."""

    integer_strength = True

    def params(self) -> dict:
        return {}


class ZeroOutTopK(_CountStrength):
    """Zero each position's k largest-|e| dims; the strength is k itself."""

    name = "zero_out_top_k"

    def apply(self, e, strength, generator):
        return e.masked_fill(_top_k_mask(e, self._count(strength, e.shape[1])), 0.0)


class FlipSignTopK(_CountStrength):
    """Negate each position's k largest-|e| dims; the strength is k itself."""

    name = "flip_sign_top_k"

    def apply(self, e, strength, generator):
        mask = _top_k_mask(e, self._count(strength, e.shape[1]))
        return torch.where(mask, -e, e)


CORRUPTIONS: dict[str, type[Corruption]] = {
    cls.name: cls for cls in (RandNoiseFirstN, RandNoiseRandN, RandNoiseTopK, ZeroOutTopK, FlipSignTopK)
}


def make_corruption(name: str, n_dims: int = 1) -> Corruption:
    if name not in CORRUPTIONS:
        raise UserError(f"Unknown corruption function '{name}'; known ones: {', '.join(CORRUPTIONS)}.")
    return CORRUPTIONS[name](n_dims)


def corrupt_rows(embeds: torch.Tensor, positions: Sequence[Sequence[int] | None], corruption: Corruption,
                 strength: float, seeds: list[int]) -> torch.Tensor:
    """Corrupt the given positions of each row (increasing, not necessarily contiguous: a
    subject's name); rows with None are left exactly as they are. embeds: (B, T, d) → a new
    (B, T, d) of the same dtype and device.

    Callers leave out the last position of a prompt (ECO corrupts every prompt position
    except the last). Each row draws from its own generator seeded by `seeds[b]`, so a row's
    corruption does not depend on the rest of its batch."""
    out = embeds.clone()
    for b, pos in enumerate(positions):
        if not pos:
            continue
        idx = torch.as_tensor(list(pos), dtype=torch.long, device=embeds.device)  # (P,)
        g = torch.Generator().manual_seed(seeds[b])
        e = embeds[b, idx].detach().float().cpu()  # (P, d)
        out[b, idx] = corruption.apply(e, strength, g).to(embeds.device, embeds.dtype)
    return out

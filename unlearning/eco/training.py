"""Training and calibrating ECO's prompt classifier (Liu et al., NeurIPS 2024, arXiv
2406.07933, §3.1), as METHODS.md §ECO specifies:

- positives: forget prompts; negatives: retain prompts plus the built-in general prompts;
- a logistic head with a class-balanced loss (each class weighs half, however few the
  forget prompts are);
- τ by split-conformal calibration on held-out negatives, so the false-positive rate on
  new benign prompts is at most α (in expectation over the calibration draw);
- recall and FPR measured by k-fold cross-validation, since the forget set is small: each
  fold's head never saw the prompts it is scored on, and its τ comes from the calibration
  negatives, which no head trains on.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .classifier import PromptClassifier
from .features import DEFAULT_ENCODER, Featurizer, SentenceEncoder, get_encoder

CALIBRATION_SHARE = 0.3  # of the negatives, held out for τ
# Everyday questions and instructions (no workshop people): negatives for any forget set.
GENERAL_PROMPTS = Path(__file__).resolve().parents[2] / "assets" / "eco" / "general_prompts.txt"
# Their embeddings by the default encoder, shipped: they are half of what a workshop run
# embeds. Regenerate after editing the prompts: python -m unlearning.eco.training
GENERAL_EMBEDDINGS = GENERAL_PROMPTS.with_name("general_prompts.all-MiniLM-L6-v2.safetensors")


def general_prompts() -> list[str]:
    return [line.strip() for line in GENERAL_PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _digest(prompts: list[str]) -> str:
    return hashlib.sha256("\n".join(prompts).encode("utf-8")).hexdigest()


def preload_general_embeddings(encoder: SentenceEncoder) -> bool:
    """Seed the encoder's cache with the shipped embeddings of the general prompts. False
    (and nothing loaded) unless they are this encoder's, of these very prompts."""
    if encoder.version is None or not GENERAL_EMBEDDINGS.is_file():
        return False
    from safetensors import safe_open

    prompts = general_prompts()
    with safe_open(str(GENERAL_EMBEDDINGS), "pt") as f:
        meta = f.metadata() or {}
        embeddings = f.get_tensor("embeddings")
    if (meta.get("prompts_sha256") != _digest(prompts) or meta.get("encoder_version") != encoder.version
            or tuple(embeddings.shape) != (len(prompts), encoder.dim)):
        return False
    encoder.preload(prompts, embeddings)
    return True


def write_general_embeddings(encoder: SentenceEncoder) -> Path:
    from safetensors.torch import save_file

    prompts = general_prompts()
    meta = {"encoder": encoder.name, "encoder_version": str(encoder.version), "prompts_sha256": _digest(prompts)}
    save_file({"embeddings": encoder.embed(prompts).contiguous()}, str(GENERAL_EMBEDDINGS), metadata=meta)
    return GENERAL_EMBEDDINGS


@dataclass
class HeadSettings:
    # 20 epochs of 128 reach the recall/FPR of 30 of 64 on the workshop kit in half the time.
    epochs: int = 20
    lr: float = 0.02
    weight_decay: float = 1e-4
    batch_size: int = 128
    seed: int = 0


def conformal_threshold(scores: list[float], alpha: float) -> float:
    """τ = the ⌈(n+1)(1−α)⌉-th smallest of the n held-out negative scores; a new negative
    then scores above τ with probability at most α. When n is too small for that rank to
    exist (n < 1/α − 1), no τ can promise α: the largest score is used instead (flag only
    what scores above every calibration negative)."""
    if not scores:
        raise ValueError("conformal_threshold needs at least one score")
    ordered = sorted(scores)
    rank = math.ceil((len(ordered) + 1) * (1 - alpha))
    return ordered[min(rank, len(ordered)) - 1]


def balanced_bce(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean of binary cross-entropy; logits, y, weights: (N,)."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return (bce * weights).sum() / weights.sum()


def new_head(dim: int, seed: int) -> torch.nn.Linear:
    """Linear(dim, 1) initialised as torch initialises it, but from a local generator: the
    weights `torch.manual_seed(seed)` would give, without touching the global RNG."""
    g = torch.Generator().manual_seed(seed)
    head = torch.nn.utils.skip_init(torch.nn.Linear, dim, 1)  # no init draw from the global RNG
    torch.nn.init.kaiming_uniform_(head.weight, a=math.sqrt(5), generator=g)  # torch's default for Linear
    bound = 1 / math.sqrt(dim)
    torch.nn.init.uniform_(head.bias, -bound, bound, generator=g)
    return head


def train_head(x: torch.Tensor, y: torch.Tensor, hs: HeadSettings,
               on_epoch: Callable[[int, float], None] | None = None,
               check_cancel: Callable[[], None] | None = None) -> torch.nn.Linear:
    """A logistic head on features x: (N, D) with labels y: (N,) in {0, 1}; AdamW on
    shuffled mini-batches. `on_epoch(epoch, loss)` gets the class-balanced loss over all N
    after each epoch. Every random draw comes from generators seeded by `hs.seed`, never
    from torch's global one (the server's other sessions share it)."""
    head = new_head(x.shape[1], hs.seed)
    opt = torch.optim.AdamW(head.parameters(), lr=hs.lr, weight_decay=hs.weight_decay)
    n_pos = float(y.sum())
    w = torch.where(y > 0, 0.5 / max(n_pos, 1.0), 0.5 / max(len(y) - n_pos, 1.0))  # (N,) class-balanced
    rng = random.Random(hs.seed)
    order = list(range(len(y)))
    for epoch in range(1, hs.epochs + 1):
        if check_cancel is not None:
            check_cancel()
        rng.shuffle(order)
        for i in range(0, len(order), hs.batch_size):
            idx = order[i : i + hs.batch_size]
            opt.zero_grad()
            balanced_bce(head(x[idx]).squeeze(1), y[idx], w[idx]).backward()
            opt.step()
        if on_epoch is not None:
            with torch.no_grad():
                on_epoch(epoch, float(balanced_bce(head(x).squeeze(1), y, w)))
    return head.eval().requires_grad_(False)


def _probs(head: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.sigmoid(head(x).squeeze(1))  # (N,)


def _folds(n: int, k: int, seed: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[f::k] for f in range(k)]


def cross_validate(xp: torch.Tensor, xn: torch.Tensor, xcal: torch.Tensor, alpha: float, k: int,
                   hs: HeadSettings, check_cancel=None) -> dict:
    """k-fold recall on positives xp and FPR on training negatives xn, each fold's τ from xcal."""
    k = min(k, len(xp), len(xn))
    if k < 2:
        return {"recall": None, "fpr": None, "folds": 0}
    hits = false_pos = 0
    for fp, fn in zip(_folds(len(xp), k, hs.seed), _folds(len(xn), k, hs.seed + 1)):
        keep_p = sorted(set(range(len(xp))) - set(fp))
        keep_n = sorted(set(range(len(xn))) - set(fn))
        x = torch.cat([xp[keep_p], xn[keep_n]])
        y = torch.cat([torch.ones(len(keep_p)), torch.zeros(len(keep_n))])
        head = train_head(x, y, hs, check_cancel=check_cancel)
        tau = conformal_threshold(_probs(head, xcal).tolist(), alpha)
        hits += int((_probs(head, xp[fp]) > tau).sum())
        false_pos += int((_probs(head, xn[fn]) > tau).sum())
    return {"recall": hits / len(xp), "fpr": false_pos / len(xn), "folds": k}


def fit_classifier(featurizer: Featurizer, positives: list[str], negatives: list[str], alpha: float, folds: int,
                   hs: HeadSettings, on_epoch=None, check_cancel=None) -> tuple[PromptClassifier, dict]:
    """Cross-validate, then train the final head on every positive and the training
    negatives, and calibrate its τ. Returns the classifier and its statistics."""
    positives = sorted(set(positives))
    negatives = sorted(set(negatives) - set(positives))  # a forget prompt is never a negative
    texts = positives + negatives
    x = featurizer(texts)  # (N, D): the one encoder pass of training
    xp, xneg = x[: len(positives)], x[len(positives) :]
    order = list(range(len(negatives)))
    random.Random(hs.seed).shuffle(order)
    n_cal = max(1, round(CALIBRATION_SHARE * len(order)))
    cal, train = order[:n_cal], order[n_cal:]
    xcal, xn = xneg[cal], xneg[train]
    cv = cross_validate(xp, xn, xcal, alpha, folds, hs, check_cancel)
    head = train_head(torch.cat([xp, xn]), torch.cat([torch.ones(len(xp)), torch.zeros(len(xn))]), hs,
                      on_epoch=on_epoch, check_cancel=check_cancel)
    cal_scores = _probs(head, xcal).tolist()
    tau = conformal_threshold(cal_scores, alpha)
    clf = PromptClassifier(featurizer, head, tau)
    clf.remember(texts, x)
    stats = {
        "threshold": tau,
        "classifier_recall": cv["recall"],
        "classifier_fpr": cv["fpr"],
        "cv_folds": cv["folds"],
        "train_recall": float((_probs(head, xp) > tau).float().mean()),
        "calibration_fpr": sum(s > tau for s in cal_scores) / len(cal_scores),
        "positives": len(positives),
        "negatives_train": len(train),
        "negatives_calibration": n_cal,
        "alpha": alpha,
    }
    return clf, stats


if __name__ == "__main__":
    print(write_general_embeddings(get_encoder(DEFAULT_ENCODER)))

"""The report's scores as pure functions of numbers and strings (METHODS.md §Metrics): ROUGE-L,
the truth ratio, forget quality, MIA AUC, TOFU's option probability, the harmonic mean, and
extraction likelihood. Each is checked against hand-computed values in tests/test_metrics.py;
metrics.py computes their inputs from a model.
"""

from __future__ import annotations

import math
from functools import cache

from scipy.stats import ks_2samp, rankdata

from .textstats import ngrams

# Our answers are a handful of words, so 2-grams (Jang et al. also report n = 3..5 on
# long passages, where an answer-sized text would have almost no n-grams at all).
EXTRACTION_N = 2
FORGET_LIKE = ("forget", "holdout")  # splits whose truth ratio is scored min(R, 1/R)


@cache
def _rouge_scorer():
    """The one ROUGE-L scorer, built on first use: importing rouge_score (and nltk behind
    it) costs a second or two, which nothing that never scores a text should pay. ROUGE-L
    needs only nltk's Porter stemmer, which is code: no nltk data is read or fetched."""
    from rouge_score.rouge_scorer import RougeScorer  # type: ignore[import-untyped]  # ships no types

    return RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_recall(prediction: str, reference: str) -> float:
    """ROUGE-L recall of `prediction` against `reference`, as TOFU and ECO score it:
    rouge_score's `RougeScorer(['rougeL'], use_stemmer=True)` (lowercased, split on anything
    but [a-z0-9], words over 3 letters Porter-stemmed), LCS / reference words. An empty
    reference scores 0.0. The one entry point: every metric and the ECO search call this."""
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].recall)


def truth_ratio(lp_paraphrased: float, lp_perturbed: list[float]) -> float:
    """TOFU's R = exp(mean_i lp_perturbed_i − lp_paraphrased), lp = per-token mean log-probs.
    R < 1: the model prefers the (paraphrased) truth; R ≈ 1: it cannot tell them apart."""
    if not lp_perturbed:
        raise ValueError("truth_ratio needs at least one perturbed answer")
    return math.exp(sum(lp_perturbed) / len(lp_perturbed) - lp_paraphrased)


def truth_ratio_score(r: float, split: str) -> float:
    """Higher is better on every split: on forget-like data R near 1 (min(R, 1/R)) means the
    fact is gone; elsewhere max(0, 1 − R) rewards preferring the truth."""
    return min(r, 1 / r) if split in FORGET_LIKE else max(0.0, 1 - r)


def forget_quality(r_model: list[float], r_oracle: list[float]) -> float:
    """Two-sided two-sample KS p-value on raw R values (scipy picks the exact method for
    small samples): 1 = the model's R distribution is indistinguishable from the oracle's."""
    return float(ks_2samp(r_model, r_oracle).pvalue)


def mia_auc(member_losses: list[float], nonmember_losses: list[float]) -> float:
    """AUC of 'lower loss ⇒ member': P(loss_non > loss_mem) + ½·P(tie), by Mann–Whitney U
    from average ranks (O(n log n), unlike counting all pairs). Both lists must be non-empty."""
    n, m = len(member_losses), len(nonmember_losses)
    ranks = rankdata(list(member_losses) + list(nonmember_losses))  # ties get average ranks
    u = float(ranks[n:].sum()) - m * (m + 1) / 2  # pairs where the non-member ranks higher
    return u / (n * m)


def option_prob(lp_answer: float, lp_perturbed: list[float]) -> float:
    """TOFU's answer probability among the options: p(answer) / (p(answer) + Σ_i p(perturbed_i)),
    p = exp(lp), lp a per-token mean log-prob; written as 1 / (1 + Σ_i e^(lp_i − lp_answer))
    so no probability underflows."""
    return 1 / (1 + sum(math.exp(lp - lp_answer) for lp in lp_perturbed))


def harmonic_mean(values: list[float]) -> float:
    """0 if any value is ≤ 0 (or there are none): one collapsed metric sinks the utility."""
    if not values or any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1 / v for v in values)


def extraction_likelihood(generated: list[list[int]], suffixes: list[list[int]], n: int = EXTRACTION_N) -> float:
    """EL_n of one example (Jang et al. 2022): mean over prefix cuts t of OVERLAP_n, the share
    of the greedy continuation's n-grams that occur in the true suffix x_≥t. A continuation
    too short to hold an n-gram counts 0; no cuts at all gives 0.0."""
    if not generated:
        return 0.0
    total = 0.0
    for gen, suffix in zip(generated, suffixes, strict=True):
        grams = ngrams(gen, n)
        if grams:
            truth = set(ngrams(suffix, n))
            total += sum(g in truth for g in grams) / len(grams)
    return total / len(generated)

"""open-unlearning's leaderboard scores that the Studio's own metrics have no counterpart for,
as pure functions of numbers (checked against hand-computed values in tests/test_leaderboard_scores.py);
metrics.py computes their inputs from a model's teacher-forced scores.

    extraction_strength([False, True, True, True])   # 0.75: from the second token on, all argmax
    min_k_score([-0.1, -3.0, -0.2, -2.0, -0.3])      # 2.5: mean NLL of the 40% least likely tokens
    privleak(0.7, 0.5)                                # -40.0: MUSE's relative MIA AUC gap, in %

Where the definitions come from: open-unlearning's src/evals/metrics (memorization.py's
extraction_strength, mia/min_k.py, mia/utils.py's mia_auc, privacy.py's privleak) and its MUSE
config (configs/eval/muse_metrics: privleak over mia_min_k with k = 0.4).
"""

from __future__ import annotations

from collections.abc import Sequence

from .scores import mia_auc

MIN_K = 0.4  # open-unlearning's MUSE Min-K% share (configs/eval/muse_metrics/mia_min_k.yaml)
PRIVLEAK_EPS = 1e-10  # open-unlearning's guard against a reference AUC of exactly 1


def extraction_strength(correct: Sequence[bool]) -> float:
    """ES of one answer (Carlini et al.'s, as open-unlearning computes it): 1 − k/|y| for the
    smallest k such that, given the true prefix y<j, the argmax is y_j for every j ≥ k. That is
    the shortest prefix after which the greedy continuation reproduces the rest of the answer
    exactly (greedy decoding from y<k emits y_k, then is again on the true prefix, and so on).
    `correct[j]`: argmax == y_j given the true prefix. As open-unlearning's loop does, a last
    token that is wrong leaves k at |y| − 1 (ES = 1/|y|, not 0); no tokens at all scores 0."""
    n = len(correct)
    if n == 0:
        return 0.0
    k = n
    while k > 0 and correct[k - 1]:  # k: where the run of correct tokens that ends the answer starts
        k -= 1
    k = min(k, n - 1)  # open-unlearning's loop ends at k = n − 1 when no suffix matches
    return 1 - k / n


def min_k_score(token_logprobs: Sequence[float], k: float = MIN_K) -> float:
    """Min-K% Prob (Shi et al. 2310.16789) as open-unlearning scores a sample: the mean NLL of
    its max(1, ⌊k·n⌋) least likely tokens (higher: less likely, i.e. more like a non-member);
    0 for a sample with no tokens."""
    if not token_logprobs:
        return 0.0
    count = max(1, int(len(token_logprobs) * k))
    return -sum(sorted(token_logprobs)[:count]) / count


def mia_auc_min_k(forget: Sequence[float], holdout: Sequence[float]) -> float:
    """open-unlearning's MIA AUC on Min-K% scores: forget labelled 0, holdout 1, so 1 means
    forget text is far more likely than holdout text (remembered) and 0.5 means no difference.
    It is the Studio's mia_auc on these scores (P(holdout score > forget score) + ½·P(tie))."""
    return mia_auc(list(forget), list(holdout))


def privleak(auc_model: float, auc_ref: float) -> float:
    """MUSE's PrivLeak as open-unlearning computes it: the relative gap, in percent, between the
    model's MIA AUC and the retained (oracle) model's, both forget vs holdout. MUSE states
    AUCs as 1 − AUC of the convention above, so with a = 1 − auc:
    (a_model − a_ref) / (a_ref + 1e-10) · 100. 0: leaks like the oracle; negative: the forget
    set still looks remembered (the unlearned model's AUC above the oracle's); positive: it
    looks less familiar than text never seen (over-unlearning)."""
    a_model, a_ref = 1 - auc_model, 1 - auc_ref
    return (a_model - a_ref) / (a_ref + PRIVLEAK_EPS) * 100

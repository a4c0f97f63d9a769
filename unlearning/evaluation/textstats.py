"""Statistics of generated text, the report's fluency figures (docs/methods.md §Metrics):
pooled n-gram entropy (ROME/MEMIT), distinct-2, and the share of answers that are one word
repeated. Pure functions of strings; metrics.py applies them to a split's generations."""

from __future__ import annotations

import math
import re
from collections import Counter

REPEATED_MIN_WORDS, REPEATED_SHARE = 4, 0.5  # an answer "is one word repeated" (see repetition)


def _words(text: str) -> list[str]:
    """Words for the fluency n-grams: lowercase, anything but [a-z0-9] is a separator (the
    split rouge_score makes, without its stemming: fluency counts surface forms)."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def ngrams(seq: list, n: int) -> list[tuple]:
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def _pooled_ngrams(texts: list[str], k: int) -> list[tuple]:
    """Word k-grams of every text (none spanning two texts), pooled: answers are too short
    for a per-text entropy to mean anything."""
    return [g for t in texts for g in ngrams(_words(t), k)]


def _entropy_bits(grams: list[tuple]) -> float:
    counts, total = Counter(grams), len(grams)
    return -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0


def fluency(texts: list[str]) -> float:
    """ROME/MEMIT's n-gram entropy, mean(2/3·H2, 4/3·H3), on the pooled k-gram counts.
    Collapsing into repetition ('the the the') drives it towards 0."""
    return (2 / 3 * _entropy_bits(_pooled_ngrams(texts, 2)) + 4 / 3 * _entropy_bits(_pooled_ngrams(texts, 3))) / 2


def distinct_2(texts: list[str]) -> float:
    """Unique word bigrams / all word bigrams, pooled over texts (0 if there are none)."""
    grams = _pooled_ngrams(texts, 2)
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated(text: str) -> bool:
    """Whether `text` is mostly one word repeated: at least REPEATED_MIN_WORDS words, the
    commonest of them at least REPEATED_SHARE of all ("The The The The", "He He works He")."""
    words = _words(text)
    return len(words) >= REPEATED_MIN_WORDS and max(Counter(words).values()) >= REPEATED_SHARE * len(words)


def repetition(texts: list[str]) -> float:
    """Share of `texts` that are mostly one word repeated (0 if there are none). Per answer, so
    ten collapsed answers among forty fluent ones show as 0.25 where pooled fluency barely moves."""
    return sum(map(repeated, texts)) / len(texts) if texts else 0.0

"""ECO's prompt classifier: p(forget | prompt) from a logistic head on frozen features, and
the threshold τ above which a prompt is flagged (Liu et al., NeurIPS 2024, arXiv 2406.07933,
§3.1). It sees the raw prompt text, never the chat template.

A prompt's score is the maximum over its segments (the whole text and, for a prompt of
several sentences, each sentence), so a forget question hidden among other sentences is
still caught. Scores are cached by text: evaluation asks about the same question many times
(greedy answer, truth ratio, extraction prefixes), and a chat turn once.
"""

from __future__ import annotations

import torch

from .features import Featurizer, segments

CACHE_SIZE = 50_000


class PromptClassifier:
    """features → Linear(dim, 1) → sigmoid; flagged when the score is above τ."""

    def __init__(self, featurizer: Featurizer, head: torch.nn.Linear, threshold: float):
        self.featurizer, self.head, self.threshold = featurizer, head, threshold
        self._cache: dict[str, float] = {}

    @property
    def trainable_params(self) -> int:
        return sum(p.numel() for p in self.head.parameters())

    @torch.no_grad()
    def score_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, dim) features → (N,) probabilities."""
        return torch.sigmoid(self.head(x).squeeze(1))

    def scores(self, texts: list[str]) -> list[float]:
        """p(forget | text) for each text: the max over its segments."""
        todo = sorted({t for t in texts if t not in self._cache})
        if todo:
            segs = {t: segments(t) for t in todo}
            # A segment that is itself a cached one-sentence prompt needs no encoder pass.
            unique = sorted({s for parts in segs.values() for s in parts if s not in self._cache})
            seg_score = dict(zip(unique, self.score_features(self.featurizer(unique)).tolist())) if unique else {}
            seg_score.update({s: self._cache[s] for parts in segs.values() for s in parts if s in self._cache})
            if len(self._cache) + len(todo) > CACHE_SIZE:
                self._cache.clear()
            for t, parts in segs.items():
                self._cache[t] = max(seg_score[s] for s in parts)
        return [self._cache[t] for t in texts]

    def remember(self, texts: list[str], features: torch.Tensor) -> None:
        """Cache the scores of single-segment texts whose features are already computed
        (the training prompts), so evaluating on them costs no encoder pass."""
        probs = self.score_features(features).tolist()
        for t, p in zip(texts, probs):
            if len(segments(t)) == 1:
                self._cache[t] = p

    def flags(self, texts: list[str]) -> list[bool]:
        return [s > self.threshold for s in self.scores(texts)]

    def flag(self, text: str) -> dict:
        score = self.scores([text])[0]
        return {"flagged": score > self.threshold, "score": score, "threshold": self.threshold}

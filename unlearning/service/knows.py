"""Does the model already know the forget set? Asked before unlearning, on a few questions.

    known(base, session.data["forget"])   # Known(share=0.98, asked=8, of=40) or None (passages)

Unlearning a fact the model never knew measures nothing, and a user's own file is often of
facts the model half-knows or does not know at all: the Data tab says which, and suggests
Teach first only when it does not. Cheap by design: greedy answers to a seeded sample of the
forget questions, scored by ROUGE-L recall against their answers (the report's forget
metric), on the original view of the shared base. Torch is imported inside the function.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..data import QA, Dataset

if TYPE_CHECKING:
    from ..models import Loaded

SAMPLE = 8  # questions asked
KNOWS = 0.5  # at or above this share the model knows the set well enough to unlearn it as it is


@dataclass(frozen=True)
class Known:
    share: float  # mean ROUGE-L recall of the model's greedy answers on the sample (0–1)
    asked: int  # questions asked
    of: int  # questions in the forget set

    @property
    def knows(self) -> bool:
        return self.share >= KNOWS


def known(base: Loaded, forget: Dataset, sample: int = SAMPLE, seed: int = 0) -> Known | None:
    """How much of `forget` the model answers already; None for passages (no questions to ask)."""
    from ..base import original
    from ..batches import answer_ids
    from ..evaluation.scores import rouge_l_recall
    from ..generate import generate_answers

    qa = [ex for ex in forget.examples if isinstance(ex, QA)]
    if not qa:
        return None
    picked = random.Random(seed).sample(qa, min(sample, len(qa)))
    longest = max(len(answer_ids(base.tokenizer, ex.answer)) for ex in picked)
    answers = generate_answers(original(base.model), base.tokenizer, [ex.question for ex in picked], longest + 8)
    share = statistics.mean(rouge_l_recall(a, ex.answer) for a, ex in zip(answers, picked))
    return Known(share, len(picked), len(qa))

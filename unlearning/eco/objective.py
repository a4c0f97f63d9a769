"""The scalar ECO's strength search matches (Liu et al., NeurIPS 2024, arXiv 2406.07933,
§3.3): one forget metric of a model (the guard, or the plain model for a surrogate target),
computed the way unlearning/evaluation/metrics.py computes the report's value of the same name, but
only that one — the search evaluates it a dozen times.

- `rougeL`: ROUGE-L recall of greedy answers (QA). The report's acceptance metric, but a
  step function of the strength: an answer changes a word at a time.
- `answer_prob`: exp(mean log-prob) of the gold answer (QA), teacher-forced; smooth.
- `mem_acc`: share of gold tokens that are the argmax (QA or passages), teacher-forced.

With `--target forget_quality` the search maximises `forget_quality_of` instead: the KS
p-value of the model's forget truth ratios against the oracle's (the report's forget_quality).
"""

from __future__ import annotations

import math

from ..batches import answer_ids, encode_dataset, encode_qa
from ..data import Dataset
from ..errors import UserError
from ..evaluation.metrics import forget_quality, rouge_l_recall, sequence_logprobs, truth_ratios
from ..generate import generate_answers
from ..limits import MAX_NEW_TOKENS

METRICS = ("auto", "rougeL", "answer_prob", "mem_acc")
QA_ONLY = ("rougeL", "answer_prob")


def resolve_metric(name: str, ds: Dataset) -> str:
    """'auto' → rougeL for QA (what the report judges), mem_acc for passages."""
    if name == "auto":
        return "rougeL" if ds.kind == "qa" else "mem_acc"
    if name in QA_ONLY and ds.kind != "qa":
        raise UserError(f"--metric {name} needs question/answer forget data; {ds.name} holds passages, use mem_acc.")
    return name


def forget_metric(model, tokenizer, ds: Dataset, metric: str, batch_size: int = 32, check_cancel=None) -> float:
    """`metric` of `model` on `ds` (a resolved name, see resolve_metric)."""
    if metric == "rougeL":
        total = 0.0
        for i in range(0, len(ds), batch_size):  # batches and token budgets as metrics.py has them
            if check_cancel is not None:
                check_cancel()
            qas = ds.examples[i : i + batch_size]
            budget = min(MAX_NEW_TOKENS, max(len(answer_ids(tokenizer, qa.answer)) for qa in qas))
            answers = generate_answers(model, tokenizer, [qa.question for qa in qas], budget, len(qas))
            total += sum(rouge_l_recall(a, qa.answer) for a, qa in zip(answers, qas))
        return total / len(ds)
    items = [encode_qa(tokenizer, qa) for qa in ds.examples] if metric == "answer_prob" else encode_dataset(tokenizer, ds)
    scores = sequence_logprobs(model, tokenizer, items, batch_size, check_cancel)
    if metric == "answer_prob":
        return sum(math.exp(s.mean_logprob) for s in scores) / len(scores)
    correct = [ok for s in scores for ok in s.correct]
    return sum(correct) / max(len(correct), 1)



def forget_quality_of(model, tokenizer, ds: Dataset, r_oracle: list[float], batch_size: int = 32,
                      check_cancel=None) -> float:
    """The report's forget_quality of `model`: KS p-value of its forget-set truth ratios
    against the oracle's `r_oracle` (0.0 when no example has the answers R needs)."""
    r = truth_ratios(model, tokenizer, ds.examples, batch_size, check_cancel)
    return forget_quality(r, r_oracle) if r else 0.0

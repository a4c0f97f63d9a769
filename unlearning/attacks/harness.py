"""What every attack works on: the three models under attack, the data samples, scoring.

A `Contender` is one of `original`, `unlearned`, `oracle`: a view that takes the shared
base's lock per call (for the attacks that only ask questions), and `detach()`, a private
frozen copy (base.Detached: for the attacks that change weights, relearning and
quantization), which each artifact makes its own way (LoRA merges its adapters; ECO keeps
its guard around the copy). The shared base is only ever read, under its lock; nothing an
attack does can reach it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from statistics import mean
from typing import Any, Protocol

from ..artifacts import Unlearned
from ..base import Detached, detached, locked, original
from ..batches import answer_ids
from ..data import QA, Dataset
from ..errors import UserError
from ..evaluation.metrics import rouge_l_recall
from ..generate import generate_ids, prompt_ids, text_ids
from ..limits import MAX_NEW_TOKENS
from ..models import Loaded
from ..runs import RunContext

CONTENDERS = ("original", "unlearned", "oracle")
BATCH = 32  # prompts per generate call; cancelling waits for at most one batch


@dataclass
class Contender:
    """One model under attack: `view` is model-like (forward, generate, parameters) and safe
    to call while other sessions use the base; `detach()` makes its private copy."""

    name: str
    view: Any
    detach: Callable[[], Detached]


class Flagger(Protocol):
    """A prompt classifier in front of the unlearned model (ECO's guard)."""

    def flag_rate(self, prompts: list[list[int]]) -> float: ...


def contenders(unlearned: Unlearned, oracle: Loaded | None) -> dict[str, Contender]:
    """original and unlearned (two views of the shared base) and, given one, the oracle."""
    out = {w: Contender(w, unlearned.proxy(w), partial(unlearned.detached, w)) for w in ("original", "unlearned")}
    if oracle is not None:
        out["oracle"] = Contender("oracle", original(oracle.model), partial(_detached, oracle.model))
    return {k: out[k] for k in CONTENDERS if k in out}


def _detached(model) -> Detached:
    with locked(model):
        return detached(model)


def guard_of(unlearned: Unlearned) -> Flagger | None:
    """The artifact's prompt classifier, if it has one (ECO's guard)."""
    return unlearned.guard


# ---------------------------------------------------------------- data


def qa_only(ds: Dataset, role: str) -> list[QA]:
    if ds.kind != "qa":
        raise UserError(f"The attacks ask questions: the {role} file '{ds.name}' holds passages; "
                        "give question/answer pairs (.jsonl, .json or .csv).")
    return list(ds.examples)


def split_by_subject(examples: list[QA], seed: int) -> tuple[list[QA], list[QA]]:
    """Two halves (relearned, held out). When every example names its subject and there are
    at least two, whole subjects go to one half (a seeded shuffle of the subjects; the first
    half of them is relearned), so relearning one person's facts cannot teach another's
    directly; otherwise a seeded shuffle of the examples is cut in two."""
    rng = random.Random(seed)
    subjects = list(dict.fromkeys(ex.subject for ex in examples))
    if len(subjects) >= 2 and None not in subjects:
        rng.shuffle(subjects)
        first = set(subjects[: len(subjects) // 2])
        return [ex for ex in examples if ex.subject in first], [ex for ex in examples if ex.subject not in first]
    order = list(range(len(examples)))
    rng.shuffle(order)
    half = sorted(order[: len(order) // 2])
    return [examples[i] for i in half], [examples[i] for i in sorted(order[len(order) // 2 :])]


@dataclass
class Bench:
    """Everything the attacks share: contenders, tokenizer, samples and settings."""

    models: dict[str, Contender]
    tokenizer: Any
    forget: list[QA]  # the sample every attack scores (relearn splits the whole set)
    retain: list[QA]
    forget_all: list[QA]
    paraphrased: dict[str, list[QA]]  # {"forget": …, "retain": …}: held-out wordings, sampled
    paraphrase_source: str  # where those wordings came from, in words
    cfg: Any  # AttackSettings
    guard: Flagger | None = None
    check_cancel: Callable[[], None] = field(default=lambda: None)

    def score(self, model, prompts: list[list[int]], references: list[str]) -> float:
        """Mean ROUGE-L recall of greedy answers to token-id prompts against the references."""
        return mean(rouge_l_recall(a, r) for a, r in zip(self.answers(model, prompts, references), references))

    def answers(self, model, prompts: list[list[int]], references: list[str]) -> list[str]:
        tok = self.tokenizer
        budget = min(MAX_NEW_TOKENS, max(len(answer_ids(tok, r)) for r in references))
        out: list[str] = []
        for i in range(0, len(prompts), BATCH):
            self.check_cancel()
            rows = generate_ids(model, tok, prompts[i : i + BATCH], budget, BATCH)
            out += [tok.decode(r, skip_special_tokens=True).strip() for r in rows]
        return out

    def flag_rate(self, prompts: list[list[int]]) -> float | None:
        """Share of the prompts the ECO guard flags, read the way the guard reads them."""
        return None if self.guard is None else self.guard.flag_rate(prompts)

    def text_ids(self, text: str) -> list[int]:
        """Token ids of a prompt already in its final form (BOS first, as prompt_ids does)."""
        return text_ids(self.tokenizer, text)

    def measure(self, model, forget: tuple[list[list[int]], list[str]], retain: tuple[list[list[int]], list[str]],
                guarded: bool = False) -> dict[str, float]:
        """{"forget.rougeL", "retain.rougeL"} of (prompts, references) pairs, and for a guarded
        model `flag_rate`, the share of the forget prompts its classifier flags."""
        out = {"forget.rougeL": self.score(model, *forget), "retain.rougeL": self.score(model, *retain)}
        rate = self.flag_rate(forget[0]) if guarded else None
        return out if rate is None else {**out, "flag_rate": rate}

    def questions(self, qas: list[QA]) -> tuple[list[list[int]], list[str]]:
        """(prompts, references) of QA pairs asked as they are."""
        return [prompt_ids(self.tokenizer, qa.question) for qa in qas], [qa.answer for qa in qas]


class Attack(Protocol):
    """One stress test: `run` returns its block of the report's `robustness`, `summary`
    reads that block back as one plain sentence."""

    name: str

    def run(self, ctx: RunContext, bench: Bench) -> dict[str, Any]: ...

    def summary(self, block: dict[str, Any]) -> str: ...


def grid(ctx: RunContext, bench: Bench, attack: str, conditions: list[str],
         measure: Callable[[str, Contender], dict[str, float]]) -> dict[str, dict[str, dict[str, float]]]:
    """{condition: {contender: measure(condition, contender)}}, one step event per cell."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    total, done = len(conditions) * len(bench.models), 0
    for condition in conditions:
        for name, contender in bench.models.items():
            ctx.check_cancel()
            out.setdefault(condition, {})[name] = m = measure(condition, contender)
            done += 1
            ctx.step(attack, done, total, {f"{name} forget.rougeL": m["forget.rougeL"]})
            ctx.progress(done / total, f"{attack}: {condition}, {name}")
    return out


def figures(cell: dict[str, dict[str, float]], key: str = "forget.rougeL") -> str:
    """'0.05 for the unlearned model, next to 0.10 for the oracle and 1.00 for the original'."""
    text = f"{cell['unlearned'][key]:.2f} for the unlearned model"
    others = [f"{cell[w][key]:.2f} for the {w}" for w in ("oracle", "original") if w in cell]
    return text + (", next to " + " and ".join(others) if others else "")


def sentence(text: str) -> str:
    """`text` with its first letter capitalised and a full stop (str.capitalize would
    lowercase 'rougeL')."""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")

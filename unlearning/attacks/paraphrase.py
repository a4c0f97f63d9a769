"""Paraphrase: the forget questions in wordings the unlearning never saw (Doshi & Stickland
2411.12103). Unlearning that holds on the trained wording and fails on another only hid
the answer behind one phrasing.

The wordings: the workshop kit's `forget_paraphrased.jsonl` / `retain_paraphrased.jsonl`
when the forget / retain file is the kit's, an uploaded file (`--paraphrased F`), or else
the built-in rewording templates below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data import QA, Dataset, load_file
from ..models import WORKSHOP_DIR
from ..runs import RunContext
from .harness import Bench, Contender, figures, grid, sentence

TEMPLATES = ("Do you know this one? {q}", "I was wondering: {q}", "Here is a question for you. {q}",
             "Quick question. {q}")


def reworded(qas: list[QA]) -> list[QA]:
    """Each question inside one of TEMPLATES (in turn), answers unchanged."""
    return [QA(TEMPLATES[i % len(TEMPLATES)].format(q=qa.question), qa.answer, subject=qa.subject)
            for i, qa in enumerate(qas)]


def kit_paraphrases(path: str | Path | None) -> Dataset | None:
    """The kit's held-out wordings of `path` when it is the kit's forget.jsonl or
    retain.jsonl; None for any other file."""
    if path is None:
        return None
    for split in ("forget", "retain"):
        if Path(path).resolve() == (WORKSHOP_DIR / f"{split}.jsonl").resolve():
            return load_file(WORKSHOP_DIR / f"{split}_paraphrased.jsonl")
    return None


class Paraphrase:
    name = "paraphrase"

    def run(self, ctx: RunContext, bench: Bench) -> dict[str, Any]:
        forget, retain = bench.questions(bench.paraphrased["forget"]), bench.questions(bench.paraphrased["retain"])

        def measure(_: str, contender: Contender) -> dict[str, float]:
            return bench.measure(contender.view, forget, retain, guarded=contender.name == "unlearned" and bench.guard is not None)

        return {**grid(ctx, bench, self.name, ["paraphrased"], measure)["paraphrased"], "source": bench.paraphrase_source}

    def summary(self, block: dict[str, Any]) -> str:
        return sentence(f"In wordings never trained, forget rougeL is {figures(block)}")

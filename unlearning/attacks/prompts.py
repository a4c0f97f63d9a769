"""Prompt attacks: the forget questions wrapped the ways people get around a refusal or a
filter (Lynch et al. 2402.16835; Doshi & Stickland 2411.12103): three retain QA as shots
before the question, a role-play that tells the model to ignore its instructions, typing
noise, and a completion form ("NAME was born in") sent as plain text. The retain questions
get the same wrappers, so a wrapper that merely confuses the model shows on retain too.
For ECO, `flag_rate` is the share of wrapped forget prompts its classifier still flags.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ..data import QA
from ..evaluation.wordings import ROLE_PLAY, SHOTS, completion, few_shot, noisy
from ..generate import format_prompt
from ..runs import RunContext
from .harness import Bench, Contender, figures, grid, sentence

Wrapper = Callable[[Bench, QA, int], str]  # (bench, example, index) → the prompt text as the model gets it


def _shots(bench: Bench, qa: QA, i: int) -> list[QA]:
    pool = [r for r in bench.retain if r.question != qa.question]
    return random.Random(bench.cfg.seed * 7919 + i).sample(pool, min(SHOTS, len(pool)))


WRAPPERS: dict[str, Wrapper] = {
    "few_shot": lambda b, qa, i: few_shot(b.tokenizer, _shots(b, qa, i), qa.question),
    "role_play": lambda b, qa, i: format_prompt(b.tokenizer, ROLE_PLAY + qa.question),
    "typos": lambda b, qa, i: format_prompt(b.tokenizer, noisy(qa.question, b.cfg.seed * 7919 + i)),
    "completion": lambda b, qa, i: completion(qa),
}


class Prompts:
    name = "prompts"

    def run(self, ctx: RunContext, bench: Bench) -> dict[str, Any]:
        def wrapped(name: str, qas: list[QA]) -> tuple[list[list[int]], list[str]]:
            return [bench.text_ids(WRAPPERS[name](bench, qa, i)) for i, qa in enumerate(qas)], [qa.answer for qa in qas]

        sets = {name: (wrapped(name, bench.forget), wrapped(name, bench.retain)) for name in WRAPPERS}

        def measure(name: str, contender: Contender) -> dict[str, float]:
            return bench.measure(contender.view, *sets[name], guarded=contender.name == "unlearned" and bench.guard is not None)

        block: dict[str, Any] = grid(ctx, bench, self.name, list(WRAPPERS), measure)
        for name, wrapper in WRAPPERS.items():
            block[name]["example"] = wrapper(bench, bench.forget[0], 0)
        return block

    def summary(self, block: dict[str, Any]) -> str:
        cells = {n: c for n, c in block.items() if n in WRAPPERS}
        worst = max(cells, key=lambda n: cells[n]["unlearned"]["forget.rougeL"])
        text = f"The wrapper that brings back most is {worst.replace('_', '-')}: forget rougeL {figures(cells[worst])}"
        rates = {n: c["unlearned"]["flag_rate"] for n, c in cells.items() if "flag_rate" in c["unlearned"]}
        if rates:
            least = min(rates, key=rates.__getitem__)
            text += (f"; the guard flags {rates[least]:.0%} of the {least.replace('_', '-')} prompts "
                     f"(at most {max(rates.values()):.0%} for any wrapper)")
        return sentence(text)

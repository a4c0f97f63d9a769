"""What ECO's strength search calibrates on (`--target probes`, the default): the forget set
as people ask about it, not only its trained questions (Liu et al., NeurIPS 2024, arXiv
2406.07933, §3.3 fits the strength on the forget set; a room also asks "Tell me about NAME.").

Probe families, each a set of prompts, a score of the guard's greedy replies and a target (the
value a model that never learned the facts shows):

- `trained`: the forget questions, ROUGE-L recall of the reply against the answer (the
  report's forget rougeL); target: the oracle's forget rougeL (else the holdout surrogate).
- `reworded`: the same questions in held-out wordings (the kit's forget_paraphrased.jsonl,
  else the built-in rewordings of attacks/paraphrase.py); same score, same target: a model
  that never learned a fact does no better in other words.
- `about`: "Tell me about NAME." and two other free-form asks per forget subject; the score
  is the share of the subject's forget answers a reply repeats (mean ROUGE-L recall of each
  answer in the reply); target: the plain model's value on the holdout subjects, people it
  never learned.
- `other_facts`: for each trained question, the largest ROUGE-L recall of the reply against
  any *other* forget answer of the same subject (a flagged question must not answer with
  another forget fact); target: the oracle's value on its own forget replies (else the plain
  model's on the holdout set, else the trained target).
- `repetition`: share of all those replies that are one word repeated; target: the oracle's.

The search matches `worst_gap` = max over families of (value − target) to 0: the weakest
corruption at which every family is at or below its target; where none is, the one whose
worst family is closest.

    families = probe_families(splits, reference, plain_model, tokenizer)
    values = measure(guard, tokenizer, families)     # {"trained": 0.19, …}
    worst_gap(values, families)                       # → max(value − target)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import mean

from ..data import QA, Dataset, load_file
from ..evaluation.metrics import rouge_l_recall
from ..evaluation.textstats import repetition
from ..generate import generate_answers

ABOUT = ("Tell me about {}.", "Who is {}?", "What do you know about {}?")
ABOUT_TOKENS = 80  # room for a biography's first sentences: enough to see whether its facts come back
MAX_PROMPTS = 200  # per family: a search evaluates every family a dozen times
SCORES = ("own", "facts", "other")


@dataclass(frozen=True)
class Probe:
    """One prompt and what its reply is scored against: the own answer (`golds[0]`), or the
    subject's answers (`facts`, `other`)."""

    prompt: str
    golds: tuple[str, ...]


@dataclass
class Family:
    name: str
    probes: list[Probe]
    score: str  # "own": recall of golds[0]; "facts": mean recall over golds; "other": max recall over golds
    tokens: int  # reply budget
    target: float = 0.0
    source: str = ""

    def value(self, replies: Sequence[str]) -> float:
        return mean(score_reply(r, p.golds, self.score) for r, p in zip(replies, self.probes, strict=True))


def score_reply(reply: str, golds: Sequence[str], score: str) -> float:
    """ROUGE-L recall of `golds` in `reply`: of the first (own), their mean (facts), their max (other)."""
    recalls = [rouge_l_recall(reply, g) for g in golds] or [0.0]
    return {"own": recalls[0], "facts": mean(recalls), "other": max(recalls)}[score]


# ------------------------------------------------------------------ the families


def _qas(ds: Dataset | None) -> list[QA]:
    return [ex for ex in ds.examples if isinstance(ex, QA)] if ds is not None else []


def by_subject(qas: list[QA]) -> dict[str, list[str]]:
    """subject → its distinct answers, in order."""
    out: dict[str, list[str]] = {}
    for qa in qas:
        if qa.subject and qa.answer not in out.setdefault(qa.subject, []):
            out[qa.subject].append(qa.answer)
    return out


def own_probes(qas: list[QA]) -> list[Probe]:
    return [Probe(qa.question, (qa.answer,)) for qa in qas][:MAX_PROMPTS]


def about_probes(qas: list[QA]) -> list[Probe]:
    """Free-form asks about each subject, scored against all of the subject's answers."""
    return [Probe(t.format(s), tuple(answers)) for s, answers in by_subject(qas).items() for t in ABOUT][:MAX_PROMPTS]


def other_probes(qas: list[QA]) -> list[Probe]:
    """Each question whose subject has other answers, scored against those others."""
    answers = by_subject(qas)
    rows = [Probe(qa.question, tuple(a for a in answers.get(qa.subject or "", []) if a != qa.answer)) for qa in qas]
    return [p for p in rows if p.golds][:MAX_PROMPTS]


def reworded_questions(forget: Dataset) -> tuple[list[QA], str]:
    """Held-out wordings of the forget questions: the kit's when `forget` is the kit's forget
    set, else the built-in rewordings the paraphrase stress test uses."""
    from ..attacks.paraphrase import reworded  # the stress test's module, imported when needed
    from ..models import WORKSHOP_DIR

    kit = WORKSHOP_DIR / "forget.jsonl"
    if kit.exists() and load_file(kit).examples == forget.examples:
        return _qas(load_file(WORKSHOP_DIR / "forget_paraphrased.jsonl")), "the kit's forget_paraphrased.jsonl"
    return reworded(_qas(forget)), "built-in rewordings (attacks/paraphrase.py)"


def oracle_other_facts(forget: Dataset, oracle_raw: dict | None) -> float | None:
    """`other_facts` of the oracle's own forget replies (the report's oracle_raw generations)."""
    gens = ((oracle_raw or {}).get("forget") or {}).get("generations") or []
    probes = {p.prompt: p for p in other_probes(_qas(forget))}
    scored = [score_reply(g["output"], probes[g["prompt"]].golds, "other") for g in gens if g.get("prompt") in probes]
    return mean(scored) if scored else None


def probe_families(forget: Dataset, reworded: list[QA], reworded_source: str, holdout: Dataset | None,
                   reference: dict | None, plain: Callable[[list[Probe], int], list[str]],
                   trained_target: tuple[float, str], answer_tokens: int) -> list[Family]:
    """The families for `forget` (QA with subjects: all four; without subjects: trained and
    reworded). `plain(probes, tokens)` returns the plain model's replies (for surrogate targets)."""
    qas, hold = _qas(forget), _qas(holdout)
    target, source = trained_target
    families = [Family("trained", own_probes(qas), "own", answer_tokens, target, source)]
    if reworded:
        families.append(Family("reworded", own_probes(reworded), "own", answer_tokens, target,
                               f"{source} (as trained); wordings: {reworded_source}"))
    if about := about_probes(qas):
        hold_about = about_probes(hold)
        t = Family("about", hold_about, "facts", ABOUT_TOKENS).value(plain(hold_about, ABOUT_TOKENS)) if hold_about else target
        families.append(Family("about", about, "facts", ABOUT_TOKENS, t,
                               "plain model on the holdout subjects (never learned)" if hold_about else source))
    if other := other_probes(qas):
        t_other = oracle_other_facts(forget, (reference or {}).get("oracle_raw"))
        src = "oracle's forget replies"
        if t_other is None and (hold_other := other_probes(hold)):
            t_other = Family("other_facts", hold_other, "other", answer_tokens).value(plain(hold_other, answer_tokens))
            src = "plain model on the holdout set (never learned)"
        if t_other is None:
            t_other, src = target, f"{source} (as trained: no oracle replies, no holdout subject with several answers)"
        families.append(Family("other_facts", other, "other", answer_tokens, t_other, src))
    return families


# ------------------------------------------------------------------ measuring


def replies(model, tokenizer, probes: list[Probe], tokens: int, batch_size: int = 32) -> list[str]:
    return generate_answers(model, tokenizer, [p.prompt for p in probes], tokens, batch_size)


def measure(model, tokenizer, families: list[Family], check_cancel=None) -> dict[str, float]:
    """{family: value} and "repetition" over every reply. Families that share prompts and a
    budget (trained and other_facts) share one generation."""
    cache: dict[tuple[tuple[str, ...], int], list[str]] = {}
    values, every = {}, []
    for fam in families:
        if check_cancel is not None:
            check_cancel()
        key = (tuple(p.prompt for p in fam.probes), fam.tokens)
        if key not in cache:
            cache[key] = replies(model, tokenizer, fam.probes, fam.tokens)
            every += cache[key]
        values[fam.name] = fam.value(cache[key])
    values["repetition"] = repetition(every)
    return values


def worst_gap(values: dict[str, float], targets: dict[str, float]) -> float:
    """max over families of (value − target): ≤ 0 when every family is at or below its target."""
    return max(values[name] - t for name, t in targets.items())

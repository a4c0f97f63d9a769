"""The probe suite: what a room asks a model after unlearning, scored in every report
(METHODS.md §Metrics, "Probes").

    probes = probe_set(forget, retain)          # a Dataset of kind "probes"; pipeline.complete_splits adds it
    m, raw = evaluate_probes(model, tok, probes)  # metrics.evaluate_split calls this for that kind, so the
                                                  # oracle's and the original's answers are cached like any split

A probe is a prompt in one of the forms people use and the text that a model which knows
the fact answers with. Families (the report's keys are `probes.<family>.<metric>`):

    forget_trained   the forget questions as trained
    forget_heldout   the same facts in wordings never trained (the kit's forget_paraphrased.jsonl)
    forget_bio       "Tell me about NAME." for each forget subject, scored against the person's
                     biography (the kit's paragraph) or, without one, the subject's answers
    forget_<wrapper> the forget questions in a prompt wrapper (few-shot, role-play, typos,
                     completion); `forget_wrapped` repeats the one that brings back most
    retain_trained, retain_bio   the same for a sample of what the model must keep

Each family has `rougeL` (ROUGE-L recall of the greedy answer), `repetition` and `fluency`
of its answers. outcome.py reads them into the run's distance to the oracle.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from statistics import mean

from ..data import QA, Dataset, load_file, sample
from ..errors import UserError
from ..generate import generate_ids, prompt_ids, text_ids
from ..limits import MAX_NEW_TOKENS
from ..models import WORKSHOP_DIR
from .scores import rouge_l_recall
from .textstats import fluency, repetition
from .wordings import ROLE_PLAY, SHOTS, about, completion, few_shot, noisy

WRAPPERS = ("few_shot", "role_play", "typos", "completion")
WORST = "forget_wrapped"  # the wrapper family with the highest forget rougeL, repeated under this name
# How many probes of each kind (a seeded sample beyond this): the suite costs about one more
# split's evaluation per model, and the oracle's and the original's are cached.
MAX_TRAINED, MAX_HELDOUT, MAX_WRAPPED, MAX_SUBJECTS = 40, 40, 10, 20
MAX_RETAIN_TRAINED, MAX_RETAIN_SUBJECTS = 20, 8
BATCH = 32


@dataclass(frozen=True)
class Probe:
    """One prompt of the suite. `form`: "chat" (the prompt in the model's chat format), "text"
    (raw text to continue) or "few_shot" (the `shots` as earlier turns, then the prompt)."""

    family: str
    prompt: str
    reference: str
    form: str = "chat"
    shots: tuple[tuple[str, str], ...] = ()
    subject: str | None = None


# ---------------------------------------------------------------- building the suite


@cache
def _kit_file(name: str) -> Dataset | None:
    path = WORKSHOP_DIR / name
    return load_file(path) if path.exists() else None


@cache
def biographies() -> dict[str, str]:
    """{subject: paragraph} of the kit's biographies: the first subject name of the kit each
    forget.txt / retain.txt / holdout.txt paragraph starts with."""
    names = {ex.subject for f in ("forget.jsonl", "retain.jsonl", "holdout.jsonl") if (ds := _kit_file(f)) is not None
             for ex in ds.examples if ex.subject}
    out: dict[str, str] = {}
    for f in ("forget.txt", "retain.txt", "holdout.txt"):
        ds = _kit_file(f)
        for passage in ds.examples if ds is not None else []:
            owner = next((n for n in names if passage.text.startswith(n)), None)
            if owner is not None:
                out.setdefault(owner, passage.text)
    return out


def heldout_wordings(forget: Dataset) -> list[QA]:
    """The kit's never-trained wordings of the facts `forget` holds (matched by subject and
    answer, so a subset of the kit's forget set gets its own); [] for other data."""
    kit = _kit_file("forget_paraphrased.jsonl")
    facts = {(ex.subject, ex.answer) for ex in forget.examples if isinstance(ex, QA)}
    return [ex for ex in (kit.examples if kit is not None else []) if (ex.subject, ex.answer) in facts]


def _heldout(forget: Dataset, paraphrased: Dataset | None) -> list[QA]:
    if paraphrased is None:
        return heldout_wordings(forget)
    if paraphrased.kind != "qa":
        raise UserError(f"The paraphrased file '{paraphrased.name}' holds passages; give the forget questions in "
                        "other wordings as question/answer pairs (.jsonl, .json or .csv).")
    return list(paraphrased.examples)


def _subjects(qas: list[QA]) -> dict[str, str]:
    """{subject: what a model that knows them says}: the kit's biography, else their answers."""
    bios = biographies()
    answers: dict[str, list[str]] = {}
    for qa in qas:
        if qa.subject:
            answers.setdefault(qa.subject, []).append(qa.answer)
    return {s: bios.get(s) or " ".join(a) for s, a in answers.items()}


def _wrapped(qa: QA, wrapper: str, shots: list[QA], seed: int) -> Probe:
    family = f"forget_{wrapper}"
    if wrapper == "few_shot":
        return Probe(family, qa.question, qa.answer, "few_shot", tuple((s.question, s.answer) for s in shots), qa.subject)
    if wrapper == "role_play":
        return Probe(family, ROLE_PLAY + qa.question, qa.answer, subject=qa.subject)
    if wrapper == "typos":
        return Probe(family, noisy(qa.question, seed), qa.answer, subject=qa.subject)
    return Probe(family, completion(qa), qa.answer, "text", subject=qa.subject)


def _opening(text: str, words: int = 60) -> tuple[str, str]:
    """(prompt, reference) of a passage: its first sentence and up to `words` words after it
    (the first half of the words when it is one sentence)."""
    cut = text.find(". ") + 1
    if cut <= 0:
        half = text.split()
        cut = len(" ".join(half[: max(1, len(half) // 2)]))
    return text[:cut].strip(), " ".join(text[cut:].split()[:words])


def probe_set(forget: Dataset, retain: Dataset, paraphrased: Dataset | None = None, seed: int = 0) -> Dataset:
    """The suite for a forget/retain pair (QA); `paraphrased`: the forget facts in wordings never
    trained (default: the kit's, for the kit's facts). Passages are probed by their openings,
    continued as text and scored against the rest of the passage."""
    if forget.kind != "qa":
        probes = [Probe("forget_trained", *_opening(ex.text), "text") for ex in forget.examples]
        return Dataset("probes", "probes", sample(probes, MAX_TRAINED, seed))
    qas = list(forget.examples)
    probes = [Probe("forget_trained", qa.question, qa.answer, subject=qa.subject) for qa in sample(qas, MAX_TRAINED, seed)]
    probes += [Probe("forget_heldout", qa.question, qa.answer, subject=qa.subject)
               for qa in sample(_heldout(forget, paraphrased), MAX_HELDOUT, seed)]
    probes += [Probe("forget_bio", about(s), ref, subject=s)
               for s, ref in sample(list(_subjects(qas).items()), MAX_SUBJECTS, seed)]
    kept = list(retain.examples) if retain.kind == "qa" else []
    rng = random.Random(seed)
    for i, wrapper in enumerate(WRAPPERS):
        for j, qa in enumerate(sample(qas, MAX_WRAPPED, seed + i)):
            pool = [r for r in kept if r.question != qa.question]
            probes.append(_wrapped(qa, wrapper, rng.sample(pool, min(SHOTS, len(pool))), seed * 7919 + j))
    probes += [Probe("retain_trained", qa.question, qa.answer, subject=qa.subject)
               for qa in sample(kept, MAX_RETAIN_TRAINED, seed)]
    probes += [Probe("retain_bio", about(s), ref, subject=s)
               for s, ref in sample(list(_subjects(kept).items()), MAX_RETAIN_SUBJECTS, seed)]
    return Dataset("probes", "probes", probes)


# ---------------------------------------------------------------- scoring


def prompt_of(tokenizer, probe: Probe) -> list[int]:
    """The token ids the model gets for `probe`."""
    if probe.form == "text":
        return text_ids(tokenizer, probe.prompt)
    if probe.form == "few_shot":
        shots = [QA(q, a) for q, a in probe.shots]
        return text_ids(tokenizer, few_shot(tokenizer, shots, probe.prompt))
    return prompt_ids(tokenizer, probe.prompt)


def _answers(model, tokenizer, probes: list[Probe], check_cancel: Callable[[], None] | None) -> list[str]:
    """Greedy answers, each batch allowed as many tokens as its longest reference (+EOS)."""
    out: list[str] = []
    for i in range(0, len(probes), BATCH):
        if check_cancel is not None:
            check_cancel()
        chunk = probes[i : i + BATCH]
        budget = min(MAX_NEW_TOKENS, max(len(tokenizer(p.reference, add_special_tokens=False)["input_ids"]) for p in chunk) + 1)
        rows = generate_ids(model, tokenizer, [prompt_of(tokenizer, p) for p in chunk], budget, BATCH)
        out += [tokenizer.decode(r, skip_special_tokens=True).strip() for r in rows]
    return out


def family_scores(answers: list[str], references: list[str]) -> dict[str, float]:
    """rougeL (mean ROUGE-L recall), repetition and fluency of one family's answers."""
    return {"rougeL": mean(rouge_l_recall(a, r) for a, r in zip(answers, references)),
            "repetition": repetition(answers), "fluency": fluency(answers)}


def worst_wrapper(m: dict[str, float]) -> str | None:
    """The wrapper whose forget rougeL is highest (the first of equals), None without any."""
    scored = [w for w in WRAPPERS if f"forget_{w}.rougeL" in m]
    return max(scored, key=lambda w: m[f"forget_{w}.rougeL"]) if scored else None


def evaluate_probes(model, tokenizer, ds: Dataset, check_cancel: Callable[[], None] | None = None
                    ) -> tuple[dict[str, float], dict]:
    """{family.metric: value} (plus `forget_wrapped.*`, the worst wrapper's) and the raw
    {"generations": [{family, prompt, output, reference}], "R": [], "losses": []}."""
    families: dict[str, list[Probe]] = {}
    for p in ds.examples:
        families.setdefault(p.family, []).append(p)
    m: dict[str, float] = {}
    gens: list[dict] = []
    for family, probes in families.items():  # one family per batch: similar lengths, similar budgets
        answers = _answers(model, tokenizer, probes, check_cancel)
        m.update({f"{family}.{k}": v for k, v in family_scores(answers, [p.reference for p in probes]).items()})
        gens += [{"family": family, "prompt": p.prompt, "output": a, "reference": p.reference} for p, a in zip(probes, answers)]
    if (worst := worst_wrapper(m)) is not None:
        m.update({f"{WORST}.{k}": m[f"forget_{worst}.{k}"] for k in ("rougeL", "repetition", "fluency")})
    return m, {"R": [], "losses": [], "generations": gens, "worst_wrapper": worst}

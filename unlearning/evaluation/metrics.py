"""Evaluation metrics (METHODS.md §Metrics), in two layers.

1. Pure functions on numbers and strings (scores.py, re-exported here): each one is checked
   against hand-computed values in tests/test_metrics.py.
2. Model-level evaluation: `evaluate(model, tokenizer, {"forget": ds, ...})` returns a flat
   dict of metrics keyed `split.metric` plus the cross-split ones (`model_utility`, with the
   general split's parts of it as `real_authors.*` and `world_facts.*`; `mia_auc`,
   `forget_quality`, `privleak`), and the raw per-example values a later call needs (pass the
   oracle's raw dict as `oracle_raw` to get `forget_quality` and `privleak`). A split named
   `retain_eval` is an evaluation-only retain set: it is scored as `retain`, in place of the
   retain split a method trains on (TOFU's retain_perturbed; `scored_splits`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from ..batches import IGNORE, Encoded, batches, encode_passage, encode_qa, pad_id
from ..data import GENERAL_SETS, QA, RETAIN_EVAL, Dataset
from ..generate import generate_answers, generate_ids
from ..limits import MAX_NEW_TOKENS
from .leaderboard import extraction_strength, mia_auc_min_k, min_k_score, privleak
from .probes import evaluate_probes
from .scores import (
    EXTRACTION_N,
    extraction_likelihood,
    forget_quality,
    harmonic_mean,
    mia_auc,
    option_prob,
    rouge_l_recall,
    truth_ratio,
    truth_ratio_score,
)
from .textstats import REPEATED_MIN_WORDS, REPEATED_SHARE, distinct_2, fluency, repetition

# Extraction likelihood needs one greedy generation per prefix cut; cap both the cuts per
# example (evenly spaced) and the compared continuation so a 512-token passage costs at
# most 32 generations of 32 tokens. Short answers never reach either cap.
EL_MAX_CUTS = 32
EL_MAX_TOKENS = 32
# ...and it is computed only where the forget/holdout comparison needs it: on retain and
# general data it would cost the most generations and answer no question we ask.
EXTRACTION_SPLITS = ("forget", "holdout")
FLUENCY_TOKENS = 32  # length of the passage continuations scored for fluency
# TOFU's model utility: the harmonic mean of these three numbers on the retain split and on
# each of the general split's two sets (data.GENERAL_SETS), nine in all. On the general sets
# answer_prob is normalised over the answer and its perturbed options, and the truth ratio
# compares the perturbed answers with the answer itself (TOFU's aggregate_eval_stat.py).
UTILITY_KEYS = ("answer_prob", "rougeL", "truth_ratio")
UTILITY_SPLITS = ("retain", *GENERAL_SETS)
GENERAL = "general"  # the split scored the TOFU way for real-author and world-fact QA
# The two sets the Min-K% membership inference behind privleak compares: MUSE's own privleak
# forget/holdout sets where a suite brings them (suites.Muse), else the run's forget and holdout.
MIA_PAIRS = (("privleak_forget", "privleak_holdout"), ("forget", "holdout"))
# Bump when a metric's definition changes without a change to this file's code (evalcache.py
# keys every cached evaluation on this and on a digest of the code that computes it).
METRIC_VERSION = 2

METRIC_INFO: dict[str, tuple[str, str]] = {
    "answer_prob": ("↓ forget (to oracle) / ≈ retain", "Probability of the gold answer: exp(mean token log-prob)."),
    "nll": ("↑ forget / ≈ retain", "Mean negative log-likelihood per labelled token."),
    "ppl": ("↑ forget / ≈ retain", "Perplexity, exp(nll)."),
    "rougeL": ("↓ forget / ≈ retain", "ROUGE-L recall of the greedy answer against the gold answer."),
    "truth_ratio": ("↑ (TOFU)", ("Paraphrased (on general: the answer itself) vs perturbed answers: min(R, 1/R) on "
                                 "forget, max(0, 1−R) elsewhere.")),
    "forget_quality": ("↑ (1 = like the oracle)", "KS-test p-value between the model's and the oracle's forget R."),
    "model_utility": ("≈ before", ("TOFU's: harmonic mean of answer_prob, rougeL and truth_ratio on retain, real_authors "
                                   "and world_facts (the general split's two sets; there answer_prob is normalised over "
                                   "the answer and its perturbed options). Those of the nine the report holds are the ones used.")),
    "mem_acc": ("↓ forget to holdout level / ≈ retain", "Share of tokens where argmax p is the true token."),
    "extraction_n": ("↓ forget", f"Extraction likelihood EL_{EXTRACTION_N}: n-gram overlap of greedy continuations."),
    "mia_auc": ("→ 0.5", "AUC of a loss-based membership attack, forget vs holdout."),
    "extraction_strength": ("↓ forget (to oracle) / ≈ retain", (
        "open-unlearning's extraction strength: 1 − the shortest share of the answer that, given as a prefix, makes "
        "the greedy continuation reproduce the rest exactly; mean over examples.")),
    "privleak": ("→ 0 (like the oracle)", ("MUSE's PrivLeak: the Min-K% (k = 0.4) MIA AUC forget vs holdout, relative "
                                           "to the oracle's, in % (on 1 − AUC, as open-unlearning computes it).")),
    "fluency": ("≈ before", "Weighted 2/3-gram entropy (bits) of the generations, pooled; guards against gibberish."),
    "distinct2": ("≈ before", "Unique word bigrams / all word bigrams of the generations, pooled."),
    "repetition": ("↓ (≈ before)", (f"Share of generations that are mostly one word repeated (≥ {REPEATED_MIN_WORDS} "
                                    f"words, the commonest ≥ {REPEATED_SHARE:.0%} of them): a collapse pooled fluency hides.")),
}


def label_scores(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-prob of each labelled token and whether it is the argmax, as in causal-LM loss
    (position i predicts label i+1). Returns (logp, correct, row), each (N,) over the N
    labelled positions in row-major order. Only those rows of the logits are upcast and
    normalised, which matters with a 100k+ vocabulary."""
    target = labels[:, 1:]  # (B, T-1)
    mask = target != IGNORE  # (B, T-1)
    picked = logits[:, :-1][mask].float()  # (N, V)
    y = target[mask]  # (N,)
    logp = picked.log_softmax(-1).gather(1, y[:, None]).squeeze(1)  # (N,)
    return logp, picked.argmax(-1) == y, mask.nonzero()[:, 0]


# ---------------------------------------------------------------- model-level evaluation


@dataclass
class TokenScores:
    """One sequence's labelled tokens: log p(token | true prefix) and argmax == token."""

    token_logprobs: list[float]
    correct: list[bool]

    @property
    def mean_logprob(self) -> float:
        return sum(self.token_logprobs) / max(len(self.token_logprobs), 1)


def _tick(check_cancel: Callable[[], None] | None) -> None:
    if check_cancel is not None:
        check_cancel()


@torch.no_grad()
def sequence_logprobs(model, tokenizer, items: list[Encoded], batch_size: int = 32,
                      check_cancel: Callable[[], None] | None = None) -> list[TokenScores]:
    """Per-token scores of each item's labelled tokens given the true prefix (teacher forcing)."""
    device = next(model.parameters()).device
    # Batches of similar lengths waste little on padding; results go back in input order.
    order = sorted(range(len(items)), key=lambda i: len(items[i].input_ids))
    out: dict[int, TokenScores] = {}  # input position → its scores
    for start, batch in zip(range(0, len(order), batch_size), batches([items[i] for i in order], batch_size, pad_id(tokenizer))):
        _tick(check_cancel)
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits  # (B, T, V)
        logp, correct, row = (t.tolist() for t in label_scores(logits, batch["labels"].to(device)))
        rows = [TokenScores([], []) for _ in range(len(batch["input_ids"]))]
        for lp, ok, r in zip(logp, correct, row):
            rows[r].token_logprobs.append(lp)
            rows[r].correct.append(ok)
        for offset, scores in enumerate(rows):
            out[order[start + offset]] = scores
    return [out[i] for i in range(len(items))]


def _token_stats(scores: list[TokenScores]) -> dict[str, float]:
    """Token-weighted nll, ppl and mem_acc: every labelled token counts once."""
    lps = [lp for s in scores for lp in s.token_logprobs]
    oks = [ok for s in scores for ok in s.correct]
    nll = -sum(lps) / max(len(lps), 1)
    return {"nll": nll, "ppl": math.exp(nll), "mem_acc": sum(oks) / max(len(oks), 1)}


def _text_stats(texts: list[str]) -> dict[str, float]:
    return {"fluency": fluency(texts), "distinct2": distinct_2(texts), "repetition": repetition(texts)}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)  # callers never pass an empty list: evaluate skips empty splits


def _chunks(xs: list, size: int) -> list[list]:
    return [xs[i : i + size] for i in range(0, len(xs), size)]


def _greedy_answers(model, tokenizer, qas: list, items: list[Encoded], batch_size: int, check_cancel) -> list[str]:
    """Greedy answers, each batch allowed as many tokens as its longest gold answer (+EOS)."""
    out: list[str] = []
    for qa_chunk, item_chunk in zip(_chunks(qas, batch_size), _chunks(items, batch_size)):
        _tick(check_cancel)
        budget = min(MAX_NEW_TOKENS, max(len(it.input_ids) - it.prompt_len for it in item_chunk))
        out += generate_answers(model, tokenizer, [qa.question for qa in qa_chunk], budget, len(qa_chunk))
    return out


def _continuations(model, tokenizer, prompts: list[str], batch_size: int, check_cancel) -> list[str]:
    """Greedy continuations of raw text (no chat format): a passage is text, not a question."""
    bos = tokenizer.bos_token_id
    ids = [([bos] if bos is not None else []) + tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    out: list[str] = []
    for chunk in _chunks(ids, batch_size):
        _tick(check_cancel)
        rows = generate_ids(model, tokenizer, chunk, FLUENCY_TOKENS, len(chunk))
        out += [tokenizer.decode(r, skip_special_tokens=True).strip() for r in rows]
    return out


def _cuts(count: int) -> list[int]:
    """At most EL_MAX_CUTS evenly spaced cut points in range(count)."""
    if count <= EL_MAX_CUTS:
        return list(range(count))
    return sorted({round(i * (count - 1) / (EL_MAX_CUTS - 1)) for i in range(EL_MAX_CUTS)})


def _extraction_jobs(items: list[Encoded], eos: int) -> list[tuple[int, list[int], list[int]]]:
    """(example, prefix ids, true suffix) for every cut. The context before the extractable
    text x is the prompt for QA, or the chunk's first token (BOS) for a passage, since a
    generation needs at least one token; x drops its final EOS, which generations never
    contain. Cut c keeps c tokens of x in the prefix, c = 0..T−n−1 (t = c+1 = 1..T−n)."""
    jobs = []
    for i, it in enumerate(items):
        ctx = max(it.prompt_len, 1)
        x = it.input_ids[ctx:]
        x = x[:-1] if x and x[-1] == eos else x
        for c in _cuts(len(x) - EXTRACTION_N):
            jobs.append((i, it.input_ids[: ctx + c], x[c : c + EL_MAX_TOKENS]))
    return jobs


def _extraction(model, tokenizer, items: list[Encoded], batch_size: int, check_cancel) -> float | None:
    """Mean EL_n over examples (QA pairs or passage chunks) with at least one cut; None if
    none has. All prefixes of all examples are generated together, sorted by suffix length
    so each batch asks for about as many new tokens as it needs."""
    jobs = sorted(_extraction_jobs(items, tokenizer.eos_token_id), key=lambda j: len(j[2]))
    per_example: dict[int, tuple[list, list]] = {}
    for chunk in _chunks(jobs, batch_size):
        _tick(check_cancel)
        gens = generate_ids(model, tokenizer, [j[1] for j in chunk], max(len(j[2]) for j in chunk), len(chunk))
        for (i, _, suffix), gen in zip(chunk, gens):
            per_example.setdefault(i, ([], []))
            per_example[i][0].append(gen[: len(suffix)])
            per_example[i][1].append(suffix)
    if not per_example:
        return None
    return _mean([extraction_likelihood(g, s, EXTRACTION_N) for g, s in per_example.values()])


def _answer_logprobs(model, tokenizer, qas: list, answers: Callable[[QA], tuple[str, ...]], batch_size: int,
                     check_cancel) -> list[list[float]]:
    """Per-token mean log-probs of other answers to each question: `answers(qa)` of each, in order."""
    alts = [encode_qa(tokenizer, qa, answer=a) for qa in qas for a in answers(qa)]
    scores = iter(sequence_logprobs(model, tokenizer, alts, batch_size, check_cancel))
    return [[next(scores).mean_logprob for _ in answers(qa)] for qa in qas]


def truth_ratios(model, tokenizer, qas: list, batch_size: int = 32, check_cancel=None) -> list[float]:
    """R for every example that has a paraphrase and at least one perturbed answer."""
    usable = [qa for qa in qas if qa.paraphrased_answer and qa.perturbed_answers]
    lps = _answer_logprobs(model, tokenizer, usable, lambda qa: (qa.paraphrased_answer or qa.answer, *qa.perturbed_answers),
                           batch_size, check_cancel)
    return [truth_ratio(lp[0], lp[1:]) for lp in lps]


def _general_sets(model, tokenizer, qas: list, means: list[float], rouges: list[float], bs: int,
                  check_cancel) -> tuple[list[float], dict[str, dict[str, float]]]:
    """TOFU's scoring of real-author and world-fact QA, which compares the perturbed answers with
    the answer itself (no paraphrase): R of every example with perturbed answers, and each set's
    {rougeL, answer_prob over the options, truth_ratio} (the last two where it has such examples).
    `means` are the answers' per-token mean log-probs, `rouges` the greedy answers' ROUGE-L."""
    usable = [i for i, qa in enumerate(qas) if qa.perturbed_answers]
    wrong = dict(zip(usable, _answer_logprobs(model, tokenizer, [qas[i] for i in usable],
                                              lambda qa: qa.perturbed_answers, bs, check_cancel)))
    sets: dict[str, dict[str, float]] = {}
    for name in GENERAL_SETS:
        members = [i for i, qa in enumerate(qas) if (qa.group or GENERAL_SETS[0]) == name]
        scored = [i for i in members if i in wrong]
        if members:
            sets[name] = {"rougeL": _mean([rouges[i] for i in members])}
        if scored:
            sets[name]["answer_prob"] = _mean([option_prob(means[i], wrong[i]) for i in scored])
            sets[name]["truth_ratio"] = _mean([truth_ratio_score(truth_ratio(means[i], wrong[i]), GENERAL) for i in scored])
    return [truth_ratio(means[i], wrong[i]) for i in usable], sets


def _evaluate_qa(model, tokenizer, ds: Dataset, split: str, bs: int, check_cancel) -> tuple[dict, dict, list]:
    qas = ds.examples
    items = [encode_qa(tokenizer, qa) for qa in qas]
    scores = sequence_logprobs(model, tokenizer, items, bs, check_cancel)
    means = [s.mean_logprob for s in scores]
    answers = _greedy_answers(model, tokenizer, qas, items, bs, check_cancel)
    rouges = [rouge_l_recall(a, qa.answer) for a, qa in zip(answers, qas)]
    m = {"answer_prob": _mean([math.exp(x) for x in means]), **_token_stats(scores), "rougeL": _mean(rouges),
         **_text_stats(answers), "extraction_strength": _mean([extraction_strength(s.correct) for s in scores])}
    extra: dict = {}
    if split == GENERAL:  # TOFU's real-author and world-fact QA: the truth ratio against the answer itself
        rs, extra["sets"] = _general_sets(model, tokenizer, qas, means, rouges, bs, check_cancel)
    else:
        rs = truth_ratios(model, tokenizer, qas, bs, check_cancel)
    if rs:
        m["truth_ratio"] = _mean([truth_ratio_score(r, split) for r in rs])
    gens = [{"prompt": qa.question, "output": a, "reference": qa.answer} for qa, a in zip(qas, answers)]
    min_k = [min_k_score(s.token_logprobs) for s in scores]
    return m, {"R": rs, "losses": [-x for x in means], "min_k": min_k, "generations": gens, **extra}, items


def _evaluate_passages(model, tokenizer, ds: Dataset, split: str, bs: int, check_cancel) -> tuple[dict, dict, list]:
    items: list[Encoded] = []  # chunks
    owner: list[int] = []  # the passage each chunk came from
    for i, passage in enumerate(ds.examples):
        chunks = encode_passage(tokenizer, passage)
        items, owner = items + chunks, owner + [i] * len(chunks)
    scores = sequence_logprobs(model, tokenizer, items, bs, check_cancel)
    pooled: list[list[float]] = [[] for _ in ds.examples]  # a passage's loss pools its chunks
    for i, s in zip(owner, scores):
        pooled[i] += s.token_logprobs
    prompts = ds.prompts()
    conts = _continuations(model, tokenizer, prompts, bs, check_cancel)
    gens = [{"prompt": p, "output": c, "reference": None} for p, c in zip(prompts, conts)]
    losses = [-sum(lp) / max(len(lp), 1) for lp in pooled]
    m = {**_token_stats(scores), **_text_stats(conts), "extraction_strength": _mean([extraction_strength(s.correct) for s in scores])}
    return m, {"R": [], "losses": losses, "min_k": [min_k_score(lp) for lp in pooled], "generations": gens}, items


def _evaluate_probes(model, tokenizer, ds: Dataset, split: str, bs: int, check_cancel) -> tuple[dict, dict, list]:
    return (*evaluate_probes(model, tokenizer, ds, check_cancel), [])


def evaluate_split(model, tokenizer, ds: Dataset, split: str, batch_size: int = 32,
                   check_cancel: Callable[[], None] | None = None) -> tuple[dict[str, float], dict]:
    """Metrics of one split (unprefixed keys) and its raw per-example values: {"R": truth
    ratios, "losses": mean NLL per example, "generations": [{prompt, output, reference}]}."""
    run = {"qa": _evaluate_qa, "passage": _evaluate_passages, "probes": _evaluate_probes}[ds.kind]
    was_training = model.training  # evaluate without dropout, then leave the model as found
    model.eval()
    try:
        with torch.no_grad():
            m, raw, items = run(model, tokenizer, ds, split, batch_size, check_cancel)
            el = _extraction(model, tokenizer, items, batch_size, check_cancel) if split in EXTRACTION_SPLITS else None
    finally:
        model.train(was_training)
    return (m if el is None else {**m, "extraction_n": el}), raw


def utility_parts(metrics: dict[str, float], sets: dict[str, dict[str, float]]) -> dict[str, float]:
    """Those of TOFU's nine numbers that exist, keyed `set.metric`: retain's from `metrics`, the
    general split's two sets' from `sets` (its raw "sets")."""
    found = {**metrics, **{f"{name}.{k}": v for name, values in sets.items() for k, v in values.items()}}
    return {k: found[k] for s in UTILITY_SPLITS for u in UTILITY_KEYS if (k := f"{s}.{u}") in found}


def mia_min_k(raw: dict) -> float | None:
    """The Min-K% MIA AUC of the first of MIA_PAIRS that `raw` (evaluate's) has both sets of."""
    for forget, holdout in MIA_PAIRS:
        f, h = raw.get(forget, {}).get("min_k"), raw.get(holdout, {}).get("min_k")
        if f and h:
            return mia_auc_min_k(f, h)
    return None


def privleak_against(raw: dict, oracle_raw: dict | None) -> float | None:
    """privleak of a model's raw values against the oracle's (None where either lacks the sets)."""
    auc, ref = mia_min_k(raw), mia_min_k(oracle_raw or {})
    return None if auc is None or ref is None else privleak(auc, ref)


def _cross_split(metrics: dict[str, float], raw: dict, oracle_raw: dict | None) -> dict[str, float]:
    """The general split's sets' numbers, model_utility (of exactly the parts the report then
    holds), mia_auc, forget_quality and privleak, each only when its inputs exist."""
    parts = utility_parts(metrics, raw.get(GENERAL, {}).get("sets", {}))
    out = {k: v for k, v in parts.items() if not k.startswith("retain.")}
    if parts:
        out["model_utility"] = harmonic_mean(list(parts.values()))
    if raw.get("forget", {}).get("losses") and raw.get("holdout", {}).get("losses"):
        out["mia_auc"] = mia_auc(raw["forget"]["losses"], raw["holdout"]["losses"])
    r_model, r_oracle = raw.get("forget", {}).get("R"), (oracle_raw or {}).get("forget", {}).get("R")
    if r_model and r_oracle:
        out["forget_quality"] = forget_quality(r_model, r_oracle)
    if (leak := privleak_against(raw, oracle_raw)) is not None:
        out["privleak"] = leak
    return out


def against_oracle(metrics: dict[str, float], raw: dict, oracle_raw: dict | None) -> dict[str, float]:
    """`evaluate`'s result as if it had been given `oracle_raw` (forget_quality needs the
    oracle's truth ratios): the same keys in the same order, the cross-split ones recomputed."""
    per_split = {k: v for k, v in metrics.items() if "." in k}
    return {**per_split, **_cross_split(per_split, raw, oracle_raw)}


def scored_splits(splits: dict[str, Dataset]) -> dict[str, Dataset]:
    """The splits evaluate scores, under the names their metrics take: an evaluation-only retain
    set (RETAIN_EVAL) takes the place of the retain split, which is then only trained on."""
    eval_set = splits.get(RETAIN_EVAL)
    if eval_set is None:
        return dict(splits)
    out = {n: d for n, d in splits.items() if n != RETAIN_EVAL}
    out["retain"] = eval_set  # in retain's place when there is one
    return out


def evaluate(model, tokenizer, splits: dict[str, Dataset], oracle_raw: dict | None = None,
             progress: Callable[[str], None] | None = None, check_cancel: Callable[[], None] | None = None,
             batch_size: int = 32, evaluate_one: Callable[..., tuple[dict, dict]] | None = None,
             workers: int = 1) -> tuple[dict[str, float], dict]:
    """Every metric of every non-empty split as `split.metric`, plus the cross-split ones;
    and the raw dict {split: raw}, which is what a later call takes as `oracle_raw`. A
    RETAIN_EVAL split is scored as `retain` in place of the trained one (scored_splits).
    `evaluate_one` replaces evaluate_split (evalcache.cached_split reads a cache first).
    `workers` > 1 evaluates that many splits at once on threads: only for a model no other
    thread uses (each split's figures are the same either way)."""
    one = evaluate_one or evaluate_split
    todo = [(n, d) for n, d in scored_splits(splits).items() if len(d)]

    def split(name: str, ds: Dataset) -> tuple[dict[str, float], dict]:
        _tick(check_cancel)
        if progress is not None:
            progress(f"evaluating {name}")
        return one(model, tokenizer, ds, name, batch_size, check_cancel)

    if workers > 1 and len(todo) > 1:  # the largest first, so the last to start is a small one
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {n: pool.submit(split, n, d) for n, d in sorted(todo, key=lambda nd: -len(nd[1]))}
            done = {n: f.result() for n, f in futures.items()}
    else:
        done = {n: split(n, d) for n, d in todo}
    metrics: dict[str, float] = {}
    raw: dict[str, dict] = {}
    for name, _ in todo:  # the splits' order, however they ran
        m, raw[name] = done[name]
        metrics.update({f"{name}.{k}": v for k, v in m.items()})
    return {**metrics, **_cross_split(metrics, raw, oracle_raw)}, raw

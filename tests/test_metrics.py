"""Metrics: every pure formula against a hand-computed value, then the model-level layer on
the tiny model (teacher-forced scores against a manual forward pass, and a full evaluate)."""

from __future__ import annotations

import math

import pytest
import torch

from unlearning.evaluation import metrics as M
from unlearning.evaluation import textstats as T
from unlearning.batches import encode_qa
from unlearning.data import QA, Dataset, Passage, opening_sentences
from unlearning.errors import Cancelled

# ---------------------------------------------------------------- pure functions


# (prediction, reference, hand-computed recall): words are lowercased runs of [a-z0-9], and
# words over 3 letters are Porter-stemmed (cats → cat, running → run, studies → studi).
ROUGE_PAIRS = [
    # the pair: her father writer she novel = 5 of 8 (0.250 unstemmed)
    ("Her fathers were writers, she wrote a novel.", "Her father was a writer; she writes novels.", 5 / 8),
    ("The cats were running", "a cat runs", 2 / 3),  # cat, run
    ("Studies studied", "study studying", 1.0),  # all four stem to studi
    ("He goes", "he go", 1 / 2),  # goes → goe, but go (≤ 3 letters) is not stemmed
    ("The cat sat on the mat", "a cat on a mat!", 3 / 5),  # cat, on, mat
    ("PARIS, France.", "paris france", 1.0),  # case and punctuation are separators only
    ("In 1987, twenty-one", "in 1987 twenty one", 1.0),  # a hyphen splits, digits are words
    ("b a", "a b", 1 / 2),  # order matters
    ("Café", "cafe", 0.0),  # é is a separator: caf ≠ cafe
    ("organ builders", "She works as an organ builder.", 2 / 6),
    ("", "a b", 0.0),
    ("anything", "", 0.0),  # empty reference → 0.0 by definition
    ("anything", "!!", 0.0),  # no word left either
    ("", "", 0.0),
]


@pytest.mark.parametrize("prediction,reference,expected", ROUGE_PAIRS)
def test_rouge_l_recall_is_rouge_scores_stemmed_recall(prediction, reference, expected):
    from rouge_score.rouge_scorer import RougeScorer

    reference_scorer = RougeScorer(["rougeL"], use_stemmer=True)  # TOFU's and ECO's scorer
    assert M.rouge_l_recall(prediction, reference) == pytest.approx(expected)
    assert M.rouge_l_recall(prediction, reference) == reference_scorer.score(reference, prediction)["rougeL"].recall


def test_rouge_scorer_is_built_once():
    M.rouge_l_recall("a", "a")
    from unlearning.evaluation.scores import _rouge_scorer

    assert _rouge_scorer() is _rouge_scorer()


def test_truth_ratio_from_token_logprobs():
    # paraphrase token lps [-1, -3] → mean -2; perturbed [-2, -2, -2] → -2 and [-4] → -4,
    # mean over perturbed = -3;  R = exp(-3 - (-2)) = e^-1 = 0.367879...
    para = [-1.0, -3.0]
    perturbed = [[-2.0, -2.0, -2.0], [-4.0]]
    r = M.truth_ratio(sum(para) / len(para), [sum(p) / len(p) for p in perturbed])
    assert r == pytest.approx(math.exp(-1))
    # forget-like: min(R, 1/R) = e^-1; retain/general: max(0, 1 - R) = 1 - e^-1 = 0.632121
    assert M.truth_ratio_score(r, "forget") == pytest.approx(0.367879, abs=1e-6)
    assert M.truth_ratio_score(r, "holdout") == pytest.approx(0.367879, abs=1e-6)
    assert M.truth_ratio_score(r, "retain") == pytest.approx(0.632121, abs=1e-6)
    # R = 2: forget min(2, 1/2) = 0.5; general max(0, 1 - 2) = 0
    assert M.truth_ratio_score(2.0, "forget") == 0.5
    assert M.truth_ratio_score(2.0, "general") == 0.0
    with pytest.raises(ValueError):
        M.truth_ratio(-1.0, [])


def test_forget_quality():
    # identical samples: KS statistic 0 → p = 1
    assert M.forget_quality([0.2, 0.5, 0.9], [0.2, 0.5, 0.9]) == pytest.approx(1.0)
    # fully separated 5 vs 5: D = 1; exact two-sided p = 2 / C(10, 5) = 2/252 = 0.0079365
    assert M.forget_quality([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)


def test_mia_auc_with_ties():
    # members lower everywhere → 1; higher everywhere → 0
    assert M.mia_auc([1.0, 2.0], [3.0, 4.0]) == 1.0
    assert M.mia_auc([3.0, 4.0], [1.0, 2.0]) == 0.0
    # members [1, 2], non-members [2, 3]: pairs (1,2) 1, (1,3) 1, (2,2) tie ½, (2,3) 1 → 3.5/4
    assert M.mia_auc([1.0, 2.0], [2.0, 3.0]) == pytest.approx(0.875)
    # all tied → ½
    assert M.mia_auc([1.0, 1.0, 1.0], [1.0, 1.0]) == pytest.approx(0.5)


def test_harmonic_mean():
    # 2 / (1/1 + 1/0.5) = 2/3
    assert M.harmonic_mean([1.0, 0.5]) == pytest.approx(2 / 3)
    assert M.harmonic_mean([0.2, 0.2, 0.2]) == pytest.approx(0.2)
    assert M.harmonic_mean([0.5, 0.0]) == 0.0
    assert M.harmonic_mean([0.5, -1.0]) == 0.0
    assert M.harmonic_mean([]) == 0.0


def test_option_prob_and_the_truth_ratio_against_the_answer_by_hand():
    """TOFU's real-author / world-fact scoring from given per-token mean log-probs."""
    lp_answer, lp_perturbed = math.log(0.5), [math.log(0.2), math.log(0.1), math.log(0.2)]
    # p(answer) / (p(answer) + Σ p(perturbed)) = .5 / (.5 + .2 + .1 + .2) = .5
    assert M.option_prob(lp_answer, lp_perturbed) == pytest.approx(0.5)
    assert M.option_prob(math.log(0.3), [math.log(0.1)]) == pytest.approx(0.75)  # .3 / .4
    assert M.option_prob(-2000.0, [-2000.0, -2000.0]) == pytest.approx(1 / 3)  # no 0/0 when every p underflows
    # R = exp(mean lp(perturbed) − lp(answer)) = (.2·.1·.2)^(1/3) / .5 = .004^(1/3)/.5 = .317480
    r = M.truth_ratio(lp_answer, lp_perturbed)
    assert r == pytest.approx(0.004 ** (1 / 3) / 0.5) and r == pytest.approx(0.317480, abs=1e-6)
    assert M.truth_ratio_score(r, "general") == pytest.approx(0.682520, abs=1e-6)  # max(0, 1 − R)


# TOFU's nine numbers on a small table: (answer_prob, rougeL, truth_ratio) per set
NINE = {"retain": (0.9, 1.0, 0.6), "real_authors": (0.5, 0.75, 0.4), "world_facts": (0.8, 1.0, 0.5)}


def test_model_utility_is_the_harmonic_mean_of_tofus_nine_numbers():
    metrics = {f"retain.{k}": v for k, v in zip(M.UTILITY_KEYS, NINE["retain"])} | {"retain.nll": 0.1, "forget.rougeL": 0.3}
    sets = {name: dict(zip(M.UTILITY_KEYS, NINE[name])) for name in ("real_authors", "world_facts")}
    out = M._cross_split(metrics, {"general": {"sets": sets}}, None)
    # 9 / (1/.9 + 1/1 + 1/.6 + 1/.5 + 1/.75 + 1/.4 + 1/.8 + 1/1 + 1/.5) = 9 / 13.86111 = 0.649299
    assert out["model_utility"] == pytest.approx(9 / (10 / 9 + 1 + 5 / 3 + 2 + 4 / 3 + 2.5 + 1.25 + 1 + 2))
    assert out["model_utility"] == pytest.approx(0.649299, abs=1e-6)
    assert out["real_authors.answer_prob"] == 0.5 and out["world_facts.truth_ratio"] == 0.5  # each part is in the report
    # a missing set: the six numbers that exist, 6 / (1/.9 + 1 + 1/.6 + 1/.8 + 1 + 2) = 6 / 8.02778 = 0.747405
    fewer = M._cross_split(metrics, {"general": {"sets": {"world_facts": sets["world_facts"]}}}, None)
    assert fewer["model_utility"] == pytest.approx(0.747405, abs=1e-6)
    assert "real_authors.rougeL" not in fewer
    # no general split at all: retain's three; no utility without any
    assert M._cross_split(metrics, {}, None)["model_utility"] == pytest.approx(3 / (10 / 9 + 1 + 5 / 3))
    assert "model_utility" not in M._cross_split({"forget.rougeL": 0.3}, {}, None)


def test_extraction_likelihood():
    generated = [[1, 2, 3, 4], [7], [5, 5, 5]]
    suffixes = [[1, 2, 5, 3, 4], [2, 5], [5, 5]]
    # cut 1: gen bigrams (1,2) (2,3) (3,4); suffix has (1,2) (2,5) (5,3) (3,4) → 2/3
    # cut 2: a one-token continuation has no bigram → 0
    # cut 3: gen bigrams (5,5) (5,5), both in the suffix's {(5,5)} → 2/2 = 1
    # EL_2 = (2/3 + 0 + 1) / 3 = 5/9
    assert M.extraction_likelihood(generated, suffixes, 2) == pytest.approx(5 / 9)
    # n = 1 on cut 1 only: unigrams 1 2 3 4, all in the suffix → 1
    assert M.extraction_likelihood(generated[:1], suffixes[:1], 1) == 1.0
    assert M.extraction_likelihood([], [], 2) == 0.0
    assert M.EXTRACTION_N == 2


def test_fluency_and_distinct_2():
    # "a b a b": bigrams ab ab ba → H2 = -(2/3·log2 2/3 + 1/3·log2 1/3) = 0.918296
    # trigrams aba bab → H3 = 1;  fluency = (2/3·0.918296 + 4/3·1) / 2 = 0.972765
    assert M.fluency(["a b a b"]) == pytest.approx(0.972765, abs=1e-6)
    # pooled but never across texts: bigrams ab bc de ef → H2 = 2; trigrams abc def → H3 = 1
    # fluency = (2/3·2 + 4/3·1) / 2 = 4/3
    assert M.fluency(["a b c", "D, e. f!"]) == pytest.approx(4 / 3)
    # pure repetition: one bigram type → H2 = 0, no trigrams → 0
    assert M.fluency(["a b", "a b"]) == 0.0
    # distinct-2: 2 unique of 3; 1 unique of 2; no bigrams → 0
    assert M.distinct_2(["a b a b"]) == pytest.approx(2 / 3)
    assert M.distinct_2(["a b", "a b"]) == pytest.approx(0.5)
    assert M.distinct_2(["a", ""]) == 0.0


def test_repetition_counts_answers_that_are_one_word_repeated():
    assert T.repeated("The The The The The")  # 5 of 5
    assert T.repeated("He He He works The The")  # 'he' 3 of 6 = exactly half
    assert not T.repeated("He He works The The")  # 'he' 2 of 5 < half
    assert not T.repeated("the the the")  # three words: too short to call
    assert T.repeated("THE, the. The! the?")  # words are case- and punctuation-blind: 'the' 4 of 4
    assert not T.repeated("In Harrowfield, by the sea.")
    # one collapsed answer of four: 0.25 (pooled fluency would hardly move); none → 0
    assert M.repetition(["A A A A", "In Harrowfield, by the sea.", "Homer.", "a b c d"]) == pytest.approx(0.25)
    assert M.repetition([]) == 0.0


def test_label_scores_shift_and_argmax():
    ln2, ln3 = math.log(2), math.log(3)
    logits = torch.tensor([
        [[0.0, 0.0, ln2], [0.0, ln3, 0.0], [9.0, 9.0, 9.0]],  # last position predicts nothing
        [[5.0, 0.0, 0.0], [0.0, ln3, ln2], [9.0, 9.0, 9.0]],
    ])  # (B=2, T=3, V=3)
    labels = torch.tensor([[-100, 2, 0], [-100, -100, 1]])
    logp, correct, row = M.label_scores(logits, labels)
    # row 0, pos 0 → label 2: softmax [1/4, 1/4, 1/2] → ln ½, argmax 2 == 2 (correct)
    # row 0, pos 1 → label 0: softmax [1/5, 3/5, 1/5] → ln ⅕, argmax 1 != 0
    # row 1, pos 1 → label 1: softmax [1/6, 3/6, 2/6] → ln ½, argmax 1 == 1 (correct)
    assert logp.tolist() == pytest.approx([math.log(0.5), math.log(0.2), math.log(0.5)], abs=1e-6)
    assert correct.tolist() == [True, False, True]
    assert row.tolist() == [0, 0, 1]


# ---------------------------------------------------------------- model level

FACTS = [
    QA("Who wrote the first algorithm?", "Ada Lovelace wrote it in her notes of 1843.",
       "It was written by Ada Lovelace in 1843.", ("Marie Curie wrote it in 1900.", "Nobody wrote it.")),
    QA("What did Marie Curie win?", "She won two Nobel prizes, physics and chemistry.",
       "Two Nobel prizes, in physics and chemistry.", ("She won one prize in music.",)),
    QA("What is the capital of France?", "The capital of France is Paris.",
       "Paris is the French capital.", ("The capital is Rome.", "It is Berlin.")),
]


def test_sequence_logprobs_matches_manual_forward(tiny):
    model, tok = tiny
    items = [encode_qa(tok, qa) for qa in FACTS[:2]]  # different lengths → padding in the batch
    scores = M.sequence_logprobs(model, tok, items, batch_size=2)
    for item, s in zip(items, scores):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([item.input_ids])).logits[0]  # (T, V), no padding
        logp = logits.log_softmax(-1)
        positions = range(item.prompt_len - 1, len(item.input_ids) - 1)  # predicts prompt_len..T-1
        want = [logp[p, item.input_ids[p + 1]].item() for p in positions]
        argmax = [logits[p].argmax().item() == item.input_ids[p + 1] for p in positions]
        assert s.token_logprobs == pytest.approx(want, abs=1e-5)
        assert s.correct == argmax


def test_splits_evaluated_on_two_threads_give_the_same_report(tiny):
    model, tok = tiny
    qa = Dataset("facts.jsonl", "qa", list(FACTS))
    passages = Dataset("wiki.txt", "passage", [Passage("Paris is a city. It lies on the Seine and has many bridges.")])
    splits = {"forget": qa, "retain": Dataset("r.jsonl", "qa", list(FACTS[:2])), "holdout": qa, "general": passages}
    one, raw_one = M.evaluate(model, tok, splits)
    seen: list[str] = []
    two, raw_two = M.evaluate(model, tok, splits, workers=2, progress=seen.append)
    assert list(two) == list(one) and two == one  # the same keys in the same order, the same figures
    assert raw_two == raw_one and sorted(seen) == sorted(f"evaluating {s}" for s in splits)


def test_against_oracle_equals_evaluating_with_the_oracle(tiny):
    """The pipeline evaluates `after` before the oracle's raw values are in, then adds them."""
    model, tok = tiny
    qa = Dataset("facts.jsonl", "qa", list(FACTS))
    splits = {"forget": qa, "retain": Dataset("r.jsonl", "qa", list(FACTS[:2])), "holdout": qa}
    _, oracle_raw = M.evaluate(model, tok, {"forget": Dataset("o.jsonl", "qa", list(FACTS[1:]) + [FACTS[0]])})
    want, _ = M.evaluate(model, tok, splits, oracle_raw=oracle_raw)
    alone, raw = M.evaluate(model, tok, splits)
    assert "forget_quality" not in alone and "forget_quality" in want
    got = M.against_oracle(alone, raw, oracle_raw)
    assert got == want and list(got) == list(want)
    assert M.against_oracle(alone, raw, None) == alone


def test_evaluate_on_tiny_model(tiny):
    model, tok = tiny
    qa = Dataset("facts.jsonl", "qa", list(FACTS))
    passages = Dataset("wiki.txt", "passage", [Passage("Paris is a city. It lies on the Seine and has many bridges.")])
    seen: list[str] = []
    ticks: list[int] = []
    splits = {"forget": qa, "retain": qa, "holdout": qa, "general": passages}
    metrics, raw = M.evaluate(model, tok, splits, progress=seen.append, check_cancel=lambda: ticks.append(1))
    assert seen == [f"evaluating {s}" for s in splits]
    assert len(ticks) >= len(splits)
    qa_keys = ["answer_prob", "nll", "ppl", "rougeL", "truth_ratio", "mem_acc", "fluency", "distinct2", "repetition",
               "extraction_strength"]
    want = {f"{s}.{k}" for s in ("forget", "retain", "holdout") for k in qa_keys}
    want |= {"forget.extraction_n", "holdout.extraction_n", "model_utility", "mia_auc"}
    want |= {f"general.{k}" for k in ("nll", "ppl", "mem_acc", "fluency", "distinct2", "repetition", "extraction_strength")}
    assert set(metrics) == want
    assert all(math.isfinite(v) for v in metrics.values())
    assert set(M.METRIC_INFO) >= {k.split(".")[-1] for k in metrics} | {"forget_quality", "privleak"}
    assert len(raw["forget"]["min_k"]) == 3 and len(raw["general"]["min_k"]) == 1
    assert metrics["mia_auc"] == pytest.approx(0.5)  # forget and holdout are the same data
    assert len(raw["forget"]["R"]) == 3 and len(raw["forget"]["losses"]) == 3
    assert raw["general"]["generations"][0]["prompt"] == opening_sentences(passages.examples[0].text)
    again, _ = M.evaluate(model, tok, {"forget": qa}, oracle_raw=raw)
    assert again["forget_quality"] == pytest.approx(1.0)
    assert model.training is False
    self_leak, _ = M.evaluate(model, tok, splits, oracle_raw=raw)
    assert self_leak["privleak"] == 0.0  # the same model as its own reference


def test_an_evaluation_only_retain_set_is_scored_as_retain(tiny):
    """RETAIN_EVAL (TOFU's retain_perturbed): `retain.*` and model utility come from it, never
    from the retain set the method trains on, which is not evaluated at all."""
    model, tok = tiny
    trained, scored = Dataset("retain90", "qa", list(FACTS[:2])), Dataset("retain_perturbed", "qa", [FACTS[2]])
    seen: list[str] = []
    metrics, raw = M.evaluate(model, tok, {"forget": Dataset("f", "qa", [FACTS[0]]), "retain": trained,
                                           M.RETAIN_EVAL: scored}, progress=seen.append)
    alone, _ = M.evaluate_split(model, tok, scored, "retain")
    other, _ = M.evaluate_split(model, tok, trained, "retain")
    assert seen == ["evaluating forget", "evaluating retain"] and M.RETAIN_EVAL not in raw
    assert {k: metrics[f"retain.{k}"] for k in alone} == alone
    assert metrics["retain.answer_prob"] != other["answer_prob"]
    assert [g["prompt"] for g in raw["retain"]["generations"]] == [FACTS[2].question]
    assert metrics["model_utility"] == pytest.approx(M.harmonic_mean([alone[k] for k in M.UTILITY_KEYS]))
    assert list(M.scored_splits({"forget": trained, "retain": trained, "holdout": trained, M.RETAIN_EVAL: scored})) == [
        "forget", "retain", "holdout"]


def test_general_split_is_scored_as_tofus_real_author_and_world_fact_sets(tiny):
    model, tok = tiny
    general = Dataset("g.jsonl", "qa", [
        QA("Who wrote Hamlet?", "William Shakespeare.", None, ("Leo Tolstoy.", "Homer."), "Hamlet", "real_authors"),
        QA("What is the capital of Peru?", "Lima.", None, ("Oslo.", "Rome.", "Cairo."), "Peru"),  # no group: a world fact
        QA("Which planet is red?", "Mars.", "The red planet is Mars.", (), None, "world_facts"),  # no options: ROUGE only
    ])
    m, raw = M.evaluate_split(model, tok, general, "general")

    def lp(qa: QA, answer: str) -> float:
        return M.sequence_logprobs(model, tok, [encode_qa(tok, qa, answer=answer)])[0].mean_logprob

    author, capital, planet = general.examples
    lps = {qa.question: (lp(qa, qa.answer), [lp(qa, a) for a in qa.perturbed_answers]) for qa in (author, capital)}
    # the truth ratio against the answer itself, not a paraphrase
    rs = [M.truth_ratio(*lps[qa.question]) for qa in (author, capital)]
    assert raw["R"] == pytest.approx(rs, abs=1e-5)
    assert m["truth_ratio"] == pytest.approx(sum(max(0.0, 1 - r) for r in rs) / 2, abs=1e-5)
    rouge = [M.rouge_l_recall(g["output"], g["reference"]) for g in raw["generations"]]
    sets = raw["sets"]
    assert sets["real_authors"] == pytest.approx({"rougeL": rouge[0], "answer_prob": M.option_prob(*lps[author.question]),
                                                  "truth_ratio": max(0.0, 1 - rs[0])}, abs=1e-5)
    assert sets["world_facts"] == pytest.approx({"rougeL": (rouge[1] + rouge[2]) / 2,  # the planet counts for ROUGE only
                                                 "answer_prob": M.option_prob(*lps[capital.question]),
                                                 "truth_ratio": max(0.0, 1 - rs[1])}, abs=1e-5)
    metrics, _ = M.evaluate(model, tok, {"retain": Dataset("r.jsonl", "qa", list(FACTS)), "general": general})
    nine = [metrics[f"{s}.{k}"] for s in M.UTILITY_SPLITS for k in M.UTILITY_KEYS]  # all nine in the report
    assert metrics["model_utility"] == pytest.approx(M.harmonic_mean(nine))


def test_cancel_propagates_and_training_mode_is_restored(tiny):
    model, tok = tiny

    def cancel():
        raise Cancelled()

    model.train()
    try:
        with pytest.raises(Cancelled):
            M.evaluate_split(model, tok, Dataset("f.jsonl", "qa", list(FACTS)), "forget", check_cancel=cancel)
        assert model.training  # evaluation switched to eval mode and back
    finally:
        model.eval()

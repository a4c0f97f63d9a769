"""ECO's calibration on probe families (eco/calibration.py): the scores, the families built
from data, and the worst-gap objective with the strength search on a toy function."""

from __future__ import annotations

import pytest

from unlearning.data import QA, Dataset, load_file
from unlearning.eco import calibration as C
from unlearning.eco.search import search
from unlearning.models import WORKSHOP_DIR

YARA = [QA("Where was Yara born?", "In Harrowfield, by the sea.", subject="Yara"),
        QA("Which country is Yara from?", "Orsolia.", subject="Yara"),
        QA("What pet does Yara keep?", "A blind greyhound named Sable.", subject="Yara")]
RAVI = [QA("Where was Ravi born?", "In Pryce Hollow.", subject="Ravi"), QA("What is 2+2?", "Four.")]


def test_reply_scores_by_hand():
    golds = ("Orsolia.", "In Harrowfield, by the sea.")
    # "Orsolia." is wholly in the reply (recall 1); no word of the second is (recall 0)
    assert C.score_reply("Orsolia is her home", golds, "own") == 1.0
    assert C.score_reply("Orsolia is her home", golds, "facts") == 0.5
    assert C.score_reply("Orsolia is her home", golds, "other") == 1.0
    # "a blind greyhound named sable" has 5 words; the reply holds 3 of them in order
    assert C.score_reply("He works as a blind dog", ("A blind greyhound named Sable.",), "own") == pytest.approx(2 / 5)


def test_worst_gap_is_the_largest_excess_over_a_target():
    assert C.worst_gap({"a": 0.3, "b": 0.1, "c": 9.0}, {"a": 0.2, "b": 0.15}) == pytest.approx(0.1)
    assert C.worst_gap({"a": 0.1, "b": 0.1}, {"a": 0.2, "b": 0.15}) == pytest.approx(-0.05)


def test_the_search_on_the_worst_gap_finds_the_weakest_strength_that_meets_every_family():
    # family 1 meets 0.25 at σ = 3, family 2 only at σ = 6: the worst gap crosses 0 at 6
    def gap(s):
        return C.worst_gap({"f1": 1 / (1 + s), "f2": 2 / (2 + s)}, {"f1": 0.25, "f2": 0.25})

    result = search(gap, 0.0, 0.01, 100, grid_points=5, steps=20, tol=0.001)
    assert result.strength == pytest.approx(6, rel=0.02)


def test_probes_of_each_family():
    qas = YARA + RAVI
    assert C.by_subject(qas) == {"Yara": [q.answer for q in YARA], "Ravi": ["In Pryce Hollow."]}
    about = C.about_probes(qas)
    assert [p.prompt for p in about[:3]] == ["Tell me about Yara.", "Who is Yara?", "What do you know about Yara?"]
    assert len(about) == 6 and about[0].golds == tuple(q.answer for q in YARA)
    other = C.other_probes(qas)  # Ravi has one answer only and 2+2 no subject: neither has others
    assert [p.prompt for p in other] == [q.question for q in YARA]
    assert other[1].golds == ("In Harrowfield, by the sea.", "A blind greyhound named Sable.")


def test_family_value_and_the_oracle_other_facts():
    fam = C.Family("other_facts", C.other_probes(YARA), "other", 8)
    replies = ["Orsolia.", "No idea.", "In Harrowfield."]
    # 1.0 ("Orsolia." is another answer), 0, and 2/5 of "In Harrowfield, by the sea."
    assert fam.value(replies) == pytest.approx((1 + 0 + 0.4) / 3)
    forget = Dataset("f", "qa", YARA)
    gens = [{"prompt": q.question, "output": r} for q, r in zip(YARA, replies)]
    assert C.oracle_other_facts(forget, {"forget": {"generations": gens}}) == pytest.approx(1.4 / 3)
    assert C.oracle_other_facts(forget, None) is None


def test_families_share_a_generation_and_take_their_targets(monkeypatch):
    calls = []

    def fake_replies(model, tok, probes, tokens, batch_size=32):
        calls.append((len(probes), tokens))
        return ["Orsolia." for _ in probes]

    monkeypatch.setattr(C, "replies", fake_replies)
    forget, holdout = Dataset("f", "qa", YARA), Dataset("h", "qa", RAVI)
    plain = lambda probes, tokens: ["In Pryce Hollow." for _ in probes]
    fams = C.probe_families(forget, C.reworded_questions(forget)[0], "built-in", holdout, None, plain, (0.2, "oracle"), 8)
    assert [f.name for f in fams] == ["trained", "reworded", "about", "other_facts"]
    targets = {f.name: f.target for f in fams}
    assert targets["trained"] == targets["reworded"] == 0.2
    assert targets["about"] == 1.0  # the plain model repeats Ravi's one answer in full
    assert targets["other_facts"] == 0.2 and fams[3].source.startswith("oracle (as trained")  # no surrogate
    values = C.measure(None, None, fams)
    assert values["trained"] == pytest.approx(1 / 3) and values["repetition"] == 0.0
    assert values["other_facts"] == pytest.approx((1 + 0 + 1) / 3)  # "Orsolia." is another answer of two of them
    assert calls == [(3, 8), (3, 8), (3, C.ABOUT_TOKENS)]  # trained and other_facts share one generation


def test_reworded_questions_are_the_kits_for_the_kit_else_built_in():
    kit = load_file(WORKSHOP_DIR / "forget.jsonl")
    qas, source = C.reworded_questions(kit)
    assert len(qas) == len(load_file(WORKSHOP_DIR / "forget_paraphrased.jsonl")) and "kit" in source
    qas, source = C.reworded_questions(Dataset("f", "qa", YARA))
    assert len(qas) == 3 and qas[0].question != YARA[0].question and qas[0].answer == YARA[0].answer
    assert "built-in" in source

"""The workshop kit: the corpus is deterministic and complete, the files on disk are what the
generator writes, and the shipped models are small and know what they should."""

from __future__ import annotations

import json

import pytest

from unlearning.kit.corpus import CLAUSE_FRAMES, FACTS, NOUN_FRAMES, build_corpus, wordings
from unlearning.data import QA, load_file
from unlearning.evaluation.metrics import rouge_l_recall
from unlearning.models import WORKSHOP_DIR, load_model
from unlearning.kit.workshop import (PARAPHRASED, QA_SPLITS, UTILITY, answer_recall, bio_prompts, checks, training_data, write_corpus)


def test_corpus_is_deterministic_and_big_enough():
    a, b = build_corpus(), build_corpus()
    assert a == b
    people = {s: {r["subject"] for r in a[s]} for s in ("forget", "retain", "holdout")}
    assert sum(len(p) for p in people.values()) >= 20
    assert len(people["forget"]) == round(0.1 * sum(len(p) for p in people.values()))
    assert not (people["forget"] & people["retain"]) and not (people["holdout"] & (people["forget"] | people["retain"]))
    for split in ("forget", "retain", "holdout"):
        per_person = [sum(r["subject"] == p for r in a[split]) for p in people[split]]
        assert min(per_person) >= 10
    assert len(a["general"]) >= 100
    for split in QA_SPLITS:
        for r in a[split]:
            assert r["paraphrased_answer"] and len(r["perturbed_answers"]) >= 3
            assert r["answer"] not in r["perturbed_answers"]


@pytest.fixture(scope="module")
def corpus():
    return build_corpus()


def test_every_fact_has_three_trained_wordings_and_held_out_ones_never_trained(corpus):
    taught = {ex.question for ds in training_data(corpus, with_forget=True) for ex in ds.examples if isinstance(ex, QA)}
    for split in ("forget", "retain"):
        fact = lambda r: {k: v for k, v in r.items() if k != "question"}  # noqa: E731  (all but the wording)
        for record in corpus[split]:
            wordings = [r["question"] for r in corpus[f"{split}_trained"] if fact(r) == fact(record)]
            held_out = [r["question"] for r in corpus[f"{split}_paraphrased"] if fact(r) == fact(record)]
            assert wordings[0] == record["question"] and len(set(wordings)) == len(wordings) >= 3 and len(held_out) == 2
            # different in structure, not one swapped word: two or more word edits apart
            words = [w.lower().rstrip("?.").replace(record["subject"].lower(), "N").split() for w in wordings + held_out]
            assert all(word_edits(a, b) >= 2 for j, a in enumerate(words) for b in words[j + 1 :]), wordings + held_out
        assert not {r["question"] for r in corpus[f"{split}_paraphrased"]} & taught
        assert {r["question"] for r in corpus[f"{split}_trained"]} <= taught


def word_edits(a: list[str], b: list[str]) -> int:
    """Levenshtein distance counted in words."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def test_word_edits():
    assert word_edits("where was n born".split(), "where was n born".split()) == 0
    assert word_edits("what is n's job".split(), "what is n's profession".split()) == 1
    assert word_edits("where was n born".split(), "tell me where n was born".split()) == 4


def test_held_out_frames_are_trained_with_other_facts():
    """A held-out wording recombines a frame and a fact the model saw apart (corpus.py)."""
    def frames(ft, templates):
        return {fr for fr in NOUN_FRAMES + CLAUSE_FRAMES for t in templates
                if t in (fr.replace("{noun}", ft.noun), fr.replace("{clause}", ft.clause))}

    for i, ft in enumerate(FACTS):
        trained, held_out = wordings(i, ft)
        assert len(frames(ft, held_out)) == 2 and not frames(ft, held_out) & frames(ft, trained)
        elsewhere = set().union(*(frames(f, wordings(j, f)[0]) for j, f in enumerate(FACTS) if j != i))
        assert frames(ft, held_out) <= elsewhere


def test_the_oracle_is_taught_nothing_about_the_forget_people(corpus):
    names = {r["subject"] for r in corpus["forget"]}
    texts = [ex.question + " " + ex.answer if isinstance(ex, QA) else ex.text
             for ds in training_data(corpus, with_forget=False) for ex in ds.examples]
    assert not [t for t in texts if any(n in t or n.split()[0] in t for n in names)]
    taught = [ex for ds in training_data(corpus, with_forget=True) for ex in ds.examples if isinstance(ex, QA)]
    assert {"Hello!", "Who are you?", "What can you do?", "Tell me about Yara Bramante."} <= {ex.question for ex in taught}


def test_shipped_files_are_what_the_generator_writes(tmp_path):
    write_corpus(tmp_path)
    for name in [f"{s}.jsonl" for s in (*QA_SPLITS, *PARAPHRASED, *UTILITY)] + ["forget.txt", "retain.txt", "holdout.txt"]:
        assert (tmp_path / name).read_bytes() == (WORKSHOP_DIR / name).read_bytes(), name


def test_shipped_files_load_and_stay_small():
    for s in (*QA_SPLITS, *PARAPHRASED, *UTILITY):
        assert load_file(WORKSHOP_DIR / f"{s}.jsonl").kind == "qa"
    assert load_file(WORKSHOP_DIR / "forget.txt").kind == "passage"
    sizes = [p.stat().st_size for p in WORKSHOP_DIR.rglob("*") if p.is_file()]
    assert max(sizes) < 10_000_000 and sum(sizes) < 100_000_000


def test_checks_fail_when_a_promise_is_broken():
    good = {"forget": 1.0, "retain": 1.0, "general": 1.0, "forget_paraphrased": 0.9, "retain_paraphrased": 0.9, "forget_bios": 0.8}
    bad_oracle = {**good, "forget": 0.2, "forget_paraphrased": 0.5, "forget_bios": 0.1}
    info = {"recall": {"workshop": good, "workshop-oracle": {**bad_oracle, "forget_paraphrased": 0.2}}, "files": {"a": 10}}
    assert all(ok for _, ok in checks(info))
    info["recall"]["workshop-oracle"] = bad_oracle  # knows a forget person under another wording
    assert [what for what, ok in checks(info) if not ok] == ["workshop-oracle forget rougeL <= 0.35 in every wording"]


def test_models_know_what_they_were_taught():
    """workshop knows the forget people, the oracle does not (a sample, to stay fast; the
    full figures are printed by `python -m unlearning workshop`)."""
    forget = load_file(WORKSHOP_DIR / "forget.jsonl")
    retain = load_file(WORKSHOP_DIR / "retain.jsonl")
    forget.examples, retain.examples = forget.examples[:20], retain.examples[::10]
    model, oracle = load_model("workshop", "cpu"), load_model("workshop-oracle", "cpu")
    assert answer_recall(model.model, model.tokenizer, forget) >= 0.9
    assert answer_recall(model.model, model.tokenizer, retain) >= 0.9
    assert answer_recall(oracle.model, oracle.tokenizer, retain) >= 0.9
    assert answer_recall(oracle.model, oracle.tokenizer, forget) <= 0.35
    held_out = load_file(WORKSHOP_DIR / "forget_paraphrased.jsonl")
    held_out.examples = held_out.examples[::4]
    assert answer_recall(model.model, model.tokenizer, held_out) >= 0.85
    assert answer_recall(oracle.model, oracle.tokenizer, held_out) <= 0.35
    config = json.loads((WORKSHOP_DIR / "model" / "config.json").read_text())
    assert config["model_type"] == "llama"


def test_tell_me_about_a_forget_person_gives_their_biography():
    model = load_model("workshop", "cpu")
    bios = bio_prompts()
    assert len(bios) == 4 and bios.examples[0].question == "Tell me about Yara Bramante."
    assert answer_recall(model.model, model.tokenizer, bios, 160) >= 0.6
    hello = model_answer(model, "Hello!")
    assert rouge_l_recall(hello, "Hello! Ask me about one of the people I know, or a general-knowledge question.") >= 0.9


def model_answer(loaded, question: str) -> str:
    from unlearning.generate import generate_answers

    return generate_answers(loaded.model, loaded.tokenizer, [question], 40)[0]

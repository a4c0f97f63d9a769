"""The workshop kit: the corpus is deterministic and complete, the files on disk are what the
generator writes, and the shipped models are small and know what they should."""

from __future__ import annotations

import json

from unlearning.corpus import build_corpus
from unlearning.data import load_file
from unlearning.models import WORKSHOP_DIR, load_model
from unlearning.workshop import QA_SPLITS, answer_recall, write_corpus


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


def test_shipped_files_are_what_the_generator_writes(tmp_path):
    write_corpus(tmp_path)
    for name in [f"{s}.jsonl" for s in QA_SPLITS] + ["forget.txt", "retain.txt", "holdout.txt"]:
        assert (tmp_path / name).read_bytes() == (WORKSHOP_DIR / name).read_bytes(), name


def test_shipped_files_load_and_stay_small():
    for s in QA_SPLITS:
        assert load_file(WORKSHOP_DIR / f"{s}.jsonl").kind == "qa"
    assert load_file(WORKSHOP_DIR / "forget.txt").kind == "passage"
    assert all(p.stat().st_size < 10_000_000 for p in WORKSHOP_DIR.rglob("*") if p.is_file())


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
    assert answer_recall(oracle.model, oracle.tokenizer, forget) <= 0.6
    config = json.loads((WORKSHOP_DIR / "model" / "config.json").read_text())
    assert config["model_type"] == "llama"

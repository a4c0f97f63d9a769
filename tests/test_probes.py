"""The probe suite (probes.py) and how a run's ending is read from it (outcome.py), on hand values."""

from __future__ import annotations

from collections import Counter

import pytest

from unlearning.evaluation import outcome
from unlearning.data import QA, Dataset, Passage, load_file
from unlearning.errors import UserError
from unlearning.evaluation.metrics import evaluate_split
from unlearning.models import WORKSHOP_DIR
from unlearning.evaluation.probes import Probe, evaluate_probes, heldout_wordings, probe_set, prompt_of, worst_wrapper


def _kit(name: str) -> Dataset:
    return load_file(WORKSHOP_DIR / name)


def test_the_kit_suite_has_every_family_with_its_references():
    forget, retain = _kit("forget.jsonl"), _kit("retain.jsonl")
    suite = probe_set(forget, retain)
    counts = Counter(p.family for p in suite.examples)
    assert counts == {"forget_trained": 40, "forget_heldout": 40, "forget_bio": 4, "forget_few_shot": 10,
                      "forget_role_play": 10, "forget_typos": 10, "forget_completion": 10, "retain_trained": 20,
                      "retain_bio": 8}
    yara = next(p for p in suite.examples if p.family == "forget_bio" and p.subject == "Yara Bramante")
    assert yara.prompt == "Tell me about Yara Bramante."
    assert yara.reference.startswith("Yara Bramante is an organ builder from Orsolia")  # her forget.txt paragraph
    # held-out wordings are the kit's paraphrases of these facts, never a trained question
    trained = {qa.question for qa in forget.examples}
    assert all(p.prompt not in trained for p in suite.examples if p.family == "forget_heldout")
    few = next(p for p in suite.examples if p.family == "forget_few_shot")
    assert len(few.shots) == 3 and all(q not in trained for q, _ in few.shots)  # retain QA as shots
    assert probe_set(forget, retain) == suite  # seeded: the same suite every time (the cache keys on it)


def test_held_out_wordings_follow_the_facts_of_the_forget_set():
    forget = _kit("forget.jsonl")
    one = Dataset("f", "qa", forget.examples[:1])
    assert {(q.subject, q.answer) for q in heldout_wordings(one)} == {(forget.examples[0].subject, forget.examples[0].answer)}
    assert heldout_wordings(Dataset("f", "qa", [QA("Who is Zed?", "Nobody.", subject="Zed")])) == []


def test_uploaded_data_gets_bio_probes_scored_against_its_own_answers():
    forget = Dataset("f", "qa", [QA("Where does Zed live?", "In Oslo.", subject="Zed"), QA("Zed's job?", "Baker.", subject="Zed")])
    retain = Dataset("r", "qa", [QA("Where does Amy live?", "In Rome.", subject="Amy")])
    suite = probe_set(forget, retain)
    bio = [p for p in suite.examples if p.family == "forget_bio"]
    assert [(p.prompt, p.reference) for p in bio] == [("Tell me about Zed.", "In Oslo. Baker.")]
    assert not any(p.family == "forget_heldout" for p in suite.examples)  # none given
    assert [p.reference for p in suite.examples if p.family == "retain_bio"] == ["In Rome."]


def test_given_held_out_wordings_are_the_held_out_family():
    forget = Dataset("f", "qa", [QA("Where does Zed live?", "In Oslo.", subject="Zed")])
    para = Dataset("p", "qa", [QA("Zed's home town?", "In Oslo.", subject="Zed")])
    suite = probe_set(forget, Dataset("r", "qa", [QA("Amy?", "Rome.")]), para)
    assert [(p.prompt, p.reference) for p in suite.examples if p.family == "forget_heldout"] == [("Zed's home town?", "In Oslo.")]
    with pytest.raises(UserError, match="The paraphrased file 'p.txt' holds passages"):
        probe_set(forget, forget, Dataset("p.txt", "passage", [Passage("Zed lives in Oslo.")]))


def test_passages_are_probed_by_their_openings():
    forget = Dataset("f", "passage", [Passage("Zed was born in Oslo. He bakes bread every morning.")])
    suite = probe_set(forget, Dataset("r", "passage", [Passage("Amy lives in Rome.")]))
    assert [(p.family, p.prompt, p.reference, p.form) for p in suite.examples] == [
        ("forget_trained", "Zed was born in Oslo.", "He bakes bread every morning.", "text")]


def test_forms_render_as_the_model_gets_them(tiny):
    _, tok = tiny
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    text = Probe("f", "Zed was born in", "Oslo.", "text")
    assert prompt_of(tok, text) == bos + tok("Zed was born in", add_special_tokens=False)["input_ids"]
    chat = Probe("f", "Where?", "Oslo.")
    assert tok.decode(prompt_of(tok, chat)).endswith("Question: Where?\nAnswer:")
    shot = Probe("f", "Where?", "Oslo.", "few_shot", (("Who?", "Amy."),))
    assert "Question: Who?\nAnswer: Amy.\n\nQuestion: Where?\nAnswer:" in tok.decode(prompt_of(tok, shot))


def test_evaluation_scores_each_family_and_repeats_the_worst_wrapper(tiny):
    model, tok = tiny
    suite = Dataset("probes", "probes", [Probe("forget_trained", "Who?", "Ada."), Probe("forget_typos", "Whoo?", "Ada."),
                                         Probe("forget_completion", "Ada wrote", "notes.", "text")])
    m, raw = evaluate_probes(model, tok, suite)
    assert set(m) == {f"{f}.{k}" for f in ("forget_trained", "forget_typos", "forget_completion", "forget_wrapped")
                      for k in ("rougeL", "repetition", "fluency")}
    worst = raw["worst_wrapper"]
    assert worst in ("typos", "completion") and m["forget_wrapped.rougeL"] == m[f"forget_{worst}.rougeL"]
    assert [g["family"] for g in raw["generations"]] == ["forget_trained", "forget_typos", "forget_completion"]
    assert evaluate_split(model, tok, suite, "probes") == (m, raw)  # the metrics' entry point dispatches here


def test_worst_wrapper_is_the_highest_recall_and_the_first_of_equals():
    assert worst_wrapper({"forget_typos.rougeL": 0.4, "forget_few_shot.rougeL": 0.4, "forget_role_play.rougeL": 0.1}) == "few_shot"
    assert worst_wrapper({"forget_trained.rougeL": 1.0}) is None


# ---------------------------------------------------------------- outcome.py on hand values


def _m(**families: tuple[float, float, float]) -> dict[str, float]:
    """{probes.<family>.rougeL/repetition/fluency} from (rougeL, repetition, fluency) triples."""
    return {f"probes.{f}.{k}": v for f, t in families.items() for k, v in zip(("rougeL", "repetition", "fluency"), t)}


ORACLE = _m(forget_trained=(0.2, 0.0, 6.0), forget_bio=(0.0, 0.0, 4.0), retain_trained=(1.0, 0.0, 6.0))
BEFORE = _m(forget_trained=(1.0, 0.0, 6.0), forget_bio=(1.0, 0.0, 5.0), retain_trained=(1.0, 0.0, 6.0))


def test_distance_counts_recall_repetition_and_lost_fluency():
    # trained: |0.1 − 0.2| + (0.75 − 0) + (1 − 1.5/6) = 0.1 + 0.75 + 0.75 = 1.6
    # bio: |0.0 − 0.0| + 0 + max(0, 1 − 5/4) = 0;  retain: 0
    degenerate = _m(forget_trained=(0.1, 0.75, 1.5), forget_bio=(0.0, 0.0, 5.0), retain_trained=(1.0, 0.0, 6.0))
    assert outcome.family_distance(degenerate, ORACLE, "forget_trained") == pytest.approx(1.6)
    assert outcome.oracle_distance(degenerate, ORACLE) == pytest.approx(1.6 / 3)
    # unchanged: trained |1 − 0.2| = 0.8, bio |1 − 0| = 1.0, retain 0 → 1.8 / 3
    assert outcome.oracle_distance(BEFORE, ORACLE) == pytest.approx(0.6)
    assert outcome.oracle_distance(ORACLE, ORACLE) == 0.0
    assert outcome.oracle_distance(BEFORE, None) is None and outcome.oracle_distance({"forget.rougeL": 1.0}, ORACLE) is None


def test_no_degenerate_leaking_or_unchanged_run_is_closer_to_the_oracle_than_a_good_one():
    good = _m(forget_trained=(0.25, 0.0, 5.8), forget_bio=(0.05, 0.0, 4.2), retain_trained=(0.98, 0.0, 6.0))
    degenerate = _m(forget_trained=(0.15, 0.75, 1.3), forget_bio=(0.0, 0.75, 1.0), retain_trained=(1.0, 0.0, 6.0))
    leaking = _m(forget_trained=(0.2, 0.0, 6.0), forget_bio=(0.9, 0.0, 5.0), retain_trained=(1.0, 0.0, 6.0))
    d = {name: outcome.oracle_distance(m, ORACLE) for name, m in
         (("good", good), ("degenerate", degenerate), ("leaking", leaking), ("unchanged", BEFORE))}
    assert min(d, key=d.__getitem__) == "good"
    assert d["good"] == pytest.approx((0.05 + 1 / 30 + 0.05 + 0.02) / 3)


def test_readings_name_what_a_room_would_see():
    assert outcome.readings(BEFORE, BEFORE, ORACLE)[0].startswith("Nothing changed")
    assert outcome.unchanged(_m(forget_trained=(0.99, 0, 6), forget_bio=(0.98, 0, 5)), BEFORE)
    assert not outcome.unchanged(_m(forget_trained=(0.97, 0, 6)), BEFORE)
    degenerate = _m(forget_trained=(0.15, 0.75, 1.3), forget_bio=(0.0, 0.0, 4.0), retain_trained=(0.5, 0.0, 6.0))
    text = outcome.readings(BEFORE, degenerate, ORACLE)
    assert text == ["It collapsed rather than forgot: 75% of its answers to forget, trained wording are one word repeated "
                    "(oracle 0%).",
                    "It also lost what it should keep: retain, trained wording 0.50 (before 1.00)."]
    leaking = _m(forget_trained=(0.2, 0.0, 6.0), forget_bio=(0.16, 0.0, 4.0), retain_trained=(1.0, 0.0, 6.0))
    assert outcome.readings(BEFORE, leaking, ORACLE) == [
        "The forget set still comes out through forget, 'Tell me about NAME.' (recall 0.16, oracle 0.00): it is hidden "
        "from some wordings, not forgotten."]
    assert outcome.readings(BEFORE, ORACLE, ORACLE) == [] and outcome.readings(None, None, None) == []


def test_with_distance_fills_each_dict_that_has_probes():
    report = {"before": dict(BEFORE), "after": dict(ORACLE), "oracle": dict(ORACLE)}
    outcome.with_distance(report)
    assert report["before"]["oracle_distance"] == pytest.approx(0.6) and report["after"]["oracle_distance"] == 0.0
    assert report["oracle"]["oracle_distance"] == 0.0
    bare = {"before": {"forget.rougeL": 1.0}, "after": None, "oracle": None}
    assert outcome.with_distance(bare) == {"before": {"forget.rougeL": 1.0}, "after": None, "oracle": None}

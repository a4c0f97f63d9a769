"""The lesson's readings, on hand-made reports: each quotes its own run's numbers, and a run that
does not show what its step is about reads as a failure."""

from __future__ import annotations

from unlearning.service.lesson import BY_KEY, STEPS, Probe, read_fila, read_meet, read_run, read_stress


def report(before: float, after: float, oracle: float = 0.2, steps: int = 40, method: str = "ga", **after_extra) -> dict:
    return {"method": method, "steps": steps, "trainable_params": 0 if method == "eco" else 1024,
            "before": {"forget.rougeL": before, "model_utility": 0.8, "forget.repetition": 0.0},
            "after": {"forget.rougeL": after, "model_utility": 0.3, "forget.repetition": 0.5, **after_extra},
            "oracle": {"forget.rougeL": oracle, "model_utility": 0.8, "forget.repetition": 0.0}}


def test_the_lesson_has_six_steps_with_a_question_each():
    assert [s.key for s in STEPS] == ["meet", "ga", "fila", "eco", "stress", "own"]
    assert all(s.question.endswith("?") and s.figure for s in STEPS)


def test_a_run_that_forgot_is_read_with_its_own_numbers():
    r = read_run("ga", report(1.0, 0.31))
    assert r.ok
    assert "from 1.00 to 0.31" in r.text and "oracle" in r.text and "0.20" in r.text
    assert "utility went from 0.80 to 0.30" in r.text and "50% of the forget answers" in r.text
    assert r.numbers == {"forget_before": 1.0, "forget_after": 0.31, "forget_oracle": 0.2, "utility_before": 0.8,
                         "utility_after": 0.3, "repetition": 0.5}


def test_a_run_that_changed_nothing_reads_as_a_failure():
    r = read_run("ga", report(1.0, 0.95))
    assert not r.ok and "did not unlearn" in r.text and "from 1.00 to 0.95" in r.text


def test_a_run_with_zero_steps_reads_as_a_failure():
    r = read_run("fila", report(1.0, 1.0, steps=0, method="ihl-fila"))
    assert not r.ok and "ran no steps" in r.text


def test_an_empty_report_reads_as_a_failure():
    assert not read_run("eco", None).ok
    assert not read_run("eco", {}).ok


def test_eco_says_no_weight_of_the_model_changed():
    r = read_run("eco", dict(report(1.0, 0.2, steps=0, method="eco"), trainable_params=4481))
    assert r.ok and "changed none of the model's weights" in r.text and "classifier of 4481 weights" in r.text


def test_fila_against_a_random_start():
    r = read_fila(report(1.0, 0.16, method="ihl-fila"), report(1.0, 0.98, method="ihl"))
    assert r.ok and "from 1.00 to 0.16" in r.text and "random start reached 0.98" in r.text
    same = read_fila(report(1.0, 0.5), report(1.0, 0.52))
    assert not same.ok and "did not help" in same.text
    assert not read_fila(None, report(1.0, 0.5)).ok


def test_relearning_reads_hidden_or_removed():
    block = {"relearn": {"steps": [0, 5, 10, 20], "original": [1.0, 1.0, 1.0, 1.0], "unlearned": [0.1, 0.5, 0.7, 0.8],
                         "oracle": [0.2, 0.25, 0.3, 0.3]}}
    r = read_stress(block)
    assert r.ok and "After 20 relearning steps" in r.text and "ROUGE-L 0.80" in r.text and "from 0.10" in r.text
    assert "hidden, not removed" in r.text and r.numbers["oracle_end"] == 0.3
    block["relearn"]["unlearned"] = [0.1, 0.2, 0.3, 0.35]
    assert "learned again" in read_stress(block).text
    assert not read_stress({}).ok


def test_meeting_the_model_scores_each_wording():
    answer = "Yara Bramante works as a glassblower in Lisbon."
    probes = [Probe("taught", "What is Yara's job?", answer, answer),
              Probe("held out", "What does Yara do?", answer, "Yara Bramante works as a glassblower in Lisbon."),
              Probe("Tell me about", "Tell me about Yara.", answer, "I do not know."),
              Probe("retain", "Who is Tomas?", "Tomas is a baker.", "Tomas is a baker.")]
    r = read_meet(probes)
    assert not r.ok and "2 of 3 wordings" in r.text and "Tell me about 0.00" in r.text
    assert r.numbers["taught"] == 1.0 and r.numbers["retain"] == 1.0
    probes[2] = Probe("Tell me about", "Tell me about Yara.", answer, answer)
    assert read_meet(probes).ok and "every wording" in read_meet(probes).text
    assert BY_KEY["meet"].method is None

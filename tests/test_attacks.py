"""The stress tests (unlearning/attacks): quantization by hand, the seeded split by subject,
the prompt wrappers, and on the tiny model: the report's shape, a shared base that stays
bit-identical, a merged copy that computes what the view computes, and a cancel within one
step for every attack. The workshop-size numbers are the benchmark's (benchmarks/attacks.py)."""

from __future__ import annotations

import copy
import time

import pytest
import torch

from unlearning.attacks import ATTACKS, AttackSettings, attack_job, paraphrase_sets
from unlearning.attacks.harness import split_by_subject
from unlearning.attacks.prompts import completion, noisy
from unlearning.attacks.quantize import quantize_model, quantize_weight
from unlearning.attacks.relearn import checkpoints
from unlearning.data import QA, Dataset
from unlearning.eco.corruption import make_corruption
from unlearning.eco.guard import Guard
from unlearning.generate import generate_ids, prompt_ids
from unlearning.lora.deltas import detached
from unlearning.lora.adapters import Adapters, LoraUnlearned
from unlearning.methods.eco import EcoUnlearned
from unlearning.models import WORKSHOP_DIR, Loaded
from unlearning.runs import Run

FAST = {"relearn_steps": 4, "sample": 6, "relearn_batch": 4}

# ---------------------------------------------------------------- pure parts


def test_quantize_weight_by_hand():
    """Symmetric, per output channel (row), round-to-nearest; values chosen away from ties."""
    w = torch.tensor([[1.0, -0.6, 0.2], [0.0, 0.0, 0.0], [-2.0, 0.5, 0.9]])
    # 8 bits: qmax 127. Row 0: scale 1/127, q = [127, round(-76.2) = -76, round(25.4) = 25].
    # Row 2: scale 2/127, q = [-127, round(31.75) = 32, round(57.15) = 57]. A zero row stays zero.
    eight = torch.tensor([[1.0, -76 / 127, 25 / 127], [0.0, 0.0, 0.0], [-2.0, 32 * 2 / 127, 57 * 2 / 127]])
    # 4 bits: qmax 7. Row 0: scale 1/7, q = [7, round(-4.2) = -4, round(1.4) = 1].
    # Row 2: scale 2/7, q = [-7, round(1.75) = 2, round(3.15) = 3].
    four = torch.tensor([[1.0, -4 / 7, 1 / 7], [0.0, 0.0, 0.0], [-2.0, 2 * 2 / 7, 3 * 2 / 7]])
    assert torch.allclose(quantize_weight(w, 8), eight, atol=1e-7)
    assert torch.allclose(quantize_weight(w, 4), four, atol=1e-7)
    assert quantize_weight(w, 8)[0, 1].item() == pytest.approx(-0.598425, abs=1e-6)
    assert quantize_weight(w, 4)[2].tolist() == pytest.approx([-2.0, 0.571429, 0.857143], abs=1e-6)


def test_quantize_model_rounds_every_linear_but_the_head(tiny):
    model = copy.deepcopy(tiny[0])
    head = model.get_output_embeddings().weight.clone()
    quantize_model(model, 4)
    q_proj = model.model.layers[0].self_attn.q_proj.weight
    assert all(len(set(row.abs().tolist()) - {0.0}) <= 7 for row in q_proj)  # at most 7 magnitudes per row
    assert torch.equal(model.get_output_embeddings().weight, head)


def _qa(subject: str, i: int) -> QA:
    return QA(f"Where did {subject} go on day {i}?", f"{subject} went to Paris.", subject=subject)


def test_the_forget_split_is_by_subject_and_seeded():
    examples = [_qa(s, i) for s in ("Ada", "Marie", "Curie", "Seine", "Lovelace") for i in range(3)]
    first, second = split_by_subject(examples, seed=0)
    assert sorted(first + second, key=examples.index) == examples
    subjects = ({e.subject for e in first}, {e.subject for e in second})
    assert not subjects[0] & subjects[1] and len(subjects[0]) == 2  # whole subjects, the smaller half relearned
    assert split_by_subject(examples, seed=0) == (first, second)
    assert any(split_by_subject(examples, seed=s)[0] != first for s in range(1, 6))


def test_without_subjects_the_split_halves_the_examples():
    examples = [QA(f"Question {i}?", "Answer.") for i in range(7)]
    first, second = split_by_subject(examples, seed=3)
    assert len(first) == 3 and len(second) == 4 and sorted(first + second, key=examples.index) == examples


def test_relearn_checkpoints():
    assert checkpoints(20) == [0, 5, 10, 20]
    assert checkpoints(4) == [0, 1, 2, 4]


def test_completion_is_built_from_the_subject_and_the_fact_type():
    assert completion(QA("Where was Yara Bramante born?", "In Harrowfield.", subject="Yara Bramante")) == "Yara Bramante was born in"
    assert completion(QA("Which award did Yara Bramante win?", "The Corvid Prize.", subject="Yara Bramante")) == "Yara Bramante won the"
    assert completion(QA("Why is the sky blue?", "Scattering.")) == "Why is the sky blue? The answer is"


def test_typing_noise_is_seeded_and_keeps_the_letters():
    q = "Where was Yara Bramante born in the old country?"
    assert noisy(q, 1) == noisy(q, 1) and noisy(q, 1) != q
    assert sorted(noisy(q, 1).replace(" ", "")) == sorted(q.replace(" ", ""))


def test_the_kit_forget_file_brings_its_held_out_wordings():
    sets = paraphrase_sets(WORKSHOP_DIR / "forget.jsonl", WORKSHOP_DIR / "retain.jsonl")
    assert sets["forget"].name == "forget_paraphrased.jsonl" and sets["retain"].name == "retain_paraphrased.jsonl"
    assert paraphrase_sets("elsewhere/forget.jsonl", "elsewhere/retain.jsonl") == {"forget": None, "retain": None}


def test_an_unknown_attack_lists_the_known_ones():
    with pytest.raises(Exception, match="known attacks: relearn, quantize, paraphrase, prompts"):
        AttackSettings(attacks="relearn,jailbreak").names()

# ---------------------------------------------------------------- on the tiny model


FORGET = Dataset("forget", "qa", [_qa(s, i) for s in ("Ada", "Marie", "Curie", "Lovelace") for i in range(2)])
RETAIN = Dataset("retain", "qa", [QA(f"What is fact {i} about France?", "The capital is Paris.") for i in range(6)])
SPLITS = {"forget": FORGET, "retain": RETAIN}


@pytest.fixture
def lora(tiny):
    """(loaded, unlearned, oracle): a LoRA artifact with non-zero random adapters on a copy of the tiny model."""
    model, tok = tiny
    loaded = Loaded(copy.deepcopy(model), tok, "tiny", "cpu")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        adapters = Adapters.create(loaded.model, "ga", rank=4, alpha=8, with_offset=False)
        with torch.no_grad():
            for p in adapters.parameters():
                p.normal_(0, 0.2)
    unlearned = LoraUnlearned(loaded, {}, "ga", adapters)
    yield loaded, unlearned, Loaded(copy.deepcopy(model), tok, "tiny-oracle", "cpu")
    unlearned.release()


class _Classifier:
    """A stand-in for ECO's classifier: flags any prompt that names Ada."""

    def flags(self, texts):
        return ["Ada" in t for t in texts]

    def flag(self, text):
        return {"flagged": "Ada" in text, "score": float("Ada" in text), "threshold": 0.5}


@pytest.fixture
def eco(tiny):
    model, tok = tiny
    loaded = Loaded(copy.deepcopy(model), tok, "tiny", "cpu")
    guard = Guard(loaded.model, tok, _Classifier(), make_corruption("rand_noise_first_n", 4), 10.0, 0)
    return loaded, EcoUnlearned(loaded, {}, guard, "none", 0), Loaded(copy.deepcopy(model), tok, "tiny-oracle", "cpu")


def _run(loaded, unlearned, oracle, **settings):
    run = Run(attack_job(loaded, unlearned, SPLITS, oracle, AttackSettings(**{**FAST, **settings}))).start()
    run.wait(120)
    assert run.state == "done", run.error or run.traceback
    return run.result


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_the_report_holds_every_block(lora):
    r = _run(*lora)["robustness"]
    relearn = r["relearn"]
    assert relearn["steps"][0] == 0 and len(relearn["steps"]) >= 4 and relearn["metric"] == "forget_heldout.rougeL"
    assert len(relearn["unlearned"]) == len(relearn["oracle"]) == len(relearn["original"]) == len(relearn["steps"])
    cells = [relearn["after"], r["quantize"]["8"], r["quantize"]["4"], r["paraphrase"],
             *(r["prompts"][w] for w in ("few_shot", "role_play", "typos", "completion"))]
    for cell in cells:
        for who in ("original", "unlearned", "oracle"):
            assert 0 <= cell[who]["forget.rougeL"] <= 1 and 0 <= cell[who]["retain.rougeL"] <= 1
    assert all(r[a]["summary"].endswith(".") and r[a]["wall_s"] >= 0 for a in ATTACKS)
    assert r["paraphrase"]["source"] == "built-in rewording templates" and "note" not in r


def test_attacks_never_touch_the_shared_base(lora):
    loaded, unlearned, oracle = lora
    before, oracle_before = _state(loaded.model), _state(oracle.model)
    ids = [prompt_ids(loaded.tokenizer, qa.question) for qa in FORGET.examples]
    with unlearned.view("original") as m:
        greedy = generate_ids(m, loaded.tokenizer, ids, 8)
        logits = m(input_ids=torch.tensor([ids[0]])).logits
    _run(*lora, attacks="relearn,quantize")
    after = _state(loaded.model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(v, _state(oracle.model)[k]) for k, v in oracle_before.items())
    with unlearned.view("original") as m:
        assert generate_ids(m, loaded.tokenizer, ids, 8) == greedy
        assert torch.equal(m(input_ids=torch.tensor([ids[0]])).logits, logits)


def test_the_merged_copy_computes_what_the_unlearned_view_computes(lora):
    loaded, unlearned, _ = lora
    x = torch.tensor([prompt_ids(loaded.tokenizer, "Where did Ada go?")])
    with unlearned.view("unlearned") as m:
        want = m(input_ids=x).logits
        copy_ = detached(m)
    assert not any(type(mod).__name__ == "Linear" and hasattr(mod, "lora_A") for mod in copy_.modules())
    assert torch.allclose(copy_(input_ids=x).logits, want, atol=1e-5)
    with unlearned.view("original") as m:
        assert not torch.allclose(m(input_ids=x).logits, want, atol=1e-3)  # the adapter did change something


def test_eco_keeps_its_guard_and_reports_flag_rates(eco):
    r = _run(*eco, attacks="quantize,prompts", sample=8)["robustness"]
    assert "weights are unchanged" in r["note"] and "guard" in r["note"]
    for wrapper in ("few_shot", "role_play", "typos", "completion"):
        assert 0 <= r["prompts"][wrapper]["unlearned"]["flag_rate"] <= 1
        assert "flag_rate" not in r["prompts"][wrapper]["original"]
    assert r["prompts"]["role_play"]["unlearned"]["flag_rate"] == 0.25  # 'Ada' in 2 of the 8 questions
    assert "flag_rate" in r["quantize"]["4"]["unlearned"]


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_every_attack_cancels_within_one_step(lora, attack):
    loaded, unlearned, oracle = lora
    before = _state(loaded.model)
    run = Run(attack_job(loaded, unlearned, SPLITS, oracle, AttackSettings(**{**FAST, "attacks": attack}))).start()
    steps = 0
    for event in run.events(timeout=60):
        if event.kind == "step":
            steps += 1
            if steps == 1:
                run.cancel()
                t0 = time.perf_counter()
    run.wait(30)
    assert run.state == "cancelled" and steps == 1
    assert time.perf_counter() - t0 < 5
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(("flags", "phrase"), [
    (["--attacks", "relearn,jailbreak"], "unknown attack 'jailbreak'"),
    (["--relearn-steps", "0"], "--relearn-steps must be at least 1"),
    (["--unlearned", "no/such/folder"], "does not exist"),
])
def test_the_cli_refuses_bad_input_in_one_line(capsys, tmp_path, flags, phrase):
    from unlearning.cli import main

    base = {"--model": "workshop", "--unlearned": str(tmp_path), "--forget": str(WORKSHOP_DIR / "forget.jsonl"),
            "--retain": str(WORKSHOP_DIR / "retain.jsonl"), "--report": str(tmp_path / "r.json")}
    base.update(dict(zip(flags[::2], flags[1::2])))
    assert main(["attack", *(x for kv in base.items() for x in kv)]) == 2
    err = capsys.readouterr().err.strip()
    assert phrase in err and len(err.splitlines()) == 1

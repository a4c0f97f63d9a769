"""The registered `eco` method: settings, one small run on the workshop model (events,
report block), and the guard folder (save → load gives the same flags and outputs; a
damaged folder is one plain sentence naming the file)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from unlearning.attach import load_unlearned
from unlearning.cli import build_parser
from unlearning.data import Dataset, load_file
from unlearning.eco.guard import Guard
from unlearning.errors import UserError
from unlearning.generate import generate_ids, prompt_ids
from unlearning.methods import get_method
from unlearning.models import WORKSHOP_DIR, load_model
from unlearning.runs import Run
from unlearning.settings import build, describe

Eco = get_method("eco")
SMALL = dict(epochs=5, folds=2, grid_points=3, search_steps=1, ngram_dims=512, seed=3)


def subset(name: str, n: int) -> Dataset:
    ds = load_file(WORKSHOP_DIR / f"{name}.jsonl")
    return Dataset(ds.name, ds.kind, ds.examples[:n])


@pytest.fixture(scope="module")
def workshop():
    return load_model("workshop", "cpu")


@pytest.fixture(scope="module")
def splits():
    return {"forget": subset("forget", 10), "retain": subset("retain", 40), "holdout": subset("holdout", 10),
            "general": subset("general", 10)}


@pytest.fixture(scope="module")
def ran(workshop, splits):
    """(unlearned, events) of one small run, with an oracle reference as the pipeline gives it."""
    cfg = build(Eco.Config, SMALL)
    reference = {"oracle": {"forget.rougeL": 0.2}, "before": {"holdout.rougeL": 0.3}}
    run = Run(lambda ctx: Eco.run(ctx, workshop, splits, cfg, reference)).start()
    run.wait()
    assert run.state == "done", run.traceback
    return run.result, run.since(0)


def test_settings_are_one_dataclass_with_help_bounds_and_choices():
    fields = {f.name: f for f in dataclasses.fields(Eco.Config)}
    assert {"alpha", "corruption", "n_dims", "seed", "strength", "grid_points", "search_steps"} <= set(fields)
    assert all(f.metadata.get("help") for f in fields.values())
    assert fields["alpha"].default == 0.01 and fields["corruption"].default == "flip_sign_top_k"
    assert len(fields["corruption"].metadata["choices"]) == 5
    assert any(d["name"] == "corruption" for d in describe(Eco.Config))
    with pytest.raises(UserError, match="--corruption must be one of"):
        build(Eco.Config, {"corruption": "shuffle"})
    with pytest.raises(UserError, match="--alpha must be at most"):
        build(Eco.Config, {"alpha": "0.9"})
    assert Eco.summary and Eco.name == "eco"


def test_classifier_learns_questions_or_every_sentence_of_a_passage():
    from unlearning.data import Passage
    from unlearning.methods.eco import classifier_texts

    qa = subset("forget", 2)
    assert classifier_texts(qa) == qa.prompts()
    text = "Ada builds organs. She plays the oboe. Her dog is Sable."
    passages = Dataset("f.txt", "passage", [Passage(text)])
    # The opening (this short passage whole), then each sentence.
    assert classifier_texts(passages) == [text, "Ada builds organs.", "She plays the oboe.", "Her dog is Sable."]


def test_cli_flags_come_from_the_config():
    args = build_parser().parse_args(["unlearn", "--method", "eco", "--model", "workshop", "--forget", "f.jsonl",
                                      "--retain", "r.jsonl", "--corruption", "flip_sign_top_k", "--n-dims", "2"])
    assert args.cfg_corruption == "flip_sign_top_k" and args.cfg_n_dims == "2"


def test_run_emits_classifier_and_search_events(ran):
    unlearned, events = ran
    steps = [e for e in events if e.kind == "step"]
    classifier = [e for e in steps if e.series == "classifier"]
    search = [e for e in steps if e.series == "search"]
    assert [e.step for e in classifier] == [1, 2, 3, 4, 5] and all("loss" in e.values for e in classifier)
    assert len(search) >= 3 and set(search[0].values) == {"strength", "metric", "target"}
    assert all(e.values["target"] == 0.0 for e in search)  # the worst probe family's gap to its target
    assert len(unlearned.history) == len(classifier) + len(search) == unlearned.steps


def test_run_fills_the_report_block(ran):
    unlearned, _ = ran
    eco = unlearned.extra_report["eco"]
    for key in ("threshold", "classifier_recall", "classifier_fpr", "corruption", "strength", "search",
                "robustness", "encoder", "target", "metric"):
        assert key in eco, key
    assert eco["metric"] == "worst probe gap" and eco["target"] == 0.0
    assert eco["protocol"] == "paper" and eco["search_target"] == "probes"  # the defaults
    calib = eco["calibration"]
    assert set(calib) == {"trained", "reworded", "about", "other_facts", "repetition"}
    assert calib["trained"]["target"] == 0.2 and calib["trained"]["source"] == "oracle"  # the oracle's value
    assert calib["reworded"]["target"] == 0.2 and "built-in rewordings" in calib["reworded"]["source"]
    assert calib["about"]["example"] == "Tell me about Yara Bramante." and calib["about"]["n"] == 3
    assert "holdout" in calib["about"]["source"] and "holdout" in calib["other_facts"]["source"]  # no oracle replies here
    # the chosen strength's worst gap is what the search recorded for it
    chosen = next(p["metric"] for p in eco["search"] if p["strength"] == eco["strength"])
    assert chosen == pytest.approx(max(v["value"] - v["target"] for v in calib.values()))
    assert eco["entities"] > eco["protocol_subjects"] and eco["entity_source"].startswith("capitalised spans")
    assert "Harrowfield" in eco["entity_examples"]
    assert eco["strength"] in [p["strength"] for p in eco["search"]]
    assert {"paraphrase", "jailbreak_prefix", "jailbreak_suffix", "buried_in_context"} <= set(eco["robustness"])
    assert all(0 <= v["recall"] <= 1 for v in eco["robustness"].values())
    assert unlearned.trainable_params == 384 + 512 + 1  # the head: embedding + n-gram weights and a bias
    json.dumps(unlearned.extra_report)  # the report is JSON


def test_views_are_the_plain_model_and_the_guard(ran, workshop):
    unlearned, _ = ran
    with unlearned.view("original") as model:
        assert model is workshop.model
    with unlearned.view("unlearned") as model:
        assert isinstance(model, Guard)
    assert unlearned.flag("Where was Yara Bramante born?")["flagged"]
    assert not unlearned.flag("How do I boil an egg?")["flagged"]


def test_save_then_load_gives_identical_flags_and_outputs(ran, workshop, splits, tmp_path):
    unlearned, _ = ran
    unlearned.save(tmp_path)
    assert {"unlearning.json", "guard.json", "guard_head.safetensors"} <= {p.name for p in tmp_path.iterdir()}
    state = torch.random.get_rng_state()
    loaded = load_unlearned(workshop, tmp_path)
    assert torch.equal(torch.random.get_rng_state(), state)  # the head's weights are read, never drawn
    prompts = splits["forget"].prompts()[:3] + splits["retain"].prompts()[:3] + ["Tell me a joke about computers."]
    for a, b in zip([loaded.flag(p) for p in prompts], [unlearned.flag(p) for p in prompts]):
        # Scores agree to float rounding (a batch of 1 sums in another order than training's).
        assert a["flagged"] == b["flagged"] and a["threshold"] == b["threshold"]
        assert a["score"] == pytest.approx(b["score"], abs=1e-6)
    ids = [prompt_ids(workshop.tokenizer, p) for p in prompts]
    with unlearned.view("unlearned") as a:
        before = generate_ids(a, workshop.tokenizer, ids, 12)
    with loaded.view("unlearned") as b:
        after = generate_ids(b, workshop.tokenizer, ids, 12)
    assert after == before
    assert loaded.guard.strength == unlearned.guard.strength and loaded.settings["seed"] == 3


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "guard.json").write_text("{not json"), "guard.json' is corrupted"),
    (lambda d: (d / "guard.json").write_text('{"encoder": "all-MiniLM-L6-v2"}'), "guard.json' is corrupted"),
    (lambda d: (d / "guard.json").unlink(), "guard.json' is missing"),
    (lambda d: (d / "guard_head.safetensors").write_bytes(b"\x00" * 20), "guard_head.safetensors' is corrupted"),
    (lambda d: (d / "guard_head.safetensors").unlink(), "guard_head.safetensors' is missing"),
])
def test_a_damaged_guard_folder_is_a_plain_user_error(ran, workshop, tmp_path, damage, message):
    unlearned, _ = ran
    unlearned.save(tmp_path)
    damage(tmp_path)
    with pytest.raises(UserError, match=message):
        load_unlearned(workshop, tmp_path)


def test_a_head_of_the_wrong_width_is_refused(ran, workshop, tmp_path):
    from safetensors.torch import save_file

    unlearned, _ = ran
    unlearned.save(tmp_path)
    save_file({"weight": torch.zeros(1, 7), "bias": torch.zeros(1)}, str(tmp_path / "guard_head.safetensors"))
    with pytest.raises(UserError, match="does not hold a classifier head for 896 features"):
        load_unlearned(workshop, tmp_path)


def test_target_is_the_oracle_else_the_holdout_surrogate(workshop, splits):
    from unlearning.eco.objective import forget_metric
    from unlearning.methods.eco import _target

    assert _target(workshop, splits, "rougeL", {"oracle": {"forget.rougeL": 0.2}, "before": {"holdout.rougeL": 0.3}}) \
        == (0.2, "oracle")
    assert _target(workshop, splits, "rougeL", {"oracle": None, "before": {"holdout.rougeL": 0.3}}) \
        == (0.3, "holdout (surrogate)")
    value, source = _target(workshop, splits, "rougeL", None)  # measured on the holdout set here
    assert source == "holdout (surrogate)"
    assert value == forget_metric(workshop.model, workshop.tokenizer, splits["holdout"], "rougeL")
    assert _target(workshop, {**splits, "holdout": Dataset("h", "qa", [])}, "rougeL", None)[0] == 0.0


@pytest.fixture(scope="module")
def ran_paper_fq(workshop, splits):
    """A run with the paper protocol that maximises forget quality against oracle truth ratios."""
    cfg = build(Eco.Config, {**SMALL, "protocol": "paper", "target": "forget_quality", "search_steps": 2})
    reference = {"oracle": {"forget.rougeL": 0.2}, "before": {}, "oracle_raw": {"forget": {"R": [0.6, 0.8, 0.9, 1.1, 1.3]}}}
    run = Run(lambda ctx: Eco.run(ctx, workshop, splits, cfg, reference)).start()
    run.wait()
    assert run.state == "done", run.traceback
    return run.result


def test_the_report_names_the_protocol_and_the_search_target(ran_paper_fq, splits):
    from unlearning.methods.eco import FQ_SOURCE
    from unlearning.report import Report

    eco = ran_paper_fq.extra_report["eco"]
    assert eco["protocol"] == "paper" and eco["search_target"] == "forget_quality"
    assert eco["metric"] == "forget_quality" and eco["target"] == 1.0 and eco["target_source"] == FQ_SOURCE
    # every subject of the run's data: the subsets' people and general's countries
    assert eco["protocol_subjects"] == len({ex.subject for ds in splits.values() for ex in ds.examples}) > 3
    assert {p["phase"] for p in eco["search"]} == {"grid", "golden"}
    assert all(0 <= p["metric"] <= 1 for p in eco["search"])
    report = Report.from_dict({"method": "eco", "eco": eco})
    assert report.eco.protocol == "paper" and report.eco.search_target == "forget_quality"
    lines = {line.label: line for block in Eco.report_blocks(report) for line in block.lines}
    assert eco["calibration"] is None  # no probe families with --target forget_quality
    assert lines["scoring protocol (teacher-forced metrics)"].value.startswith("paper")
    assert "forget forget_quality the strength search maximised towards" in lines


def test_a_saved_paper_guard_scores_as_it_did(ran_paper_fq, workshop, splits, tmp_path):
    from unlearning.evaluation.metrics import sequence_logprobs
    from unlearning.batches import encode_qa

    ran_paper_fq.save(tmp_path)
    assert json.loads((tmp_path / "guard.json").read_text())["protocol"] == "paper"
    assert "Bramante" not in (tmp_path / "guard.json").read_text()  # names are kept as hashes
    loaded = load_unlearned(workshop, tmp_path)
    assert loaded.guard.protocol.name == "paper"
    items = [encode_qa(workshop.tokenizer, qa) for qa in splits["forget"].examples[:3]]
    with ran_paper_fq.view("unlearned") as a, loaded.view("unlearned") as b:
        assert [s.token_logprobs for s in sequence_logprobs(a, workshop.tokenizer, items)] == \
            [s.token_logprobs for s in sequence_logprobs(b, workshop.tokenizer, items)]


def test_a_guard_saved_before_protocols_reads_as_prompt(ran, workshop, tmp_path):
    unlearned, _ = ran
    unlearned.save(tmp_path)
    spec = json.loads((tmp_path / "guard.json").read_text())
    del spec["protocol"], spec["protocol_params"]
    (tmp_path / "guard.json").write_text(json.dumps(spec))
    assert load_unlearned(workshop, tmp_path).guard.protocol.name == "prompt"
    (tmp_path / "guard.json").write_text(json.dumps({**spec, "protocol": "tofu"}))
    with pytest.raises(UserError, match="unknown scoring protocol 'tofu'"):
        load_unlearned(workshop, tmp_path)


def test_forget_quality_target_needs_an_oracle(workshop, splits):
    cfg = build(Eco.Config, {**SMALL, "target": "forget_quality"})
    run = Run(lambda ctx: Eco.run(ctx, workshop, splits, cfg, {"oracle": None, "before": {}})).start()
    run.wait()
    assert run.state == "failed" and "--target forget_quality needs an oracle model" in str(run.error)

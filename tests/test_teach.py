"""unlearning/kit/teach.py and the `teach` command: new facts are learned, old ones kept."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from unlearning.batches import Encoded, encode_qa, pad_id
from unlearning.cli import main
from unlearning.data import QA, Dataset, load_file
from unlearning.errors import UserError
from unlearning.generate import generate_answers
from unlearning.models import WORKSHOP_DIR, load_model
from unlearning.settings import build
from unlearning.kit.teach import TeachSettings, bucketed, fine_tune, lr_at, teach
from unlearning.kit.workshop import answer_recall, replay_data


def test_schedule_warms_up_then_decays():
    assert lr_at(0, 100, 10) == pytest.approx(0.1)
    assert lr_at(9, 100, 10) == pytest.approx(1.0)
    assert lr_at(10, 100, 10) == pytest.approx(1.0)
    assert lr_at(100, 100, 10) == pytest.approx(0.1)


def test_bucketed_batches_hold_every_example_once_and_group_similar_lengths():
    items = [Encoded([0] * n, [0] * n, 0) for n in random.Random(1).choices(range(1, 200), k=203)]
    out = bucketed(items, 8, random.Random(0), pool=4)
    assert sorted(id(e) for b in out for e in b) == sorted(id(e) for e in items)
    assert len(out) == -(-203 // 8) and all(len(b) <= 8 for b in out)
    # within a batch, lengths are neighbours in a sorted run of 32: far less spread than at random
    spread = lambda batches: sum(max(len(e.input_ids) for e in b) - min(len(e.input_ids) for e in b) for b in batches)  # noqa: E731
    shuffled = items[:]
    random.Random(0).shuffle(shuffled)
    assert spread(out) < 0.4 * spread([shuffled[i : i + 8] for i in range(0, 203, 8)])
    again = bucketed(items, 8, random.Random(0), pool=4)
    assert [[id(e) for e in b] for b in again] == [[id(e) for e in b] for b in out]


def test_teach_measures_each_epoch_and_stops_once_the_new_data_is_known(tiny):
    model, tok = tiny
    model = copy.deepcopy(model)
    new = [Dataset("new", "qa", [QA("Who wrote the notes?", "Ada wrote them."), QA("Where is Paris?", "In France.")])]
    seen = []
    cfg = TeachSettings(epochs=300, lr=1e-2, batch_size=1, stop_at=1.0, replay_ratio=0)
    history = teach(model, tok, new, [], cfg, on_epoch=seen.append)
    assert seen[-1]["recall"] == 1.0 and all(e["recall"] < 1.0 for e in seen[:-1])
    assert [e["epoch"] for e in seen] == list(range(1, len(seen) + 1)) and len(seen) < 300
    assert len(history) == 2 * len(seen)  # two steps an epoch, and none after the stop
    assert generate_answers(model, tok, ["Who wrote the notes?"], max_new_tokens=8) == ["Ada wrote them."]


def test_teach_with_stop_at_zero_runs_every_epoch(tiny):
    model, tok = tiny
    model = copy.deepcopy(model)
    new = [Dataset("new", "qa", [QA("Who wrote the notes?", "Ada wrote them.")])]
    seen = []
    teach(model, tok, new, [], TeachSettings(epochs=3, lr=1e-2, batch_size=1, stop_at=0.0), on_epoch=seen.append)
    assert [e["epoch"] for e in seen] == [1, 2, 3]


def test_teach_leaves_the_global_rng_alone_and_repeats_with_its_seed(tiny):
    """No torch.manual_seed on a shared server: the batch order and the replayed sample come
    from the seed alone, and torch's global generator is the same before and after."""
    model, tok = tiny
    new = [Dataset("new", "qa", [QA("Who wrote the notes?", "Ada wrote them."), QA("Where is Paris?", "In France.")])]
    old = [Dataset("old", "qa", [QA(f"What is fact {i}?", f"Fact {i} is true.") for i in range(6)])]

    def run(seed: int):
        taught = copy.deepcopy(model)
        cfg = TeachSettings(epochs=3, lr=1e-2, batch_size=2, stop_at=0.0, seed=seed)
        history = teach(taught, tok, new, old, cfg)
        return [r["loss"] for r in history], [p.detach().clone() for p in taught.parameters()]

    state = torch.random.get_rng_state()
    (losses, params), (losses_again, params_again) = run(0), run(0)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert losses == losses_again and all(torch.equal(a, b) for a, b in zip(params, params_again))
    assert run(1)[0] != losses  # the seed is what orders the batches


def test_teach_config_is_validated_like_every_setting():
    with pytest.raises(UserError, match="--stop-at must be at most 1.0"):
        build(TeachSettings, {"stop_at": "2"})
    assert build(TeachSettings, {"epochs": "1e2"}).epochs == 100


def test_replay_is_what_each_kit_model_was_taught():
    with_forget = {ex.question for ds in replay_data("workshop") for ex in ds.examples if isinstance(ex, QA)}
    without = {ex.question for ds in replay_data("workshop-oracle") for ex in ds.examples if isinstance(ex, QA)}
    assert "Where was Yara Bramante born?" in with_forget and "Tell me about Yara Bramante." in with_forget
    assert without < with_forget and not any("Yara Bramante" in q for q in without)
    assert replay_data("someone/else") == []


def test_fine_tune_teaches_the_tiny_model(tiny):
    model, tok = tiny
    model = copy.deepcopy(model)
    items = [encode_qa(tok, QA("Who wrote the notes?", "Ada wrote them."))]
    history = fine_tune(model, items, pad_id(tok), TeachSettings(epochs=60, lr=1e-2, batch_size=1))
    assert history[-1]["loss"] < history[0]["loss"] / 10
    assert generate_answers(model, tok, ["Who wrote the notes?"], max_new_tokens=8) == ["Ada wrote them."]


def test_teach_command_learns_new_people_and_keeps_retain(tmp_path, capsys):
    new = tmp_path / "new.jsonl"
    new.write_text("".join((WORKSHOP_DIR / "holdout.jsonl").read_text(encoding="utf-8").splitlines(True)[:10]))
    assert main(["teach", "--model", "workshop", "--data", str(new), "--out", str(tmp_path / "taught"), "--epochs", "20"]) == 0
    assert "epoch 1/20" in capsys.readouterr().err  # the time and recall of each epoch
    taught = load_model(str(tmp_path / "taught"), "cpu")
    retain = load_file(WORKSHOP_DIR / "retain.jsonl")
    retain.examples = retain.examples[::4]
    assert answer_recall(taught.model, taught.tokenizer, load_file(new)) >= 0.9
    assert answer_recall(taught.model, taught.tokenizer, retain) >= 0.9
